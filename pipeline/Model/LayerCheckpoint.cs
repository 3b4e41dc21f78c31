using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Model;

/// <summary>
/// Gradient checkpointing per decoder layer (what transformers' <c>gradient_checkpointing_enable</c> does with
/// torch.utils.checkpoint, which TorchSharp lacks): in training, a layer runs forward without keeping its
/// intermediates, and autograd keeps only the layer's input; its backward runs the layer forward again with autograd on
/// and back-propagates through that. Activation memory falls from every intermediate of every layer to one input per
/// layer plus one layer's intermediates, for about one more forward pass of compute. Gradients are the plain ones:
/// the recomputation replays each dropout generator of the layer from the state it had in the first pass.
/// </summary>
/// <remarks>
/// One instance serves one forward pass. The pass's shared inputs (positions, masks, rotary tables) are created in the
/// forward's dispose scope, which ends before backward; <see cref="Keep(DisposeScope, int)"/> takes them out of it, and
/// they are freed when the last layer's recomputation is done (or by the finaliser when the graph is dropped unused).
/// </remarks>
public sealed class LayerCheckpoint : IDisposable
{
    private readonly List<Tensor> kept = [];
    private int pending;

    /// <summary>Takes the tensors created in <paramref name="scope"/> after its first <paramref name="since"/> entries out of it.</summary>
    public void Keep(DisposeScope scope, int since)
    {
        var created = scope.DisposablesView.Skip(since).OfType<Tensor>().ToList();
        scope.Detach(created);
        kept.AddRange(created);
    }

    /// <summary>Keeps tensors the layers share (e.g. the rotary tables) alive until the layers' backward has run.</summary>
    public void Keep(params Tensor[] tensors)
    {
        foreach (var t in tensors) kept.Add(t.DetachFromDisposeScope());
    }

    /// <summary><paramref name="forward"/>(<paramref name="layer"/>, <paramref name="x"/>), recomputed in backward instead of kept.</summary>
    public Tensor Run<TLayer>(TLayer layer, Tensor x, Func<TLayer, Tensor, Tensor> forward) where TLayer : nn.Module
    {
        pending++;
        // Without an input that requires grad autograd would not call the layer's backward at all, and the parameters
        // inside it (adapters over a frozen embedding) would get no gradient: transformers' enable_input_require_grads.
        var input = x.requires_grad ? x : x.detach().requires_grad_(true);
        var generators = layer.modules().OfType<IOwnsGenerator>().Select(m => m.Generator).ToList();
        return Recompute.apply(input, new Step(this, h => forward(layer, h), generators));
    }

    private void LayerDone()
    {
        if (--pending == 0) Dispose();
    }

    public void Dispose()
    {
        foreach (var t in kept) t.Dispose();
        kept.Clear();
    }

    private sealed record Step(LayerCheckpoint Owner, Func<Tensor, Tensor> Forward, IReadOnlyList<Generator> Generators)
    {
        public List<Tensor> GeneratorStates { get; } = [];
    }

    private sealed class Recompute : autograd.SingleTensorFunction<Recompute>
    {
        public override string Name => nameof(LayerCheckpoint);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (x, step) = ((Tensor)vars[0], (Step)vars[1]);
            foreach (var g in step.Generators) step.GeneratorStates.Add(g.get_state().DetachFromDisposeScope());
            ctx.save_for_backward([x]);
            ctx.save_data("step", step);
            ctx.set_materialize_grads(false);
            return step.Forward(x);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
        {
            var step = (Step)ctx.get_data("step");
            try
            {
                if (grad is null || grad.IsInvalid) return [null!, null!];
                var x = ctx.get_saved_variables()[0];
                // Replay the layer's dropout draws, then leave its generators where the first pass left them.
                var after = step.Generators.Select(g => g.get_state()).ToList();
                for (int i = 0; i < step.Generators.Count; i++) step.Generators[i].set_state(step.GeneratorStates[i]);
                using var input = x.detach().requires_grad_(true);
                using (enable_grad())
                {
                    using var scope = NewDisposeScope();
                    var y = step.Forward(input);
                    autograd.backward([y], [grad]);
                }
                for (int i = 0; i < step.Generators.Count; i++) step.Generators[i].set_state(after[i]);
                foreach (var s in after) s.Dispose();
                return [input.grad?.detach().clone()!, null!];
            }
            finally
            {
                foreach (var s in step.GeneratorStates) s.Dispose();
                step.GeneratorStates.Clear();
                step.Owner.LayerDone();
            }
        }
    }
}
