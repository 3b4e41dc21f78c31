using TorchSharp;
using TorchSharp.Modules;

namespace Forgetless.Peft;

/// <summary>
/// Which parameters train. Layers are recognised by the <c>layers.N.</c> / <c>h.N.</c> index in the
/// parameter path; embeddings by their module type (<see cref="Embedding"/>), which also catches a tied lm_head.
/// </summary>
public static class Freezing
{
    /// <summary>Full fine-tuning: every parameter trainable.</summary>
    public static void Full(torch.nn.Module model)
    {
        foreach (var p in model.parameters()) p.requires_grad = true;
    }

    /// <summary>Freezes the embeddings and the bottom <paramref name="frozenLayers"/> layers; the rest trains.</summary>
    public static void FreezeBottom(torch.nn.Module model, int frozenLayers)
    {
        if (frozenLayers < 0) throw new ArgumentOutOfRangeException(nameof(frozenLayers), "must be >= 0");
        Full(model);
        foreach (var (_, module) in model.named_modules())
            if (module is Model.TokenEmbedding)
                foreach (var p in module.parameters()) p.requires_grad = false;
        foreach (var (name, p) in model.named_parameters())
            if (ModuleTargets.LayerIndexOf(name) is int layer && layer < frozenLayers)
                p.requires_grad = false;
    }

    /// <summary>PEFT's default for adapter methods: only adapter tensors train; everything else is frozen.</summary>
    public static void OnlyAdapters(torch.nn.Module model)
    {
        foreach (var p in model.parameters()) p.requires_grad = false;
        var adapters = AdapterLayers.NamedParameters(model);
        if (adapters.Count == 0)
            throw new InvalidOperationException("The model has no adapter layers; inject an adapter method first.");
        foreach (var p in adapters.Values) p.requires_grad = true;
    }

    /// <summary>The trainable parameters with their paths, in model order.</summary>
    public static IReadOnlyList<(string name, Parameter parameter)> Trainable(torch.nn.Module model) =>
        model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
}
