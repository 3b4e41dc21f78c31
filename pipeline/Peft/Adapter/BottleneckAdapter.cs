using Forgetless.Model;
using Forgetless.Model.Devices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Peft;

public enum AdapterActivation { Relu, Gelu, Silu }

/// <summary>Options of the Houlsby bottleneck adapter.</summary>
public sealed record BottleneckOptions
{
    /// <summary>Width of the bottleneck.</summary>
    public int BottleneckSize { get; init; } = 16;
    public AdapterActivation Activation { get; init; } = AdapterActivation.Gelu;
    public long Seed { get; init; }
}

/// <summary>
/// Houlsby et al. 2019 bottleneck adapter on a sublayer's output h = inner(x):
/// y = h + up(act(down(h))). <c>adapter_up</c> starts at zero, so a fresh adapter changes nothing.
/// Wrapping <c>o_proj</c> and <c>down_proj</c> puts one after attention and one after the MLP.
/// </summary>
public sealed class BottleneckAdapter : nn.Module<Tensor, Tensor>, IAdapterLayer
{
    public readonly nn.Module<Tensor, Tensor> base_layer;
    public readonly Linear adapter_down;
    public readonly Linear adapter_up;
    private readonly AdapterActivation activation;

    public BottleneckAdapter(nn.Module<Tensor, Tensor> inner, long features, BottleneckOptions options, string modulePath = "")
        : base(nameof(BottleneckAdapter))
    {
        if (options.BottleneckSize <= 0) throw new ArgumentException("Bottleneck size must be positive.");
        base_layer = inner;
        foreach (var p in inner.parameters()) p.requires_grad = false;
        activation = options.Activation;
        adapter_down = nn.Linear(features, options.BottleneckSize);
        adapter_up = nn.Linear(options.BottleneckSize, features);
        using (no_grad())
        {
            using var g = new Generator(ModuleSeed.For(options.Seed, modulePath));
            using var w = ModuleSeed.KaimingUniformA5(options.BottleneckSize, features, g);
            adapter_down.weight.copy_(w);
            adapter_down.bias!.zero_();
            adapter_up.weight.zero_();
            adapter_up.bias!.zero_();
        }
        RegisterComponents();
        ModuleSeed.DetachFromScopes(this);
    }

    public IEnumerable<(string name, Parameter parameter)> AdapterParameters()
    {
        yield return ("adapter_down.weight", adapter_down.weight);
        yield return ("adapter_down.bias", adapter_down.bias!);
        yield return ("adapter_up.weight", adapter_up.weight);
        yield return ("adapter_up.bias", adapter_up.bias!);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = MixedPrecision.Project(base_layer, x);
        var down = adapter_down.forward(MixedPrecision.As(h, adapter_down.weight.dtype));
        var act = activation switch
        {
            AdapterActivation.Relu => nn.functional.relu(down),
            AdapterActivation.Silu => nn.functional.silu(down),
            _ => nn.functional.gelu(down),
        };
        return h.add(MixedPrecision.As(adapter_up.forward(act), h.dtype), Scalars.One).MoveToOuterDisposeScope();
    }
}

public static class Bottleneck
{
    /// <summary>Puts a bottleneck adapter after each target module's output; returns the paths.</summary>
    public static IReadOnlyList<string> Apply(nn.Module model, ModuleTargets targets, BottleneckOptions options) =>
        AdapterInjector.Inject(model, targets, (path, original) =>
            new BottleneckAdapter(original, FrozenLinear.Of(original).OutFeatures, options, path));
}
