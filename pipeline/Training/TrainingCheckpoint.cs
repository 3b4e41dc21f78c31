using System.Globalization;
using Forgetless.Peft;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Training;

/// <summary>
/// Everything a run needs to continue bit-identically, in one safetensors file: the trainable tensors
/// (<c>param/NAME</c>), the AdamWOptimizer state, torch's CPU generator (<c>rng/torch_cpu</c>, U8), and in the metadata the
/// step and the sampler state. Frozen tensors are not stored; they come from the base model.
/// </summary>
public static class TrainingCheckpoint
{
    public sealed record Restored(long Step, SamplerState? Sampler);

    public static void Save(string path, long step, IEnumerable<(string name, Parameter parameter)> trainable, AdamWOptimizer optimizer,
        SamplerState? sampler, nn.Module? model = null)
    {
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, p) in trainable) tensors["param/" + name] = p;
        foreach (var (k, v) in optimizer.StateTensors()) tensors["optim/" + k] = v;
        tensors["rng/torch_cpu"] = tensor(TorchRng.Capture(), ScalarType.Byte);
        if (model is not null)
            foreach (var (name, m) in model.named_modules())
                if (m is IOwnsGenerator owner) tensors["rng/module/" + name] = owner.Generator.get_state();
        var meta = new Dictionary<string, string>
        {
            ["kind"] = "forgetless-training-checkpoint",
            ["step"] = step.ToString(CultureInfo.InvariantCulture),
        };
        if (sampler is not null) meta["sampler"] = sampler.ToJson();
        SafetensorsFile.Write(path, tensors, meta);
    }

    /// <summary>Loads into existing objects (same parameter names and shapes) and restores the generator.</summary>
    public static Restored Load(string path, IEnumerable<(string name, Parameter parameter)> trainable, AdamWOptimizer optimizer, nn.Module? model = null)
    {
        var c = SafetensorsFile.Read(path);
        try
        {
            using (no_grad())
            {
                foreach (var (name, p) in trainable)
                {
                    if (!c.Tensors.TryGetValue("param/" + name, out var t))
                        throw new InvalidOperationException($"{path}: trainable tensor '{name}' is not in the checkpoint.");
                    if (!t.shape.SequenceEqual(p.shape))
                        throw new InvalidOperationException($"{path}: '{name}' has shape [{string.Join(", ", t.shape)}], the model [{string.Join(", ", p.shape)}].");
                    p.copy_(t);
                }
            }
            optimizer.LoadStateTensors(
                c.Tensors.Where(kv => kv.Key.StartsWith("optim/", StringComparison.Ordinal)).ToDictionary(kv => kv.Key["optim/".Length..], kv => kv.Value), path);
            if (c.Tensors.TryGetValue("rng/torch_cpu", out var rng)) TorchRng.Restore(rng.data<byte>().ToArray());
            if (model is not null)
                foreach (var (name, m) in model.named_modules())
                    if (m is IOwnsGenerator owner)
                    {
                        if (!c.Tensors.TryGetValue("rng/module/" + name, out var state))
                            throw new InvalidOperationException($"{path}: no generator state for module '{name}'.");
                        owner.Generator.set_state(state);
                    }
            var step = long.Parse(c.Metadata.GetValueOrDefault("step", "0"), CultureInfo.InvariantCulture);
            var sampler = c.Metadata.TryGetValue("sampler", out var s) ? SamplerState.FromJson(s) : null;
            return new Restored(step, sampler);
        }
        finally
        {
            foreach (var t in c.Tensors.Values) t.Dispose();
        }
    }
}
