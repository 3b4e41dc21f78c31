using Forgetless.Model.Devices;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Forgetless.Model;
using Forgetless.Model.Tokenizers;
using Forgetless.Progress;
using Forgetless.Runs;
using Forgetless.Training;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Pretraining;

/// <summary>What a pretraining run reports: the model and the numbers for its model card.</summary>
public sealed record PretrainResult(CausalLM Model, ITokenizer Tokenizer, int[] TrainTokens, long Steps, long TokensSeen, double WallSeconds,
    double FinalTrainLoss, double FinalHeldoutLoss, int Parameters);

/// <summary>
/// Trains a small Llama from scratch on the general text: random windows, AdamW, warm-up then
/// cosine decay, gradient clipping. Checkpoints go to the work folder every few steps; Ctrl+C
/// checkpoints at the step boundary; a rerun resumes and gives the same weights as an
/// uninterrupted run. The loss curve is kept as JSON lines.
/// </summary>
public sealed class Pretrainer(PretrainOptions options, long seed, Func<string, string> resolvePath, ILogger logger)
{
    /// <summary>Where the model trains (the CPU by default); pretraining keeps every tensor in f32.</summary>
    public Device Device { get; init; } = CPU;

    public const string MetricsFile = "metrics.jsonl";
    private const string CheckpointFile = "checkpoint.safetensors";

    /// <summary>Called after every completed step (tests use it to interrupt a run at a known step).</summary>
    internal Action<long>? AfterStep { get; init; }

    public PretrainResult Run(string workDirectory, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        string tokenizerDir = resolvePath(options.Tokenizer);
        var tokenizer = TokenizerLoader.Load(tokenizerDir);
        string tokenizerDigest = FileHashes.Compute(Path.Combine(tokenizerDir, "tokenizer.json"));
        logger.LogInformation("pretrain: tokenizing {Corpus} (cached after the first run)", options.Corpus);
        var corpus = TokenCorpus.Load(resolvePath(options.Corpus), tokenizer, tokenizerDigest, workDirectory);
        var heldout = TokenCorpus.Load(resolvePath(options.Heldout), tokenizer, tokenizerDigest, workDirectory);
        logger.LogInformation("pretrain: {Train} training tokens, {Heldout} held-out tokens", corpus.Tokens.Length, heldout.Tokens.Length);

        var model = ModelFactory.Create(ModelConfigFor(tokenizer), seed);
        model.to(Device);
        model.train();
        var trainable = model.named_parameters().Select(p => (p.name, p.parameter)).ToList();
        int parameterCount = (int)trainable.Sum(p => p.parameter.numel());
        logger.LogInformation("pretrain: llama {Layers} layers, d={Hidden}, {Params:N0} parameters", options.Layers, options.Hidden, parameterCount);

        using var optimizer = AdamWOptimizer.ForParameters(trainable, new AdamWOptions { LearningRate = options.LearningRate, WeightDecay = options.WeightDecay, Beta2 = 0.95 });
        var schedule = new WarmupCosineSchedule(options.WarmupSteps, options.Steps, options.MinLrRatio);
        var sampler = new WindowSampler(corpus.Tokens, options.SeqLen, options.Batch, seed);
        string checkpoint = Path.Combine(workDirectory, CheckpointFile);
        string metricsPath = Path.Combine(workDirectory, MetricsFile);

        long step = 0;
        if (TrainingCheckpoint.Resumable(checkpoint, logger, "pretrain") is { } intact)
        {
            step = TrainingCheckpoint.Load(intact, trainable, optimizer).Step;
            logger.LogInformation("pretrain: resuming from step {Step}", step);
        }
        TrimMetrics(metricsPath, step);

        int tokensPerStep = options.Batch * options.SeqLen;
        double lastLoss = double.NaN, lastHeldout = double.NaN;
        using var progress = new ProgressBar("pretrain", options.Steps, "steps", alreadyDone: step);
        using var heap = FineTuning.NativeHeap.ReuseFreedBlocks(); // every step frees the tensors the next one makes again
        while (step < options.Steps)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                TrainingCheckpoint.Save(checkpoint, step, trainable, optimizer, null);
                logger.LogWarning("pretrain: stopped at step {Step}; checkpoint saved, rerun to resume", step);
                cancellationToken.ThrowIfCancellationRequested();
            }
            double lrFactor = schedule.Factor(step);
            lastLoss = TrainStep(model, optimizer, sampler, step, lrFactor);
            step++;
            if (!double.IsFinite(lastLoss))
                throw new InvalidOperationException($"pretrain: loss became {lastLoss} at step {step}; the last good checkpoint is kept in {workDirectory}");

            bool evaluate = step % options.EvalEvery == 0 || step == options.Steps;
            if (evaluate) lastHeldout = HeldoutLoss(model, heldout.Tokens);
            if (step % options.LogEvery == 0 || evaluate)
                AppendMetrics(metricsPath, step, lastLoss, options.LearningRate * lrFactor, evaluate ? lastHeldout : null, (long)step * tokensPerStep);
            if (step % options.CheckpointEvery == 0 && step < options.Steps)
                TrainingCheckpoint.Save(checkpoint, step, trainable, optimizer, null);
            string heldoutText = double.IsNaN(lastHeldout) ? "" : string.Create(CultureInfo.InvariantCulture, $" · held-out {lastHeldout:F3}");
            progress.Report(step, string.Create(CultureInfo.InvariantCulture, $"loss {lastLoss:F3}{heldoutText} · {progress.Rate * tokensPerStep:F0} tok/s"));
            AfterStep?.Invoke(step);
        }
        model.eval();
        return new PretrainResult(model, tokenizer, corpus.Tokens, step, step * tokensPerStep, clock.Elapsed.TotalSeconds, lastLoss, lastHeldout, parameterCount);
    }

    private ModelConfig ModelConfigFor(ITokenizer tokenizer) =>
        ModelConfig.Llama(tokenizer.VocabSize, options.Hidden, options.Layers, options.Heads, options.KvHeads,
                options.Intermediate > 0 ? options.Intermediate : null, options.MaxPositions, options.TieEmbeddings) with
        {
            BosTokenId = tokenizer.BosId,
            EosTokenIds = tokenizer.EosId is { } eos ? [eos] : [],
            PadTokenId = tokenizer.PadId,
        };

    private double TrainStep(CausalLM model, AdamWOptimizer optimizer, WindowSampler sampler, long step, double lrFactor)
    {
        using var scope = NewDisposeScope();
        var (inputs, targets) = sampler.Batch(step, Device);
        var logits = model.Forward(inputs);
        var loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), targets.reshape(-1));
        loss.backward();
        Gradients.ClipGlobalNorm(optimizer.Parameters.Select(p => p.parameter), options.ClipNorm);
        optimizer.Step(lrFactor);
        optimizer.ZeroGrad();
        return HostValues.Scalar(loss);
    }

    /// <summary>Mean token loss (nats) over a fixed set of held-out windows.</summary>
    private double HeldoutLoss(CausalLM model, int[] tokens)
    {
        model.eval();
        try
        {
            using var noGrad = no_grad();
            double sum = 0;
            int count = 0;
            foreach (var (inputs, targets) in WindowSampler.Sequential(tokens, options.SeqLen, options.EvalWindows, Device))
            {
                using var scope = NewDisposeScope();
                var logits = model.Forward(inputs);
                sum += HostValues.Scalar(nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), targets.reshape(-1)));
                count++;
            }
            return count > 0 ? sum / count : double.NaN;
        }
        finally
        {
            model.train();
        }
    }

    private static void AppendMetrics(string path, long step, double loss, double lr, double? heldout, long tokens)
    {
        var entry = new Dictionary<string, object?> { ["step"] = step, ["tokens"] = tokens, ["loss"] = Math.Round(loss, 5), ["lr"] = lr };
        if (heldout is { } h) entry["heldout_loss"] = Math.Round(h, 5);
        File.AppendAllText(path, JsonSerializer.Serialize(entry) + "\n");
    }

    /// <summary>After a resume, lines past the checkpoint would repeat: drop them so the curve equals an uninterrupted one.</summary>
    private static void TrimMetrics(string path, long step)
    {
        if (!File.Exists(path)) return;
        var kept = File.ReadAllLines(path)
            .Where(line => line.Length > 0 && JsonDocument.Parse(line).RootElement.GetProperty("step").GetInt64() <= step)
            .ToList();
        AtomicFile.WriteAllText(path, kept.Count == 0 ? "" : string.Join("\n", kept) + "\n");
    }
}
