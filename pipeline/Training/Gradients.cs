using Forgetless.Model.Devices;
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
        var list = parameters.ToList();
        using var norm = GlobalNorm(list);
        if (norm is null) return 0;
        var total = (float)HostValues.Scalar(norm);
        Clip(list, total, maxNorm);
        return total;
    }

    /// <summary>The global L2 norm of the gradients as a one-element f32 tensor on their device (null without gradients); read it with the step's other values.</summary>
    public static Tensor? GlobalNorm(IEnumerable<Parameter> parameters)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var grads = parameters.Select(p => p.grad).Where(g => g is not null).Cast<Tensor>().ToList();
        if (grads.Count == 0) return null;
        // Tensor.norm passes its order to libtorch as a number (linalg.vector_norm makes a temporary Scalar of it);
        // libtorch's norm is linalg.vector_norm, bit for bit (GradientsTests).
        var norms = stack(grads.Select(g => g.norm(2f)).ToArray());
        return norms.norm(2f).MoveToOuterDisposeScope();
    }

    /// <summary>The second half of <see cref="ClipGlobalNorm"/>, given the norm as read: scales the gradients when it exceeds <paramref name="maxNorm"/>.</summary>
    public static void Clip(IEnumerable<Parameter> parameters, float total, double maxNorm)
    {
        if (!float.IsFinite(total)) return;
        var coef = maxNorm / (total + 1e-6);
        if (coef >= 1) return;
        using var _ = no_grad();
        using var held = coef.ToScalar(); // held for the calls (Forgetless.Model.Scalars)
        foreach (var p in parameters)
            if (p.grad is { } g) g.mul_(held);
    }

    /// <summary>Divides every gradient by <paramref name="scale"/> (f16 loss scaling); nothing when it is 1.</summary>
    public static void Unscale(IEnumerable<Parameter> parameters, double scale)
    {
        if (scale == 1) return;
        using var _ = no_grad();
        using var held = scale.ToScalar(); // held for the calls (Forgetless.Model.Scalars)
        foreach (var p in parameters)
            if (p.grad is { } g) g.div_(held);
    }

    /// <summary>Names of the parameters whose gradient has a NaN or an infinity.</summary>
    public static IReadOnlyList<string> NonFinite(IEnumerable<(string name, Parameter parameter)> parameters) =>
        parameters.Where(p => p.parameter.grad is { } g && !IsFinite(g)).Select(p => p.name).ToList();

    /// <summary>True when every value of <paramref name="t"/> is finite.</summary>
    public static bool IsFinite(Tensor t)
    {
        using var finite = isfinite(t).all();
        return HostValues.Longs(finite)[0] != 0;
    }
}
