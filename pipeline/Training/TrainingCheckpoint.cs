using Forgetless.Model;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Forgetless.Model.Safetensors;
using Forgetless.Runs;
using Microsoft.Extensions.Logging;
using Forgetless.Peft;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Training;

/// <summary>
/// Everything a run needs to continue bit-identically, in one safetensors file: the trainable tensors
/// (<c>param/NAME</c>), the AdamWOptimizer state, torch's CPU generator (<c>rng/torch_cpu</c>, U8), and in the metadata the
/// step and the sampler state. Frozen tensors are not stored; they come from the base model.
/// <para>
/// The file carries its own digest (<see cref="DigestKey"/>: SHA-256 of the file with those 64 hex digits read as '0'),
/// and the one it replaces is kept as <see cref="PreviousOf"/>, so that a resume never starts from bytes that changed on
/// disk: <see cref="Resumable"/> sets a damaged checkpoint aside and falls back to the previous one, or to step 0.
/// </para>
/// </summary>
public static class TrainingCheckpoint
{
    public const string DigestKey = "checkpoint_sha256";
    private static readonly string Placeholder = new('0', 64);
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
        meta[DigestKey] = Placeholder;
        var bytes = SafetensorsWriter.Serialize(tensors, SafetensorsDType.Keep, meta);
        int at = DigestPosition(bytes, Placeholder) ?? throw new InvalidOperationException("checkpoint digest placeholder not found in the header");
        Encoding.ASCII.GetBytes(Convert.ToHexStringLower(SHA256.HashData(bytes))).CopyTo(bytes, at);
        // The last checkpoint becomes the previous one only once the new one is complete; a crash in between leaves one of them.
        if (File.Exists(path)) File.Move(path, PreviousOf(path), overwrite: true);
        AtomicFile.Write(path, stream => stream.Write(bytes));
    }

    /// <summary>Where the checkpoint that <paramref name="path"/> replaced is kept (<c>checkpoint.previous.safetensors</c>).</summary>
    public static string PreviousOf(string path) =>
        Path.Combine(Path.GetDirectoryName(path)!, Path.GetFileNameWithoutExtension(path) + ".previous" + Path.GetExtension(path));

    /// <summary>Why the checkpoint cannot be trusted (unreadable, no digest, or bytes that do not match it); null when it is intact.</summary>
    public static string? Damage(string path)
    {
        SafetensorsFile file;
        try
        {
            file = SafetensorsFile.Open(path);
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            return $"not a readable checkpoint ({e.Message})";
        }
        if (!file.Metadata.TryGetValue(DigestKey, out var recorded) || recorded.Length != 64 || !recorded.All(char.IsAsciiHexDigitLower))
            return $"it carries no {DigestKey} (not written by this version of Forgetless)";
        var bytes = File.ReadAllBytes(path);
        if (DigestPosition(bytes, recorded) is not { } at) return $"its {DigestKey} is not where the header keeps it";
        Encoding.ASCII.GetBytes(Placeholder).CopyTo(bytes, at);
        string actual = Convert.ToHexStringLower(SHA256.HashData(bytes));
        return actual == recorded ? null : $"its bytes hash to {actual[..12]}…, but it was written as {recorded[..12]}… (changed or damaged on disk)";
    }

    /// <summary>
    /// The checkpoint to resume from: <paramref name="path"/> when intact, else the previous one when intact, else null
    /// (start from step 0). Each damaged file is moved aside to <c>NAME.damaged</c> and named in a warning.
    /// </summary>
    public static string? Resumable(string path, ILogger logger, string stage)
    {
        bool setAside = false;
        foreach (var candidate in new[] { path, PreviousOf(path) })
        {
            if (!File.Exists(candidate)) continue;
            if (Damage(candidate) is not { } damage) return candidate;
            string aside = candidate + ".damaged";
            for (int n = 2; File.Exists(aside); n++) aside = $"{candidate}.damaged{n}";
            File.Move(candidate, aside);
            setAside = true;
            logger.LogWarning("{Stage}: checkpoint {Path} is damaged — {Damage}; set aside as {Aside}", stage, candidate, damage, Path.GetFileName(aside));
        }
        if (setAside) logger.LogWarning("{Stage}: no intact checkpoint left; training restarts from step 0", stage);
        return null;
    }

    /// <summary>Offset of <paramref name="digest"/> as the value of <see cref="DigestKey"/> in the header.</summary>
    private static int? DigestPosition(byte[] bytes, string digest)
    {
        if (bytes.Length < 8) return null;
        long headerEnd = 8 + BitConverter.ToInt64(bytes, 0);
        if (headerEnd > bytes.Length || headerEnd < 8) return null;
        var field = Encoding.ASCII.GetBytes($"\"{DigestKey}\":\"{digest}\"");
        int at = bytes.AsSpan(8, (int)(headerEnd - 8)).IndexOf(field);
        return at < 0 ? null : 8 + at + DigestKey.Length + 4; // past "KEY":"
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
