using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Forgetless.Data;
using Forgetless.Data.Sources;
using Forgetless.Evaluation;
using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Model.Inference;
using Forgetless.Model.Tokenizers;
using Forgetless.Peft;
using Forgetless.Training.Terms;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Continual;

/// <summary>One evaluation while fine-tuning: the held-out task's validation loss and the general held-out loss.</summary>
public sealed record CurvePoint(long Step, double ValidationLoss, double HeldoutLoss);

/// <summary>Fine-tuning the held-out task from one initialisation.</summary>
/// <param name="Curve">Every evaluation, step 0 first.</param>
/// <param name="StepsToTarget">The first evaluated step at or below the target validation loss; null when never reached.</param>
public sealed record ReptileArm(string Init, IReadOnlyList<CurvePoint> Curve, long? StepsToTarget, double Accuracy, double HeldoutRise);

/// <summary>reptile.json: the meta-learned and the fresh initialisation fine-tuned on the held-out task.</summary>
public sealed record ReptileResult(string HeldOutTask, IReadOnlyList<string> MetaTasks, ReptileOptions Options, double BaseHeldoutLoss,
    double BaseAccuracy, ReptileArm FromMeta, ReptileArm FromFresh)
{
    public string Describe()
    {
        var s = new StringBuilder();
        s.Append(CultureInfo.InvariantCulture, $"Reptile: meta-trained on {string.Join(", ", MetaTasks)} ({Options.MetaIterations} iterations of {Options.InnerSteps} inner steps), ");
        s.Append(CultureInfo.InvariantCulture, $"then {Options.FineTuneSteps} steps on {HeldOutTask} (untrained accuracy {BaseAccuracy:F3}).\n");
        foreach (var arm in new[] { FromMeta, FromFresh })
            s.Append(CultureInfo.InvariantCulture,
                $"  from {arm.Init,-5}: validation loss {arm.Curve[0].ValidationLoss:F3} → {arm.Curve[^1].ValidationLoss:F3}, reached {Options.TargetValidationLoss} at " +
                $"{(arm.StepsToTarget is { } s2 ? $"step {s2}" : "no step")}, accuracy {arm.Accuracy:F3}, held-out loss rise {arm.HeldoutRise:+0.000;-0.000}\n");
        return s.ToString();
    }
}

/// <summary>
/// First-order meta-learning of an adapter initialisation (Reptile, Nichol, Achiam and Schulman 2018): starting from a
/// fresh adapter φ, each iteration trains a copy on one meta-training task for a few steps (the inner loop, through the
/// normal <see cref="Trainer"/> with a fresh optimizer) to φ′ and moves φ ← φ + ε(φ′ − φ). The held-out task is then
/// fine-tuned from φ and from the fresh adapter with the same data, schedule and seed; the validation loss curve, the
/// steps to a target loss, the held-out task's accuracy and the rise of the general held-out loss are compared.
/// Deterministic for a seed; about a few minutes on the embedded default. After every meta-iteration φ is saved in
/// <paramref name="workDirectory"/> (<see cref="StateFile"/>, with the iteration and a fingerprint of the settings), so
/// an interrupted run resumes at the next iteration and ends with the same bytes.
/// </summary>
public sealed class ReptileExperiment(ReptileSetup setup, ContinualOptions options, ILogger logger, string workDirectory)
{
    public const string StateFile = "reptile-meta.safetensors";

    private ContinualOptions Options => options;

    public ReptileResult Run(CancellationToken cancellationToken)
    {
        var r = options.Reptile;
        var heldOut = r.HeldOutTask.Length > 0 ? options.Tasks.FirstOrDefault(t => t.Name == r.HeldOutTask)
            ?? throw new Configuration.ConfigException($"continual.reptile.heldOutTask = '{r.HeldOutTask}': not one of continual.tasks ({string.Join(", ", options.Tasks.Select(t => t.Name))})")
            : options.Tasks[^1];
        var meta = options.Tasks.Where(t => t != heldOut).ToList();
        if (meta.Count == 0) throw new Configuration.ConfigException("continual.reptile: needs at least two tasks (one held out, one or more to meta-train on)");

        var (model, tokenizer) = setup.LoadBase();
        using var tuned = setup.Finetune.Apply(model, setup.Seed, placement: setup.Placement);
        var fresh = Snapshot(tuned);
        var metaRows = meta.Select(t => Encode(tokenizer, setup.Resolve(t.Train), t, setup.SeqLen, int.MaxValue)).ToList();
        var heldRows = Encode(tokenizer, setup.Resolve(heldOut.Train), heldOut, setup.SeqLen, int.MaxValue);
        var validation = heldRows.TakeLast(64).ToList();
        var train = heldRows.Take(heldRows.Count - validation.Count).ToList();
        var general = LossProbe.HeldoutRows(setup.Heldout, tokenizer, 8, 256, model.Config.MaxPositionEmbeddings);
        double baseHeldout = LossProbe.MeanLoss(model, general, 8);

        Directory.CreateDirectory(workDirectory);
        string work = Path.Combine(workDirectory, "steps");
        string statePath = Path.Combine(workDirectory, StateFile);
        string fingerprint = Runs.FileHashes.Of(Configuration.PipelineConfig.Canonical(new { r, tasks = options.Tasks, setup.Finetune, setup.Seed, setup.SeqLen, setup.LearningRate }));
        try
        {
            int start = Resume(tuned, statePath, fingerprint);
            if (start > 0) logger.LogInformation("reptile: resuming after meta-iteration {It} ({File})", start, statePath);
            for (int it = start; it < r.MetaIterations; it++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int k = it % meta.Count;
                var before = Snapshot(tuned);
                Train(tuned, metaRows[k], new LossProbe([], []), r.InnerSteps, r.InnerLearningRate, evalEvery: int.MaxValue, seed: setup.Seed + it, Path.Combine(work, $"meta-{it}"), cancellationToken);
                using (no_grad())
                using (var outerStep = r.OuterStepSize.ToScalar())
                    foreach (var (name, p) in tuned.Trainable)
                        p.copy_(before[name].add(p.detach().sub(before[name]).mul(outerStep), Scalars.One));
                Dispose(before);
                Directory.Delete(Path.Combine(work, $"meta-{it}"), recursive: true);
                Model.Safetensors.SafetensorsWriter.Write(statePath, tuned.Trainable.Select(t => KeyValuePair.Create(t.name, (Tensor)t.parameter)),
                    Model.Safetensors.SafetensorsDType.Keep, new Dictionary<string, string>
                    {
                        ["iteration"] = (it + 1).ToString(CultureInfo.InvariantCulture), ["fingerprint"] = fingerprint,
                    });
                logger.LogInformation("reptile: meta-iteration {It}/{Count} on {Task}", it + 1, r.MetaIterations, meta[k].Name);
            }
            var metaInit = Snapshot(tuned);
            var suite = new SuiteOptions { Name = heldOut.Name, Type = SuiteType.MultipleChoice, Role = SuiteRole.New, Path = heldOut.Suite, Limit = options.SuiteLimit };
            double baseAccuracy = Accuracy(model, tokenizer, suite, heldOut, cancellationToken);
            ReptileArm Arm(string name, Dictionary<string, Tensor> init)
            {
                Restore(tuned, init);
                var probe = new LossProbe(validation, general);
                var result = Train(tuned, train, probe, r.FineTuneSteps, setup.LearningRate, evalEvery: Math.Max(1, r.FineTuneSteps / 12), seed: setup.Seed,
                    Path.Combine(work, "arm-" + name), cancellationToken);
                var curve = MetricsLog.Read(Path.Combine(work, "arm-" + name, MetricsLog.FileName))
                    .Where(e => e.ContainsKey("val_task_loss")).Select(e => new CurvePoint((long)e["step"], e["val_task_loss"], e["heldout_loss"])).ToList();
                long? reached = curve.Where(c => c.ValidationLoss <= r.TargetValidationLoss).Select(c => (long?)c.Step).FirstOrDefault();
                double accuracy = Accuracy(model, tokenizer, suite, heldOut, cancellationToken);
                return new ReptileArm(name, curve, reached, Math.Round(accuracy, 6), Math.Round(result.HeldoutLossAfter - baseHeldout, 6));
            }
            var fromMeta = Arm("meta", metaInit);
            var fromFresh = Arm("fresh", fresh);
            Dispose(metaInit);
            return new ReptileResult(heldOut.Name, meta.Select(t => t.Name).ToList(), r, Math.Round(baseHeldout, 6), Math.Round(baseAccuracy, 6), fromMeta, fromFresh);
        }
        finally
        {
            Dispose(fresh);
            if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>The meta-iterations a saved φ already covers (0 without one, or when it was saved under other settings).</summary>
    private int Resume(TunedModel tuned, string statePath, string fingerprint)
    {
        if (!File.Exists(statePath)) return 0;
        var file = Model.Safetensors.SafetensorsFile.Open(statePath);
        if (!file.Metadata.TryGetValue("fingerprint", out var saved) || saved != fingerprint
            || !file.Metadata.TryGetValue("iteration", out var text) || !int.TryParse(text, CultureInfo.InvariantCulture, out int done))
        {
            logger.LogInformation("reptile: {File} was saved under other settings; starting over", statePath);
            return 0;
        }
        var values = file.ReadAll();
        try
        {
            Restore(tuned, values.ToDictionary(v => v.Key, v => v.Value, StringComparer.Ordinal));
        }
        finally
        {
            foreach (var t in values.Values) t.Dispose();
        }
        return Math.Min(done, options.Reptile.MetaIterations);
    }

    private TrainingResult Train(TunedModel tuned, IReadOnlyList<PreparedRow> rows, LossProbe probe, int steps, double learningRate, int evalEvery,
        long seed, string work, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(work);
        var options = new TrainingOptions
        {
            Steps = steps, TokensPerBatch = Options.Reptile.TokensPerBatch, LearningRate = learningRate, WarmupSteps = 0, MinLrRatio = 1,
            EvalEvery = evalEvery, CheckpointEvery = int.MaxValue, LogEvery = int.MaxValue, KeepBest = false,
        };
        return new Trainer(options, tuned, new PreparedBatches(rows, options.TokensPerBatch, seed), probe, [new TaskLoss()], logger) { StageName = "reptile" }
            .Run(work, cancellationToken);
    }

    /// <summary>The held-out task's metric with the adapter as it is now.</summary>
    private double Accuracy(CausalLM model, ITokenizer tokenizer, SuiteOptions suite, ContinualTask task, CancellationToken cancellationToken)
    {
        model.eval();
        var runner = new SuiteRunner(new Scorer(model, tokenizer, 8), new TextGenerator(model, tokenizer), 8);
        return runner.Run(suite, setup.Resolve(task.Suite), cancellationToken, $"reptile {task.Name}").Value(task.Metric);
    }

    /// <summary>Instruction rows of a task file as training rows (the prepare stage's encoding: loss on the response and eos).</summary>
    public static List<PreparedRow> Encode(ITokenizer tokenizer, string path, ContinualTask task, int seqLen, int limit)
    {
        var encoder = new DocumentEncoder(tokenizer, seqLen, OverLengthPolicy.Truncate);
        var rows = new List<PreparedRow>();
        using var file = File.OpenRead(path);
        using var stream = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : (Stream)file;
        using var reader = new StreamReader(stream);
        long line = 0;
        while (rows.Count < limit && reader.ReadLine() is { } text)
        {
            line++;
            if (text.Length == 0) continue;
            using var doc = JsonDocument.Parse(text);
            var record = SourceRecord.Instruction(line, doc.RootElement.GetProperty(task.PromptField).GetString()!, doc.RootElement.GetProperty(task.ResponseField).GetString()!);
            if (encoder.Encode(record) is { } encoded) rows.Add(new PreparedRow(encoded.Ids, encoded.LossMask, encoded.Ids.Length, "task"));
        }
        return rows;
    }

    private static Dictionary<string, Tensor> Snapshot(TunedModel tuned) =>
        tuned.Trainable.ToDictionary(t => t.name, t => t.parameter.detach().clone().DetachFromDisposeScope(), StringComparer.Ordinal);

    private static void Restore(TunedModel tuned, Dictionary<string, Tensor> values)
    {
        using var _ = no_grad();
        foreach (var (name, p) in tuned.Trainable) p.copy_(values[name]);
    }

    private static void Dispose(Dictionary<string, Tensor> values)
    {
        foreach (var t in values.Values) t.Dispose();
    }
}

/// <summary>
/// What the experiment takes from the pipeline: the base model (loaded on <paramref name="Placement"/>, where the
/// method's adapters are then made), the finetune method, paths and seed.
/// </summary>
public sealed record ReptileSetup(Func<(CausalLM Model, ITokenizer Tokenizer)> LoadBase, FineTuneOptions Finetune, Func<string, string> Resolve,
    string Heldout, int SeqLen, double LearningRate, int Seed, Model.Devices.Placement? Placement = null);
