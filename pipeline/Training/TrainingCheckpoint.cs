using System.Globalization;
using Forgetless.Model.Safetensors;
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
    /// <param name="Metadata">Every metadata entry, including what the caller passed as extra metadata.</param>
    public sealed record Restored(long Step, SamplerState? Sampler, IReadOnlyDictionary<string, string>? Metadata = null);

    /// <summary>Prefix of caller-supplied tensors (e.g. the best weights so far) in the checkpoint file.</summary>
    public const string ExtraPrefix = "extra/";

    public static void Save(string path, long step, IEnumerable<(string name, Parameter parameter)> trainable, AdamWOptimizer optimizer,
        SamplerState? sampler, nn.Module? model = null,
        IReadOnlyDictionary<string, Tensor>? extraTensors = null, IReadOnlyDictionary<string, string>? extraMetadata = null)
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
        foreach (var (k, v) in extraTensors ?? new Dictionary<string, Tensor>()) tensors[ExtraPrefix + k] = v;
        foreach (var (k, v) in extraMetadata ?? new Dictionary<string, string>()) meta[k] = v;
        SafetensorsWriter.Write(path, tensors, SafetensorsDType.Keep, meta);
    }

    /// <summary>The caller-supplied tensors of a checkpoint (without their prefix); the caller owns them.</summary>
    public static Dictionary<string, Tensor> ReadExtraTensors(string path)
    {
        var extra = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (k, v) in SafetensorsFile.Open(path).ReadAll())
            if (k.StartsWith(ExtraPrefix, StringComparison.Ordinal)) extra[k[ExtraPrefix.Length..]] = v;
            else v.Dispose();
        return extra;
    }

    /// <summary>Loads into existing objects (same parameter names and shapes) and restores the generator.</summary>
    public static Restored Load(string path, IEnumerable<(string name, Parameter parameter)> trainable, AdamWOptimizer optimizer, nn.Module? model = null)
    {
        var file = SafetensorsFile.Open(path);
        var tensors = file.ReadAll();
        try
        {
            using (no_grad())
            {
                foreach (var (name, p) in trainable)
                {
                    if (!tensors.TryGetValue("param/" + name, out var t))
                        throw new InvalidOperationException($"{path}: trainable tensor '{name}' is not in the checkpoint.");
                    if (!t.shape.SequenceEqual(p.shape))
                        throw new InvalidOperationException($"{path}: '{name}' has shape [{string.Join(", ", t.shape)}], the model [{string.Join(", ", p.shape)}].");
                    p.copy_(t);
                }
            }
            optimizer.LoadStateTensors(
                tensors.Where(kv => kv.Key.StartsWith("optim/", StringComparison.Ordinal)).ToDictionary(kv => kv.Key["optim/".Length..], kv => kv.Value), path);
            if (tensors.TryGetValue("rng/torch_cpu", out var rng)) TorchRng.Restore(rng.data<byte>().ToArray());
            if (model is not null)
                foreach (var (name, m) in model.named_modules())
                    if (m is IOwnsGenerator owner)
                    {
                        if (!tensors.TryGetValue("rng/module/" + name, out var state))
                            throw new InvalidOperationException($"{path}: no generator state for module '{name}'.");
                        owner.Generator.set_state(state);
                    }
            var step = long.Parse(file.Metadata.GetValueOrDefault("step", "0"), CultureInfo.InvariantCulture);
            var sampler = file.Metadata.TryGetValue("sampler", out var s) ? SamplerState.FromJson(s) : null;
            return new Restored(step, sampler, new Dictionary<string, string>(file.Metadata));
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }
}
