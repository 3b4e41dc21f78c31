using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Model;

/// <summary>
/// silu(gate) · up, the Llama MLP's gate, keeping for backward only its two inputs (Liger Kernel's fused SwiGLU): the
/// unfused product also keeps silu(gate), one more [tokens, intermediate] tensor per layer — 120 MB over Qwen2.5-0.5B's
/// 24 layers at 256 tokens. Backward recomputes the sigmoid: d up = g · silu(gate), d gate = g · up · σ · (1 + gate · (1 − σ)).
/// The forward is the unfused expression itself, so outputs are bit-identical; only gradients may differ in the last bit.
/// </summary>
public static class SwiGlu
{
    public static Tensor Of(Tensor gate, Tensor up) =>
        is_grad_enabled() && (gate.requires_grad || up.requires_grad) ? Function.apply(gate, up) : nn.functional.silu(gate).mul(up);

    private sealed class Function : autograd.SingleTensorFunction<Function>
    {
        public override string Name => nameof(SwiGlu);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (gate, up) = ((Tensor)vars[0], (Tensor)vars[1]);
            ctx.save_for_backward([gate, up]);
            using var _ = no_grad();
            using var silu = nn.functional.silu(gate);
            return silu.mul(up);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
        {
            var saved = ctx.get_saved_variables();
            var (gate, up) = (saved[0], saved[1]);
            using var scope = NewDisposeScope();
            var dUp = grad.mul(nn.functional.silu(gate));
            var sigma = gate.sigmoid();
            var slope = sigma.neg().add_(Scalars.One, Scalars.One).mul_(gate).add_(Scalars.One, Scalars.One).mul_(sigma); // σ · (1 + gate · (1 − σ))
            var dGate = grad.mul(up).mul_(slope);
            return [dGate.MoveToOuterDisposeScope(), dUp.MoveToOuterDisposeScope()];
        }
    }
}
