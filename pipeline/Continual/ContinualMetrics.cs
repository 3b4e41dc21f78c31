using Forgetless.Evaluation;

namespace Forgetless.Continual;

/// <summary>
/// The accuracy matrix of a task sequence and its summaries. R[i, j] is the score on task j after training step i
/// (every task is scored after every step, the ones not trained yet too); b[j] is the untrained model's score on task j.
/// With T tasks (Lopez-Paz and Ranzato 2017; Chaudhry et al. 2018):
/// <list type="bullet">
/// <item>ACC = (1/T) Σ_j R[T−1, j] — the average score at the end.</item>
/// <item>BWT = (1/(T−1)) Σ_{j&lt;T−1} (R[T−1, j] − R[j, j]) — what later training did to earlier tasks (negative: forgetting).</item>
/// <item>FWT = (1/(T−1)) Σ_{j&gt;0} (R[j−1, j] − b[j]) — what earlier training did for a task before it was trained.</item>
/// <item>Forgetting = (1/(T−1)) Σ_{j&lt;T−1} max_{j≤l&lt;T−1} (R[l, j] − R[T−1, j]) — the drop from the best score a task had
/// once it was trained (Chaudhry et al. take the max over every earlier step, where a task is only scored after it was
/// learned; here every task is scored at every step, and a score before a task's own step is not knowledge to forget).</item>
/// </list>
/// </summary>
public sealed record ContinualMetrics(double Acc, double Bwt, double Fwt, double Forgetting)
{
    public static ContinualMetrics Of(double[,] r, IReadOnlyList<double> b)
    {
        int t = r.GetLength(0);
        if (r.GetLength(1) != t || b.Count != t) throw new ArgumentException($"R must be T×T and b of length T; got {r.GetLength(0)}×{r.GetLength(1)} and {b.Count}");
        int last = t - 1;
        double acc = Enumerable.Range(0, t).Average(j => r[last, j]);
        if (t == 1) return new ContinualMetrics(acc, 0, 0, 0);
        double bwt = Enumerable.Range(0, last).Average(j => r[last, j] - r[j, j]);
        double fwt = Enumerable.Range(1, last).Average(j => r[j - 1, j] - b[j]);
        double forgetting = Enumerable.Range(0, last).Average(j => Enumerable.Range(j, last - j).Max(l => r[l, j]) - r[last, j]);
        return new ContinualMetrics(acc, bwt, fwt, forgetting);
    }
}

/// <summary>
/// The item-level scores behind one R matrix: for task j, the per-item score (1/0 for accuracy) after each step and
/// before any training. Resampling the items of every task together (the same draw for every step, as the scores are
/// paired) gives bootstrap intervals of ACC, BWT, FWT and forgetting.
/// </summary>
public sealed class ContinualScores
{
    /// <summary>[task][step + 1][item]: step 0 is the untrained model (b), step i + 1 the model after training step i.</summary>
    private readonly double[][][] scores;

    public ContinualScores(IReadOnlyList<string> tasks, double[][][] scores)
    {
        if (scores.Length != tasks.Count) throw new ArgumentException("one score table per task");
        foreach (var (table, j) in scores.Select((s, j) => (s, j)))
        {
            if (table.Length != tasks.Count + 1) throw new ArgumentException($"task {tasks[j]}: expected scores before training and after each of {tasks.Count} steps");
            if (table.Any(row => row.Length != table[0].Length)) throw new ArgumentException($"task {tasks[j]}: every step must score the same items");
        }
        Tasks = tasks;
        this.scores = scores;
    }

    public IReadOnlyList<string> Tasks { get; }

    /// <summary>R and b from the item means (for the items in <paramref name="draw"/>, or all).</summary>
    public (double[,] R, double[] B) Matrix(int[][]? draw = null)
    {
        int t = Tasks.Count;
        var r = new double[t, t];
        var b = new double[t];
        for (int j = 0; j < t; j++)
        {
            var idx = draw?[j] ?? Enumerable.Range(0, scores[j][0].Length).ToArray();
            double Mean(double[] row) => idx.Length == 0 ? double.NaN : idx.Average(k => row[k]);
            b[j] = Mean(scores[j][0]);
            for (int i = 0; i < t; i++) r[i, j] = Mean(scores[j][i + 1]);
        }
        return (r, b);
    }

    public ContinualMetrics Metrics(int[][]? draw = null)
    {
        var (r, b) = Matrix(draw);
        return ContinualMetrics.Of(r, b);
    }

    /// <summary>Percentile intervals of each summary from <paramref name="resamples"/> paired item resamples (one draw of every task's items per resample).</summary>
    public ContinualIntervals Intervals(int seed, int resamples = Bootstrap.DefaultResamples, double confidence = 0.95)
    {
        var draws = Draws(seed, resamples).Select(d => Metrics(d)).ToList();
        Interval Of(Func<ContinualMetrics, double> f) => new Resamples(draws.Select(f)).Interval(confidence);
        return new ContinualIntervals(Of(m => m.Acc), Of(m => m.Bwt), Of(m => m.Fwt), Of(m => m.Forgetting));
    }

    /// <summary>Any statistic of (R, b) over the same paired item resamples as <see cref="Intervals"/>.</summary>
    public Resamples Resampled(Func<double[,], double[], double> statistic, int seed, int resamples = Bootstrap.DefaultResamples) =>
        new(Draws(seed, resamples).Select(d =>
        {
            var (r, b) = Matrix(d);
            return statistic(r, b);
        }));

    private IEnumerable<int[][]> Draws(int seed, int resamples)
    {
        var random = new Random(seed);
        for (int s = 0; s < resamples; s++)
            yield return scores.Select(task => Enumerable.Range(0, task[0].Length).Select(_ => random.Next(task[0].Length)).ToArray()).ToArray();
    }
}

/// <summary>Bootstrap intervals of <see cref="ContinualMetrics"/>.</summary>
public sealed record ContinualIntervals(Interval Acc, Interval Bwt, Interval Fwt, Interval Forgetting);
