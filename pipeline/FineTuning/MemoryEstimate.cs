using System.Globalization;
using Forgetless.Configuration;
using Forgetless.Model;
using Forgetless.Model.Devices;
using Forgetless.Model.Safetensors;
using Forgetless.Peft;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Forgetless.FineTuning;

/// <summary>
/// Peak memory of a fine-tuning run, estimated from config.json before anything is loaded: weights (frozen ones in the
/// compute type, NF4 ones at bitsandbytes' 4.13 bits, trainable ones in f32 with their gradient and AdamW's two
/// moments), the activations autograd keeps for one micro-batch, the logits and their log-softmax and gradient over
/// the vocabulary, and the process itself (runtime, libtorch, tokenizer). Every term is in <see cref="Parts"/>.
/// </summary>
/// <remarks>
/// Activations per token and decoder layer are counted from the tensors autograd saves in our Llama layer (RMSNorm
/// inputs and outputs, rotated q and k, repeated k and v, the attention probabilities of every head over the sequence,
/// the MLP's gate, up and SiLU outputs; the inputs of trained projections besides) — see docs/gpu.md. With gradient
/// checkpointing only each layer's input is kept, plus one layer's activations while it is recomputed.
/// </remarks>
public sealed record MemoryEstimate(IReadOnlyList<(string Part, long Bytes)> Parts)
{
    /// <summary>The process before any model: .NET, libtorch and its thread pools, measured on this machine (≈ 0.3 GB RSS).</summary>
    public const long RuntimeBytes = 300L << 20;

    public long TotalBytes => Parts.Sum(p => p.Bytes);

    public static double Gb(long bytes) => bytes / (double)(1L << 30);

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Gb(TotalBytes):F2} GB (") +
        string.Join(", ", Parts.Where(p => p.Bytes > 0).Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Part} {Gb(p.Bytes):F2}"))) + ")";

    /// <summary>
    /// The estimate for <paramref name="config"/> trained with <paramref name="footprint"/>'s parameters, micro-batches of
    /// <paramref name="tokensPerBatch"/> tokens in rows of up to <paramref name="sequenceLength"/>, and probes of
    /// <paramref name="probeTokens"/> tokens, on <paramref name="placement"/>.
    /// </summary>
    public static MemoryEstimate Of(ModelConfig config, MethodFootprint footprint, int tokensPerBatch, int sequenceLength, int probeTokens,
        Placement placement, bool gradientCheckpointing, bool trainsBaseProjections, bool chunkedLoss = false,
        Training.ChunkedLoss chunkedSetting = Training.ChunkedLoss.Off)
    {
        long b = placement.ComputeType == ScalarType.Float32 ? 4 : 2;
        long h = config.HiddenSize, i = config.IntermediateSize, heads = config.NumAttentionHeads, layers = config.NumHiddenLayers;
        long kv = (long)config.NumKeyValueHeads * config.HeadDim;
        long s = Math.Min(sequenceLength, config.MaxPositionEmbeddings);

        long frozen = footprint.Total - footprint.Trainable - footprint.Quantized;
        long weights = (frozen - footprint.KeptIn16Bit) * b + footprint.KeptIn16Bit * 2;
        long nf4 = footprint.Quantized / 2 + footprint.Quantized / 64 + 4 * (footprint.Quantized / (64 * 256)) + 4 * footprint.QuantizedModules;
        long trainable = footprint.Trainable * 16; // f32 value, gradient, AdamW's m and v

        // Per token and layer, in elements: 9·H + 3·I + heads·S kept by autograd (the MLP's 3 intermediates, the
        // attention probabilities), and when the base projections train their inputs too (o_proj's H, down_proj's I).
        long perLayer = 9 * h + 2 * kv + 3 * i + heads * s + (trainsBaseProjections ? h + i : 0);
        long tokens = tokensPerBatch;
        long activations = gradientCheckpointing
            ? tokens * b * (layers * h + perLayer + 2 * heads * s)
            : tokens * b * (layers * perLayer + 2 * heads * s);
        // logits, their log-softmax (kept for backward) and the gradient flowing back: three f32 [tokens, V] tensors —
        // or, with the chunked loss, a chunk's logits and gradient and the hidden states' gradient kept for backward.
        long logits = chunkedLoss
            ? 2 * Training.ChunkedCrossEntropy.RowsPerChunk(config.VocabSize) * config.VocabSize * 4 + tokens * h * b
            : 3L * tokens * config.VocabSize * 4;
        // A probe (validation, held-out loss) has no autograd, but its logits and log-softmax exist at once (by chunks:
        // one chunk's logits and their exp).
        bool probeChunked = Training.ChunkedCrossEntropy.Applies(chunkedSetting, probeTokens, config.VocabSize, termsReadLogits: false, bareHead: true);
        long probeLogits = probeChunked ? 2 * Training.ChunkedCrossEntropy.RowsPerChunk(config.VocabSize) * config.VocabSize * 4 : 2L * probeTokens * config.VocabSize * 4;
        long probe = probeLogits + (long)probeTokens * b * (4 * h + i + 2 * heads * s);
        long step = Math.Max(activations + logits, probe);
        return new MemoryEstimate(
        [
            ("weights", weights), ("nf4 weights", nf4), ("trainable + adam", trainable),
            (gradientCheckpointing ? "activations (checkpointed)" : "activations", step == probe ? 0 : activations),
            ("logits", step == probe ? probe : logits), ("runtime", RuntimeBytes),
        ]);
    }
}

/// <summary>Parameters of a base model with a method applied: all of them, those that train, and those stored as NF4.</summary>
/// <param name="KeptIn16Bit">Frozen parameters the method's loader keeps in the checkpoint's 16-bit type whatever the compute type (qlora's embeddings).</param>
public sealed record MethodFootprint(long Total, long Trainable, long Quantized, long QuantizedModules, long KeptIn16Bit = 0);

/// <summary>The estimate printed at the start of a training stage and checked against what the device has.</summary>
public static class MemoryCheck
{
    /// <summary>
    /// Logs the estimate for the finetune configuration and throws a <see cref="ConfigException"/> naming what to change
    /// when it exceeds <paramref name="maxMemoryGb"/> (or, when that is 0, the device's memory). Nothing is loaded.
    /// </summary>
    public static MemoryEstimate Before(FineTuneOptions options, string baseModel, Placement placement, double maxMemoryGb, ILogger log,
        int? sequenceLength = null)
    {
        var estimate = Estimate(options, baseModel, placement, sequenceLength);
        var limit = maxMemoryGb > 0 ? (long)(maxMemoryGb * (1L << 30)) : DeviceMemory.Available(placement.Device, log);
        log.LogInformation("finetune: estimated peak memory {Estimate}; {Limit} available on {Device}", estimate,
            limit is { } l ? string.Create(CultureInfo.InvariantCulture, $"{MemoryEstimate.Gb(l):F2} GB") : "unknown memory",
            placement.Device.type.ToString().ToLowerInvariant());
        if (limit is { } max && estimate.TotalBytes > max)
            throw new ConfigException(string.Create(CultureInfo.InvariantCulture,
                $"finetune: the run needs about {MemoryEstimate.Gb(estimate.TotalBytes):F1} GB but {MemoryEstimate.Gb(max):F1} GB are available " +
                $"({(maxMemoryGb > 0 ? "run.maxMemoryGb" : "the device's memory")}); {Advice(options, estimate)}"));
        return estimate;
    }

    /// <summary>The estimate for fine-tuning the model of <paramref name="baseModel"/> (only its config.json is read) as configured.</summary>
    public static MemoryEstimate Estimate(FineTuneOptions options, string baseModel, Placement placement, int? sequenceLength = null)
    {
        var configPath = Path.Combine(baseModel, ModelFolder.ConfigFile);
        if (!File.Exists(configPath)) throw new UserInputException($"{configPath}: not found; the memory estimate needs the base model's config.json");
        var config = ModelConfig.FromJson(File.ReadAllText(configPath), configPath);
        var footprint = options.MethodPlugin.Footprint(config, options.Plugins);
        if (options.MethodPlugin.BaseLoader(options.Plugins) is { } loader && CheckpointWeights.ExistIn(baseModel))
            footprint = footprint with { KeptIn16Bit = KeptIn16Bit(config, CheckpointWeights.Open(baseModel), loader) };
        int seq = sequenceLength ?? Math.Min(options.TokensPerBatch, config.MaxPositionEmbeddings);
        // Before loading, a bare head is presumed (what every supported architecture has unless an adapter targets lm_head).
        bool chunked = Training.ChunkedCrossEntropy.Applies(options.ChunkedLoss, options.TokensPerBatch, config.VocabSize,
            options.Regularizers.Any(r => Training.Terms.TrainingTerms.Find(r)?.ReadsLogits == true), bareHead: true);
        return MemoryEstimate.Of(config, footprint, options.TokensPerBatch, seq, ProbeTokens(options, seq), placement,
            options.GradientCheckpointing, options.MethodPlugin.TrainsBaseProjections, chunked, options.ChunkedLoss);
    }

    /// <summary>
    /// Parameters the loader will keep in 16 bits: asked of it per parameter of a meta skeleton, with the type the
    /// checkpoint's headers give (no tensor data is read).
    /// </summary>
    private static long KeptIn16Bit(ModelConfig config, CheckpointWeights weights, IModuleLoader loader)
    {
        using var skeleton = ModelFactory.CreateUninitialized(config, META);
        long kept = 0;
        foreach (var (path, module) in skeleton.named_modules().Prepend(("", skeleton)))
            foreach (var (attr, p) in module.named_parameters(recurse: false))
            {
                var name = path.Length == 0 ? attr : path + "." + attr;
                if (skeleton.CheckpointKeyOf(name, weights) is not { } key || loader.Claims(path, module)) continue;
                if (loader.ParameterType(name, module, weights.StoredType(key)) is ScalarType.BFloat16 or ScalarType.Float16) kept += p.numel();
            }
        return kept;
    }

    /// <summary>Tokens in one probe batch (<see cref="ProbeRows"/> rows).</summary>
    public static int ProbeTokens(FineTuneOptions options, int sequenceLength) => ProbeRows(options.TokensPerBatch, sequenceLength) * sequenceLength;

    /// <summary>
    /// Rows per probe batch (validation and held-out loss): 8, or fewer so that a batch holds no more tokens than a
    /// training micro-batch — the probe's logits over a large vocabulary would otherwise be the run's peak.
    /// </summary>
    public static int ProbeRows(int tokensPerBatch, int sequenceLength) => Math.Clamp(tokensPerBatch / Math.Max(1, sequenceLength), 1, 8);

    private static string Advice(FineTuneOptions options, MemoryEstimate estimate)
    {
        var tips = new List<string>();
        var largest = estimate.Parts.MaxBy(p => p.Bytes).Part;
        if (largest.StartsWith("activations", StringComparison.Ordinal) || largest == "logits")
        {
            tips.Add($"lower finetune.tokensPerBatch (now {options.TokensPerBatch}; finetune.gradientAccumulation keeps the step's size)");
            if (!options.GradientCheckpointing) tips.Add("set finetune.gradientCheckpointing = true");
        }
        bool quantized = estimate.Parts.Any(p => p.Part == "nf4 weights" && p.Bytes > 0);
        if (!quantized && largest == "weights") tips.Add("use finetune.method = qlora (NF4 base weights)");
        if (largest == "weights") tips.Add("set run.precision = bf16 on a GPU");
        if (largest == "trainable + adam") tips.Add("train fewer parameters (lora, qlora or a smaller freeze)");
        return tips.Count == 0 ? "use a machine with more memory" : string.Join("; or ", tips);
    }
}
