using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Training;

public static class Gradients
{
    /// <summary>
    /// Scales all gradients so their global L2 norm is at most <paramref name="maxNorm"/> (torch's clip_grad_norm_:
    /// coefficient maxNorm/(norm + 1e-6), only when below 1). Returns the norm before clipping; when it is not finite
    /// nothing is scaled and the caller should skip the step.
    /// </summary>
    public static double ClipGlobalNorm(IEnumerable<Parameter> parameters, double maxNorm)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var grads = parameters.Select(p => p.grad).Where(g => g is not null).Cast<Tensor>().ToList();
        if (grads.Count == 0) return 0;
        var norms = stack(grads.Select(g => linalg.vector_norm(g, 2)).ToArray());
        var total = linalg.vector_norm(norms, 2).item<float>();
        if (!float.IsFinite(total)) return total;
        var coef = maxNorm / (total + 1e-6);
        if (coef < 1)
        {
            using var held = coef.ToScalar(); // held for the calls (Forgetless.Model.Scalars)
            foreach (var g in grads) g.mul_(held);
        }
        return total;
    }

    /// <summary>Names of the parameters whose gradient has a NaN or an infinity.</summary>
    public static IReadOnlyList<string> NonFinite(IEnumerable<(string name, Parameter parameter)> parameters) =>
        parameters.Where(p => p.parameter.grad is { } g && !IsFinite(g)).Select(p => p.name).ToList();

    /// <summary>True when every value of <paramref name="t"/> is finite.</summary>
    public static bool IsFinite(Tensor t)
    {
        using var finite = isfinite(t).all();
        return finite.item<bool>();
    }
}
