using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>A module an adapter method put into the model; it knows which of its parameters are the adapter.</summary>
public interface IAdapterLayer
{
    /// <summary>The trainable adapter tensors with names relative to this layer, e.g. <c>lora_A.weight</c>.</summary>
    IEnumerable<(string name, Parameter parameter)> AdapterParameters();
}

/// <summary>Finds the adapter layers in a model.</summary>
public static class AdapterLayers
{
    public static IReadOnlyList<(string path, IAdapterLayer layer)> Find(nn.Module model) =>
        model.named_modules().Where(m => m.module is IAdapterLayer).Select(m => (m.name, (IAdapterLayer)m.module)).ToList();

    /// <summary>Every adapter tensor under its full module path, e.g. <c>model.layers.0.self_attn.q_proj.lora_A.weight</c>, sorted by name.</summary>
    public static SortedDictionary<string, Parameter> NamedParameters(nn.Module model)
    {
        var result = new SortedDictionary<string, Parameter>(StringComparer.Ordinal);
        foreach (var (path, layer) in Find(model))
            foreach (var (name, p) in layer.AdapterParameters())
                result.Add(path + "." + name, p);
        return result;
    }
}

/// <summary>Stable per-module seeds, so adding a target does not change the other modules' initial values.</summary>
internal static class ModuleSeed
{
    public static ulong For(long seed, string path)
    {
        ulong h = 14695981039346656037UL;
        foreach (var c in path)
        {
            h ^= c;
            h *= 1099511628211UL;
        }
        return h ^ (ulong)seed;
    }

    /// <summary>
    /// Takes a module's tensors out of any dispose scope open while it was built, so the module owns them
    /// (TorchSharp puts new tensors, parameters included, into the innermost open scope).
    /// </summary>
    public static void DetachFromScopes(nn.Module module)
    {
        foreach (var p in module.parameters()) p.DetachFromDisposeScope();
        foreach (var b in module.buffers()) b.DetachFromDisposeScope();
    }

    /// <summary>U(-bound, bound) from a seeded generator: what kaiming_uniform_(a = sqrt(5)) draws with bound = 1/sqrt(fan_in).</summary>
    public static Tensor KaimingUniformA5(long rows, long fanIn, Generator generator)
    {
        var bound = 1.0 / Math.Sqrt(fanIn);
        using var u = rand(new[] { rows, fanIn }, ScalarType.Float32, generator: generator);
        // Scalars held for the whole call (see Forgetless.Model.Scalars: a temporary one can be finalized mid-call).
        using var width = (2 * bound).ToScalar();
        using var shift = bound.ToScalar();
        return u.mul(width).sub_(shift);
    }
}
