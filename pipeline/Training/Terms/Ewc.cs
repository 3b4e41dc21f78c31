using Forgetless.Model;
using System.Globalization;
using System.Security.Cryptography;
using Forgetless.Configuration;
using Forgetless.FineTuning;
using Forgetless.Model.Devices;
using Forgetless.Peft;
using Microsoft.Extensions.Logging;
using TorchSharp.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Training.Terms;

/// <summary>Which labels the Fisher's gradients are taken for.</summary>
public enum FisherLabels
{
    /// <summary>Labels drawn from the model's own predictive distribution at θ*: the Fisher information itself (Kirkpatrick et al.'s "true" Fisher).</summary>
    Sampled,
    /// <summary>The data's own next tokens: the empirical Fisher (Avalanche's).</summary>
    Empirical,
}

/// <summary><c>finetune.ewc</c>.</summary>
public sealed class EwcSection : IValidatableOptions
{
    /// <summary>λ of λ/2·Σ F (θ − θ*)², with F per token: the penalty then estimates λ times the rise of the old text's loss per token.</summary>
    public double Lambda { get; set; } = 100;
    /// <summary>Replay/general rows (or held-out windows when there are none) the Fisher is estimated on.</summary>
    public int Samples { get; set; } = 32;
    /// <summary>Scored token positions per row, drawn at random: each is one sample of the per-token Fisher.</summary>
    public int TokensPerRow { get; set; } = 8;
    /// <summary>Labels of the Fisher's gradients: <c>sampled</c> (from the model, the default) or <c>empirical</c>.</summary>
    public FisherLabels Fisher { get; set; } = FisherLabels.Sampled;
    /// <summary>Online EWC decay of an earlier run's Fisher when starting from <c>initAdapter</c>.</summary>
    public double Gamma { get; set; } = 0.9;

    public IEnumerable<string> Validate()
    {
        if (!(Lambda > 0)) yield return $"lambda = {F(Lambda)}: must be greater than 0";
        if (Samples <= 0) yield return $"samples = {Samples}: must be a positive whole number";
        if (TokensPerRow <= 0) yield return $"tokensPerRow = {TokensPerRow}: must be a positive whole number";
        if (Gamma is < 0 or > 1 || double.IsNaN(Gamma)) yield return $"gamma = {F(Gamma)}: must be in [0, 1]";
    }

    private static string F(double v) => v.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// Elastic weight consolidation (Kirkpatrick et al. 2017) on the paper's scale: λ/2 · Σ_i F_i (θ_i − θ*_i)². θ* are the
/// starting values of the trainable tensors (pretrained weights, or a fresh or continued adapter) and F the diagonal
/// Fisher at θ* per token: the mean over sampled token positions of replay rows (held-out windows when the data has
/// none) of the squared gradient of that token's log-likelihood — of a label drawn from the model (the Fisher
/// information, the default) or of the data's token (the empirical Fisher). Cached under the run root's .cache by a
/// hash of the base model, the rows, θ* and these settings. Parameters without a Fisher entry are not penalised.
/// <para>
/// Over a sequence of runs (each continuing the previous adapter), online EWC: at the end of a run the term leaves
/// F_next = γ·F + F_task beside the adapter, F_task the Fisher of the run's own task rows at its final values, and those
/// values as anchors; a run that continues that adapter penalises with F_next (the first run's F stands for the
/// pretraining knowledge, estimated on replay rows).
/// </para>
/// </summary>
public sealed class Ewc : TrainingTerm
{
    public const string StateFile = "forgetless_ewc.safetensors";

    private readonly List<(string name, Parameter p, Tensor fisher, Tensor anchor)> terms = [];
    /// <summary>This run's task rows, for the Fisher of the task it learned that the next run of a sequence protects.</summary>
    private (TunedModel Tuned, IReadOnlyList<PreparedRow> Rows, EwcSection Section, TermContext Context)? thisTask;
    public double Lambda { get; }

    /// <param name="fisher">Diagonal Fisher per parameter name (see <see cref="ComputeFisher"/>); copied.</param>
    /// <param name="anchors">θ* per parameter name (the old task's values); copied.</param>
    public Ewc(IEnumerable<(string name, Parameter parameter)> parameters, IReadOnlyDictionary<string, Tensor> fisher,
        IReadOnlyDictionary<string, Tensor> anchors, double lambda)
    {
        Lambda = lambda;
        foreach (var (name, p) in parameters)
        {
            if (!fisher.TryGetValue(name, out var f)) continue;
            if (!anchors.TryGetValue(name, out var a))
                throw new ArgumentException($"EWC: no anchor value for '{name}'.");
            if (!f.shape.SequenceEqual(p.shape) || !a.shape.SequenceEqual(p.shape))
                throw new ArgumentException($"EWC: shapes of '{name}' differ: parameter [{string.Join(", ", p.shape)}], " +
                    $"fisher [{string.Join(", ", f.shape)}], anchor [{string.Join(", ", a.shape)}].");
            terms.Add((name, p, f.detach().to(p.device, copy: true).DetachFromDisposeScope(), a.detach().to(p.device, copy: true).DetachFromDisposeScope()));
        }
        if (terms.Count == 0) throw new ArgumentException("EWC: no parameter has a Fisher entry.");
    }

    public override string Name => "ewc";
    public override bool ReadsLogits => false;

    private Device Device => terms[0].p.device;

    /// <summary>The Fisher the penalty uses, per parameter name (owned by the term).</summary>
    public IReadOnlyDictionary<string, Tensor> Fisher => terms.ToDictionary(t => t.name, t => t.fisher, StringComparer.Ordinal);

    public static Ewc Create(TermContext context)
    {
        var section = context.Section<EwcSection>();
        var tuned = context.Tuned;
        Dictionary<string, Tensor> fisher;
        var earlier = context.InitAdapter is null ? null : Path.Combine(context.InitAdapter, StateFile);
        if (earlier is not null && File.Exists(earlier))
        {
            // Online EWC over a sequence: the earlier run left γ·F_before + F_its task, at the values it ended with.
            var (saved, savedAnchors) = Load(earlier);
            foreach (var a in savedAnchors.Values) a.Dispose();
            fisher = saved;
            context.Logger.LogInformation("finetune: online EWC — the Fisher the earlier run left ({Path})", earlier);
        }
        else
        {
            var rows = (context.ReplayRows.Count > 0 ? context.ReplayRows : context.HeldoutRows).Take(section.Samples).ToList();
            fisher = CachedFisher(tuned, rows, section, context.BaseModelDirectory, context.CacheDirectory, context.Logger);
        }
        var anchors = Snapshot(tuned.Trainable);
        try
        {
            return new Ewc(tuned.Trainable, fisher, anchors, section.Lambda)
            {
                thisTask = context.TaskRows.Count > 0 ? (tuned, context.TaskRows.Take(section.Samples).ToList(), section, context) : null,
            };
        }
        finally
        {
            foreach (var t in anchors.Values.Concat(fisher.Values)) t.Dispose();
        }
    }

    public Tensor Penalty()
    {
        using var scope = NewDisposeScope();
        Tensor total = zeros(1, device: Device).squeeze();
        foreach (var (_, p, f, a) in terms) total = total.add(p.sub(a).Squared().mul(f).sum(), Scalars.One);
        using var halfLambda = (Lambda / 2).ToScalar();
        return total.mul(halfLambda).MoveToOuterDisposeScope();
    }

    public override TermValue? StepLoss()
    {
        var penalty = Penalty();
        return new TermValue(penalty, penalty.detach());
    }

    /// <summary>
    /// What the next run of a sequence continues from (online EWC, Schwarz et al. 2018): F_next = γ·F + F_task, F_task the
    /// Fisher of this run's task rows at the values it ended with, and those values as the next anchors.
    /// </summary>
    public override void WriteArtifacts(string adapterFolder)
    {
        var anchors = Snapshot(terms.Select(t => (t.name, t.p)));
        var next = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        if (thisTask is { } task)
        {
            var taskFisher = CachedFisher(task.Tuned, task.Rows, task.Section, task.Context.BaseModelDirectory, task.Context.CacheDirectory, task.Context.Logger);
            next = Online(Fisher, taskFisher.Where(kv => terms.Any(t => t.name == kv.Key)).ToDictionary(), task.Section.Gamma);
            foreach (var f in taskFisher.Values) f.Dispose();
        }
        else
        {
            foreach (var (name, f) in Fisher) next[name] = f.clone();
        }
        Save(Path.Combine(adapterFolder, StateFile), next, anchors);
        foreach (var t in anchors.Values.Concat(next.Values)) t.Dispose();
    }

    /// <summary>
    /// The diagonal Fisher per token of the tuned model's trainable tensors at their current values: for each row, one
    /// forward pass, then for <paramref name="tokensPerRow"/> of its scored positions (drawn without replacement; all
    /// of them when it has fewer) the squared gradient of that position's log-likelihood — of a label drawn from the
    /// model's prediction there (<see cref="FisherLabels.Sampled"/>) or of the data's next token
    /// (<see cref="FisherLabels.Empirical"/>) — averaged over every position taken. Positions and labels come from
    /// generators seeded by <paramref name="seed"/>.
    /// </summary>
    public static Dictionary<string, Tensor> ComputeFisher(TunedModel tuned, IReadOnlyList<PreparedRow> rows, FisherLabels labels,
        int tokensPerRow, long seed)
    {
        if (rows.Count == 0) throw new InvalidOperationException("EWC: no rows to estimate the Fisher from");
        var model = tuned.Model;
        var parameters = tuned.Trainable.Select(t => (Tensor)t.parameter).ToList();
        var fisher = tuned.Trainable.ToDictionary(t => t.name, t => zeros_like(t.parameter).DetachFromDisposeScope(), StringComparer.Ordinal);
        var positionsRandom = new Random((int)(seed & 0x7FFFFFFF));
        using var labelGenerator = new Generator((ulong)seed, LabelDevice(model.Device));
        bool wasTraining = model.training;
        model.eval();
        long samples = 0;
        try
        {
            foreach (var row in rows)
            {
                using var scope = NewDisposeScope();
                using var batch = TokenBatch.Of([row], model.Device);
                var logits = batch.Logits(model);
                var logProbs = nn.functional.log_softmax(logits[0].narrow(0, 0, batch.Targets.shape[1]), -1);
                // Position t scores token t + 1 where that token is a target (TokenBatch.Of): read from the row itself.
                var scored = Enumerable.Range(0, Math.Max(0, row.Length - 1)).Where(t => row.IsTarget(t + 1)).ToArray();
                var chosen = scored.Length <= tokensPerRow ? scored : scored.OrderBy(_ => positionsRandom.Next()).Take(tokensPerRow).Order().ToArray();
                for (int k = 0; k < chosen.Length; k++)
                {
                    int t = chosen[k];
                    long label = labels == FisherLabels.Empirical ? row.InputIds[t + 1]
                        : HostValues.Longs(DeviceOps.Categorical(logProbs[t].detach().exp(), labelGenerator))[0];
                    var grads = TorchSharp.torch.autograd.grad([logProbs[t, label]], parameters, retain_graph: k + 1 < chosen.Length, allow_unused: true);
                    using (no_grad())
                        for (int i = 0; i < parameters.Count; i++)
                            if (grads[i] is { IsInvalid: false } g) fisher[tuned.Trainable[i].name].add_(g.Squared(), Model.Scalars.One);
                    samples++;
                }
            }
        }
        finally
        {
            if (wasTraining) model.train();
        }
        if (samples == 0) throw new InvalidOperationException("EWC: the rows have no scored tokens to estimate the Fisher from");
        using Scalar sampleCount = samples;
        foreach (var f in fisher.Values) f.div_(sampleCount);
        return fisher;
    }

    /// <summary>A CUDA tensor draws from a CUDA generator; the CPU generator serves the CPU and the meta device.</summary>
    private static Device LabelDevice(Device device) => device.type == DeviceType.CUDA ? device : CPU;

    /// <summary>Online EWC: F = γ·F_old + F_new (names in either; a missing side counts as 0).</summary>
    public static Dictionary<string, Tensor> Online(IReadOnlyDictionary<string, Tensor> old, IReadOnlyDictionary<string, Tensor> fresh, double gamma)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using var decay = gamma.ToScalar(); // held for the calls (Forgetless.Model.Scalars)
        foreach (var name in old.Keys.Union(fresh.Keys))
        {
            var o = old.TryGetValue(name, out var ov) ? ov.mul(decay) : null;
            var f = fresh.TryGetValue(name, out var fv) ? fv.detach().clone() : null;
            result[name] = o is null ? f! : f is null ? o : o.add_(f, Model.Scalars.One);
            if (o is not null && f is not null) f.Dispose();
        }
        return result;
    }

    /// <summary>Saves fisher and anchors (<c>fisher/NAME</c>, <c>anchor/NAME</c>) for a later run.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> fisher, IReadOnlyDictionary<string, Tensor> anchors) =>
        TermStateFile.Save(path, "ewc", new Dictionary<string, IReadOnlyDictionary<string, Tensor>> { ["fisher"] = fisher, ["anchor"] = anchors });

    public static (Dictionary<string, Tensor> fisher, Dictionary<string, Tensor> anchors) Load(string path)
    {
        var groups = TermStateFile.Load(path, "fisher", "anchor");
        return (groups["fisher"], groups["anchor"]);
    }

    /// <summary>θ* for the given parameters: detached copies of their current values.</summary>
    public static Dictionary<string, Tensor> Snapshot(IEnumerable<(string name, Parameter parameter)> parameters) =>
        parameters.ToDictionary(p => p.name, p => p.parameter.detach().clone(), StringComparer.Ordinal);

    private static Dictionary<string, Tensor> CachedFisher(TunedModel tuned, IReadOnlyList<PreparedRow> rows, EwcSection section,
        string baseModelDirectory, string cacheDirectory, ILogger logger)
    {
        var key = FisherKey(tuned, rows, section, baseModelDirectory);
        var path = Path.Combine(cacheDirectory, "fisher", key + ".safetensors");
        if (File.Exists(path))
        {
            var (cached, anchors) = Load(path);
            foreach (var a in anchors.Values) a.Dispose();
            logger.LogInformation("finetune: EWC Fisher from cache {Path}", path);
            return cached;
        }
        logger.LogInformation("finetune: EWC — diagonal Fisher ({Labels} labels) over {Tokens} tokens of {Rows} rows",
            section.Fisher.ToString().ToLowerInvariant(), section.TokensPerRow, rows.Count);
        // Seeded by the key: the same base, rows, starting values and settings give the same Fisher.
        var fisher = ComputeFisher(tuned, rows, section.Fisher, section.TokensPerRow, BitConverter.ToInt64(Convert.FromHexString(key[..16])));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Save(path, fisher, new Dictionary<string, Tensor>());
        return fisher;
    }

    /// <summary>SHA-256 over the Fisher's settings, the base model's files, the rows' tokens and the starting values of the trainable tensors.</summary>
    private static string FisherKey(TunedModel tuned, IReadOnlyList<PreparedRow> rows, EwcSection section, string baseModelDirectory)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(System.Text.Encoding.UTF8.GetBytes($"fisher per token v2 {section.Fisher} {section.TokensPerRow}\0"));
        hash.AppendData(Convert.FromHexString(Runs.FileHashes.DigestOf(baseModelDirectory)));
        foreach (var row in rows)
        {
            foreach (var id in row.InputIds.AsSpan(0, row.Length)) hash.AppendData(BitConverter.GetBytes(id));
            foreach (var m in row.LossMask.AsSpan(0, row.Length)) hash.AppendData([m ? (byte)1 : (byte)0]);
        }
        foreach (var (name, p) in tuned.Trainable)
        {
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes(name + "\0"));
            hash.AppendData(HostValues.Bytes(p));
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    public override void Dispose()
    {
        foreach (var (_, _, f, a) in terms) { f.Dispose(); a.Dispose(); }
        terms.Clear();
    }
}
