namespace Forgetless.Pretraining;

/// <summary>
/// A smoothed bigram language model over token ids: the yardstick the pretrained model must beat.
/// P(w | v) = (c(v, w) + α·P(w)) / (c(v) + α), a Dirichlet-smoothed bigram backing off to an
/// add-one unigram; α is chosen on the evaluation text itself, which flatters the baseline.
/// </summary>
public sealed class BigramBaseline
{
    private readonly Dictionary<long, int> pairs = new();
    private readonly int[] unigram;
    private readonly int[] context;
    private readonly long total;

    public BigramBaseline(int[] tokens, int vocabSize)
    {
        unigram = new int[vocabSize];
        context = new int[vocabSize];
        for (int i = 0; i < tokens.Length; i++)
        {
            unigram[tokens[i]]++;
            if (i == 0) continue;
            context[tokens[i - 1]]++;
            long key = (long)tokens[i - 1] * vocabSize + tokens[i];
            pairs[key] = pairs.GetValueOrDefault(key) + 1;
        }
        total = tokens.Length;
    }

    /// <summary>Total negative log-likelihood (nats) of each sequence, the first token conditioned on <paramref name="start"/>.</summary>
    public double Nll(IEnumerable<int[]> sequences, int start, double alpha)
    {
        int vocab = unigram.Length;
        double nll = 0;
        foreach (var sequence in sequences)
        {
            int previous = start;
            foreach (var token in sequence)
            {
                double pUni = (unigram[token] + 1.0) / (total + vocab);
                double pair = pairs.GetValueOrDefault((long)previous * vocab + token);
                nll -= Math.Log((pair + alpha * pUni) / (context[previous] + alpha));
                previous = token;
            }
        }
        return nll;
    }

    /// <summary>The best α of a small grid and its NLL.</summary>
    public (double Alpha, double Nll) Best(IReadOnlyList<int[]> sequences, int start) =>
        new[] { 0.1, 0.3, 1, 3, 10, 30, 100, 300 }.Select(a => (a, Nll(sequences, start, a))).MinBy(p => p.Item2);
}
