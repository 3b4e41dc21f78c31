using Forgetless.Model.Devices;
using Forgetless.Model;
using Forgetless.Model.Tokenizers;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Continual;

/// <summary>
/// Chooses which task's adapter answers an input: the task whose centroid is nearest (cosine) to the input's mean
/// token embedding in the base model. Centroids are the means of the same vectors over training prompts of each task.
/// Cheap (one embedding lookup, no forward pass) and enough when tasks are asked in different words; its accuracy on
/// held-out inputs is reported beside every use.
/// </summary>
public sealed class TaskRouter
{
    public IReadOnlyList<string> Tasks { get; }
    /// <summary>[task][dimension], unit length.</summary>
    public IReadOnlyList<float[]> Centroids { get; }

    public TaskRouter(IReadOnlyList<string> tasks, IReadOnlyList<float[]> centroids)
    {
        if (tasks.Count != centroids.Count || tasks.Count == 0) throw new ArgumentException("one centroid per task");
        Tasks = tasks;
        Centroids = centroids.Select(Normalize).ToList();
    }

    /// <summary>Centroids from <paramref name="prompts"/> (per task, in <paramref name="tasks"/> order).</summary>
    public static TaskRouter Fit(CausalLM model, ITokenizer tokenizer, IReadOnlyList<string> tasks, IReadOnlyList<IReadOnlyList<string>> prompts) =>
        new(tasks, prompts.Select(list =>
        {
            var vectors = list.Select(p => MeanEmbedding(model, tokenizer, p)).ToList();
            var mean = new float[vectors[0].Length];
            foreach (var v in vectors) for (int d = 0; d < mean.Length; d++) mean[d] += v[d] / vectors.Count;
            return mean;
        }).ToList());

    /// <summary>The index of the task whose centroid is nearest to <paramref name="input"/>.</summary>
    public int Route(CausalLM model, ITokenizer tokenizer, string input) => Nearest(Normalize(MeanEmbedding(model, tokenizer, input)));

    public int Nearest(float[] unit)
    {
        int best = 0;
        double bestScore = double.NegativeInfinity;
        for (int k = 0; k < Centroids.Count; k++)
        {
            double score = 0;
            for (int d = 0; d < unit.Length; d++) score += unit[d] * Centroids[k][d];
            if (score > bestScore) (best, bestScore) = (k, score);
        }
        return best;
    }

    /// <summary>The mean of the input's token embeddings (the model's input embedding table).</summary>
    public static float[] MeanEmbedding(CausalLM model, ITokenizer tokenizer, string text)
    {
        var table = model.named_modules().Select(m => m.module).OfType<TokenEmbedding>().FirstOrDefault()
            ?? throw new InvalidOperationException($"the {model.Config.ModelType} model has no token embedding to route by");
        var ids = tokenizer.Encode(text);
        if (ids.Length == 0) return new float[model.Config.HiddenSize];
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var rows = DeviceOps.Rows(table.weight!, tensor(ids.Select(i => (long)i).ToArray(), device: table.weight!.device));
        return HostValues.Floats(rows.mean([0]));
    }

    private static float[] Normalize(float[] v)
    {
        double norm = Math.Sqrt(v.Sum(x => (double)x * x));
        return norm == 0 ? v.ToArray() : v.Select(x => (float)(x / norm)).ToArray();
    }
}
