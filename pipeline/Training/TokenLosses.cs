using Forgetless.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Training;

public static class TokenLosses
{
    /// <summary>A float mask: 1 where <paramref name="labels"/> is not <paramref name="ignoreIndex"/> (HF's -100).</summary>
    public static Tensor MaskFromLabels(Tensor labels, long ignoreIndex = -100)
    {
        using Scalar ignored = ignoreIndex;
        return labels.ne(ignored).to(ScalarType.Float32);
    }

    /// <summary>
    /// Token cross-entropy, mean over unmasked tokens (0 when none). <paramref name="logits"/> [..., V] at position t
    /// scores <paramref name="targets"/>[t] (shift for next-token prediction before calling); <paramref name="mask"/> is
    /// bool or float with the targets' shape; masked targets may hold any value (e.g. -100).
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor targets, Tensor mask)
    {
        using var scope = NewDisposeScope();
        var m = mask.to(ScalarType.Float32);
        var safeTargets = targets.masked_fill(m.eq(Scalars.Zero), Scalars.Zero).to(ScalarType.Int64);
        var logp = nn.functional.log_softmax(logits, -1);
        var nll = logp.gather(-1, safeTargets.unsqueeze(-1)).squeeze(-1).neg();
        return nll.mul(m).sum().div(m.sum().clamp_min(Scalars.One)).MoveToOuterDisposeScope();
    }
}
