using System.Security.Cryptography;
using Forgetless.Model;
using Forgetless.Peft;
using Forgetless.Training;
using Microsoft.Extensions.Logging;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.FineTuning;

/// <summary>
/// The configured regularizers, built over the tuned model's trainable tensors:
/// <list type="bullet">
/// <item><c>ewc</c>: λ·Σ F_i (θ_i − θ*_i)² with θ* the starting values (pretrained weights, or the fresh /
/// initAdapter adapter) and F the diagonal empirical Fisher at θ* on replay rows (held-out windows when the data
/// has none). Cached under the run root's .cache by a hash of the base model, the rows and θ*. With an
/// initAdapter that carries an earlier run's Fisher, online EWC: F = γ·F_old + F_new.</item>
/// <item><c>l2sp</c>: λ·Σ ‖θ − θ₀‖², θ₀ the pretrained weights for full/freeze, zero for adapter tensors.</item>
/// <item><c>kd</c>: on replay rows, (1 − w)·CE + w·KL(teacher_T ‖ student_T)·T² against the frozen base model.</item>
/// </list>
/// </summary>
public sealed class AntiForgetting : IDisposable
{
    public const string EwcStateFile = "forgetless_ewc.safetensors";

    private readonly List<IRegularizer> penalties = [];
    private readonly List<IDisposable> owned = [];

    public IReadOnlyList<IRegularizer> Penalties => penalties;

    /// <summary>The frozen base model for KD (null without kd).</summary>
    public CausalLM? Teacher { get; private set; }
    public KdOptions? Kd { get; private set; }
    public double KdWeight { get; private set; }

    /// <summary>
    /// A teacher kept as cached soft targets instead of a live model (the Distill stage); the Trainer asks it for the
    /// distillation loss of the replay rows of each micro-batch. Null for FineTune's live <see cref="Teacher"/>.
    /// </summary>
    public ITeacherTargets? CachedTeacher { get; private set; }

    /// <summary>Cross-entropy weight of task rows in a batch that gets a KD term (1 for FineTune's kd).</summary>
    public double TaskCeWeight { get; private set; } = 1;
    /// <summary>Cross-entropy weight of replay rows in a batch that gets a KD term (1 − w for FineTune's kd).</summary>
    public double ReplayCeWeight { get; private set; } = 1;

    /// <summary>
    /// The Distill stage's terms: loss = (1 − α)·CE(task rows) + α·D(teacher_T ‖ student_T)·T² on replay rows, with
    /// the teacher's soft targets from <paramref name="teacher"/> (no cross-entropy on replay rows).
    /// </summary>
    public static AntiForgetting ForCachedTeacher(ITeacherTargets teacher, KdOptions kd, double alpha) => new()
    {
        CachedTeacher = teacher, Kd = kd, KdWeight = alpha, TaskCeWeight = 1 - alpha, ReplayCeWeight = 0,
    };

    /// <summary>The Fisher EWC uses (written next to the adapter so a later run can continue online EWC).</summary>
    public Dictionary<string, Tensor>? Fisher { get; private set; }

    public static AntiForgetting Build(TunedModel tuned, FineTuneOptions options, string baseModelDirectory, IReadOnlyList<PreparedRow> replayRows,
        IReadOnlyList<PreparedRow> heldoutRows, string cacheDirectory, string? initAdapter, ILogger logger)
    {
        var set = new AntiForgetting();
        var regs = options.Regularizers;
        if (regs.Contains(RegularizerKind.Ewc))
        {
            var rows = (replayRows.Count > 0 ? replayRows : heldoutRows).Take(options.Ewc.Samples).ToList();
            var fisher = CachedFisher(tuned, rows, baseModelDirectory, cacheDirectory, logger);
            var oldPath = initAdapter is null ? null : Path.Combine(initAdapter, EwcStateFile);
            if (oldPath is not null && File.Exists(oldPath))
            {
                var (oldFisher, oldAnchors) = Ewc.Load(oldPath);
                foreach (var a in oldAnchors.Values) a.Dispose();
                var online = Ewc.Online(oldFisher.Where(kv => fisher.ContainsKey(kv.Key)).ToDictionary(), fisher, options.Ewc.Gamma);
                foreach (var f in oldFisher.Values.Concat(fisher.Values)) f.Dispose();
                fisher = online;
                logger.LogInformation("finetune: online EWC — earlier Fisher from {Path} decayed by γ = {Gamma}", oldPath, options.Ewc.Gamma);
            }
            var anchors = Ewc.Snapshot(tuned.Trainable);
            var ewc = new Ewc(tuned.Trainable, fisher, anchors, options.Ewc.Lambda);
            foreach (var a in anchors.Values) a.Dispose();
            set.penalties.Add(ewc);
            set.owned.Add(ewc);
            set.Fisher = fisher;
        }
        if (regs.Contains(RegularizerKind.L2sp))
        {
            // Toward the pretrained weights when base weights train; toward zero for adapter tensors (their "no change").
            var anchors = tuned.Method is FineTuneMethod.Full or FineTuneMethod.Freeze ? Ewc.Snapshot(tuned.Trainable) : null;
            var l2 = new L2Sp(tuned.Trainable, anchors, options.L2sp.Lambda);
            foreach (var a in anchors?.Values ?? Enumerable.Empty<Tensor>()) a.Dispose();
            set.penalties.Add(l2);
            set.owned.Add(l2);
        }
        if (regs.Contains(RegularizerKind.Kd))
        {
            var teacher = ModelFolder.LoadModel(baseModelDirectory);
            foreach (var p in teacher.parameters()) p.requires_grad = false;
            teacher.eval();
            set.Teacher = teacher;
            set.owned.Add(teacher);
            set.Kd = new KdOptions { Divergence = KdDivergence.ForwardKl, Temperature = options.Kd.Temperature };
            set.KdWeight = options.Kd.Weight;
            set.ReplayCeWeight = 1 - options.Kd.Weight;
            if (replayRows.Count == 0)
                logger.LogWarning("finetune: kd is on, but the training data has no replay rows (kind replay/generated); it will never apply");
        }
        return set;
    }

    /// <summary>Sum of the penalties as a scalar attached to the graph, or null without any.</summary>
    public Tensor? Penalty()
    {
        if (penalties.Count == 0) return null;
        using var scope = NewDisposeScope();
        Tensor total = penalties[0].Penalty();
        for (int i = 1; i < penalties.Count; i++) total = total.add(penalties[i].Penalty());
        return total.MoveToOuterDisposeScope();
    }

    /// <summary>Diagonal empirical Fisher of the trainable tensors at their current values, one row per sample.</summary>
    public static Dictionary<string, Tensor> ComputeFisher(TunedModel tuned, IReadOnlyList<PreparedRow> rows)
    {
        if (rows.Count == 0) throw new InvalidOperationException("EWC: no rows to estimate the Fisher from");
        var model = tuned.Model;
        bool wasTraining = model.training;
        model.eval();
        try
        {
            return Ewc.DiagonalFisher(tuned.Trainable, rows.Select(row => (Func<Tensor>)(() =>
            {
                using var batch = TokenBatch.Of([row]);
                var logits = model.Forward(batch.Inputs, batch.AttentionMask);
                var nll = LossProbe.TokenNll(logits, batch.Targets);
                return nll.mul(batch.TargetMask).sum().div(batch.TargetMask.sum().clamp_min(1)).neg();
            })));
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }

    private static Dictionary<string, Tensor> CachedFisher(TunedModel tuned, IReadOnlyList<PreparedRow> rows, string baseModelDirectory,
        string cacheDirectory, ILogger logger)
    {
        var key = FisherKey(tuned, rows, baseModelDirectory);
        var path = Path.Combine(cacheDirectory, "fisher", key + ".safetensors");
        if (File.Exists(path))
        {
            var (cached, anchors) = Ewc.Load(path);
            foreach (var a in anchors.Values) a.Dispose();
            logger.LogInformation("finetune: EWC Fisher from cache {Path}", path);
            return cached;
        }
        logger.LogInformation("finetune: EWC — diagonal Fisher over {Rows} rows", rows.Count);
        var fisher = ComputeFisher(tuned, rows);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Ewc.Save(path, fisher, new Dictionary<string, Tensor>());
        return fisher;
    }

    /// <summary>SHA-256 over the base model's files, the rows' tokens and the starting values of the trainable tensors.</summary>
    private static string FisherKey(TunedModel tuned, IReadOnlyList<PreparedRow> rows, string baseModelDirectory)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Convert.FromHexString(Runs.FileHashes.DigestOf(baseModelDirectory)));
        foreach (var row in rows)
        {
            foreach (var id in row.InputIds.AsSpan(0, row.Length)) hash.AppendData(BitConverter.GetBytes(id));
            foreach (var m in row.LossMask.AsSpan(0, row.Length)) hash.AppendData([m ? (byte)1 : (byte)0]);
        }
        foreach (var (name, p) in tuned.Trainable)
        {
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes(name + "\0"));
            hash.AppendData(p.detach().contiguous().bytes);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    public void Dispose()
    {
        foreach (var d in owned) d.Dispose();
        owned.Clear();
        if (Fisher is not null) foreach (var f in Fisher.Values) f.Dispose();
    }
}

/// <summary>Soft targets of a teacher for given rows, e.g. read from a cached teacher pass.</summary>
public interface ITeacherTargets
{
    /// <summary>
    /// The distillation loss (reduced over the rows' scored target positions, T²-scaled per <paramref name="options"/>)
    /// of <paramref name="studentLogits"/> [R, W − 1, V] — next-token logits of <paramref name="rows"/> as batched by
    /// <see cref="TokenBatch.Of"/> — against the teacher's targets for those rows.
    /// </summary>
    Tensor Loss(IReadOnlyList<PreparedRow> rows, Tensor studentLogits, KdOptions options);
}
