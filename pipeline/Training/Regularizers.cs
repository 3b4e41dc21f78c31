using Forgetless.Model.Safetensors;
using Forgetless.Peft;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Training;

/// <summary>A term added to the task loss to protect old abilities; built over named parameters.</summary>
public interface IRegularizer
{
    /// <summary>The penalty as a scalar tensor attached to the graph (the caller owns it).</summary>
    Tensor Penalty();
}

/// <summary>
/// Elastic weight consolidation (Kirkpatrick et al. 2017) as Avalanche writes it, without the ½:
/// λ · Σ_i F_i (θ_i − θ*_i)². Parameters without a Fisher entry are not penalised.
/// </summary>
public sealed class Ewc : IRegularizer, IDisposable
{
    private readonly List<(Parameter p, Tensor fisher, Tensor anchor)> terms = [];
    public double Lambda { get; }

    /// <param name="fisher">Diagonal Fisher per parameter name (see <see cref="DiagonalFisher"/>); copied.</param>
    /// <param name="anchors">θ* per parameter name (the old task's values); copied.</param>
    public Ewc(IEnumerable<(string name, Parameter parameter)> parameters, IReadOnlyDictionary<string, Tensor> fisher,
        IReadOnlyDictionary<string, Tensor> anchors, double lambda)
    {
        Lambda = lambda;
        foreach (var (name, p) in parameters)
        {
            if (!fisher.TryGetValue(name, out var f)) continue;
            if (!anchors.TryGetValue(name, out var a))
                throw new ArgumentException($"EWC: no anchor value for '{name}'.");
            if (!f.shape.SequenceEqual(p.shape) || !a.shape.SequenceEqual(p.shape))
                throw new ArgumentException($"EWC: shapes of '{name}' differ: parameter [{string.Join(", ", p.shape)}], " +
                    $"fisher [{string.Join(", ", f.shape)}], anchor [{string.Join(", ", a.shape)}].");
            terms.Add((p, f.detach().clone().DetachFromDisposeScope(), a.detach().clone().DetachFromDisposeScope()));
        }
        if (terms.Count == 0) throw new ArgumentException("EWC: no parameter has a Fisher entry.");
    }

    public Tensor Penalty()
    {
        using var scope = NewDisposeScope();
        Tensor total = zeros(1).squeeze();
        foreach (var (p, f, a) in terms) total = total.add(p.sub(a).square().mul(f).sum());
        return total.mul(Lambda).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Diagonal empirical Fisher: the mean over samples of the squared gradient of each sample's log-likelihood of its
    /// true labels. Each delegate runs the model on one sample (or one minibatch, Avalanche-style) and returns that
    /// scalar log-likelihood. Clears the parameters' gradients before and after.
    /// </summary>
    public static Dictionary<string, Tensor> DiagonalFisher(IReadOnlyList<(string name, Parameter parameter)> parameters,
        IEnumerable<Func<Tensor>> sampleLogLikelihoods)
    {
        var fisher = parameters.ToDictionary(p => p.name, p => zeros_like(p.parameter), StringComparer.Ordinal);
        var n = 0;
        foreach (var sample in sampleLogLikelihoods)
        {
            using var scope = NewDisposeScope();
            foreach (var (_, p) in parameters) p.grad?.zero_();
            var ll = sample();
            ll.backward();
            using (no_grad())
                foreach (var (name, p) in parameters)
                    if (p.grad is { } g) fisher[name].add_(g.square());
            n++;
        }
        if (n == 0) throw new ArgumentException("DiagonalFisher: no samples.");
        foreach (var (_, p) in parameters) p.grad?.zero_();
        foreach (var f in fisher.Values) f.div_(n);
        return fisher;
    }

    /// <summary>Online EWC: F = γ·F_old + F_new (names in either; a missing side counts as 0).</summary>
    public static Dictionary<string, Tensor> Online(IReadOnlyDictionary<string, Tensor> old, IReadOnlyDictionary<string, Tensor> fresh, double gamma)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var name in old.Keys.Union(fresh.Keys))
        {
            var o = old.TryGetValue(name, out var ov) ? ov.mul(gamma) : null;
            var f = fresh.TryGetValue(name, out var fv) ? fv.detach().clone() : null;
            result[name] = o is null ? f! : f is null ? o : o.add_(f);
            if (o is not null && f is not null) f.Dispose();
        }
        return result;
    }

    /// <summary>Saves Fisher and anchors (<c>fisher/NAME</c>, <c>anchor/NAME</c>) for a later stage or task.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> fisher, IReadOnlyDictionary<string, Tensor> anchors)
    {
        var all = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (k, v) in fisher) all["fisher/" + k] = v;
        foreach (var (k, v) in anchors) all["anchor/" + k] = v;
        SafetensorsWriter.Write(path, all, SafetensorsDType.Keep, new Dictionary<string, string> { ["kind"] = "ewc" });
    }

    public static (Dictionary<string, Tensor> fisher, Dictionary<string, Tensor> anchors) Load(string path)
    {
        var tensors = SafetensorsFile.Open(path).ReadAll();
        return (
            tensors.Where(kv => kv.Key.StartsWith("fisher/", StringComparison.Ordinal)).ToDictionary(kv => kv.Key["fisher/".Length..], kv => kv.Value),
            tensors.Where(kv => kv.Key.StartsWith("anchor/", StringComparison.Ordinal)).ToDictionary(kv => kv.Key["anchor/".Length..], kv => kv.Value));
    }

    /// <summary>θ* for the given parameters: detached copies of their current values.</summary>
    public static Dictionary<string, Tensor> Snapshot(IEnumerable<(string name, Parameter parameter)> parameters) =>
        parameters.ToDictionary(p => p.name, p => p.parameter.detach().clone(), StringComparer.Ordinal);

    public void Dispose()
    {
        foreach (var (_, f, a) in terms) { f.Dispose(); a.Dispose(); }
        terms.Clear();
    }
}

/// <summary>L2-SP (Li et al. 2018): λ·Σ ‖θ − θ₀‖² toward given anchors, or toward zero (plain L2) without them.</summary>
public sealed class L2Sp : IRegularizer, IDisposable
{
    private readonly List<(Parameter p, Tensor? anchor)> terms = [];
    public double Lambda { get; }

    public L2Sp(IEnumerable<(string name, Parameter parameter)> parameters, IReadOnlyDictionary<string, Tensor>? anchors, double lambda)
    {
        Lambda = lambda;
        foreach (var (name, p) in parameters)
        {
            Tensor? a = null;
            if (anchors is not null)
            {
                if (!anchors.TryGetValue(name, out var av)) throw new ArgumentException($"L2-SP: no anchor value for '{name}'.");
                if (!av.shape.SequenceEqual(p.shape))
                    throw new ArgumentException($"L2-SP: anchor of '{name}' has shape [{string.Join(", ", av.shape)}], parameter [{string.Join(", ", p.shape)}].");
                a = av.detach().clone().DetachFromDisposeScope();
            }
            terms.Add((p, a));
        }
    }

    public Tensor Penalty()
    {
        using var scope = NewDisposeScope();
        Tensor total = zeros(1).squeeze();
        foreach (var (p, a) in terms) total = total.add((a is null ? p.square() : p.sub(a).square()).sum());
        return total.mul(Lambda).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var (_, a) in terms) a?.Dispose();
        terms.Clear();
    }
}
