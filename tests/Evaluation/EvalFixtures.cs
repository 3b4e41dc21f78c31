using Forgetless.Evaluation;
using Forgetless.Model;
using Forgetless.Model.Tokenizers;
using static TorchSharp.torch;

namespace Forgetless.Tests.Evaluation;

/// <summary>One id per character of a small alphabet (id = 3 + position); 0 pad, 1 bos, 2 eos. Fits a 64-row embedding.</summary>
internal sealed class TinyTokenizer : ITokenizer
{
    public const string Alphabet = "abcdefghijklmnopqrstuvwxyz .,:!?\"ABCDEFGHIJKLMNOPQRSTUVWXYZ0é"; // é: two UTF-8 bytes

    public int VocabSize => 3 + Alphabet.Length;
    public int? BosId => 1;
    public int? EosId => 2;
    public int? PadId => 0;

    public static int Id(char c) => 3 + Alphabet.IndexOf(c) is var i && i >= 3 ? i : throw new ArgumentException($"'{c}' is not in the tiny alphabet");

    public int[] Encode(string text) => text.Select(Id).ToArray();

    public string Decode(IEnumerable<int> ids) => new(ids.Where(i => i >= 3).Select(i => Alphabet[i - 3]).ToArray());
}

internal static class TinyModels
{
    public static ModelConfig Config => ModelConfig.Llama(vocabSize: 64, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2);

    /// <summary>A random tiny llama (same seed, same weights).</summary>
    public static CausalLM Random(long seed = 7) => ModelFactory.Create(Config, seed);

    /// <summary>
    /// A tiny llama whose next-token distribution ignores the input: attention and MLP outputs are
    /// zeroed and every embedding is the all-ones vector, so the final hidden state is ones and the
    /// logits are the row sums of lm_head — set here to the given log-probabilities (others ≈ −∞).
    /// </summary>
    public static CausalLM Unigram(IReadOnlyDictionary<char, double> logProbs, long seed = 7)
    {
        var model = ModelFactory.Create(Config, seed);
        using var _ = no_grad();
        var logits = Enumerable.Repeat(-1e4, 64).ToArray();
        foreach (var (c, lp) in logProbs) logits[TinyTokenizer.Id(c)] = lp;
        foreach (var (name, p) in model.named_parameters())
        {
            if (name.EndsWith("o_proj.weight") || name.EndsWith("down_proj.weight")) p.zero_();
            else if (name == "model.embed_tokens.weight") p.fill_(Scalars.Of(1.0));
            else if (name == "lm_head.weight")
                p.copy_(tensor(logits.Select(l => (float)(l / 32)).ToArray()).unsqueeze(1).expand(64, 32));
        }
        return model;
    }

    /// <summary>Adds noise to lm_head: a stand-in for an adapter that changed the model.</summary>
    public static void Perturb(CausalLM model, double scale, long seed = 3)
    {
        using var _ = no_grad();
        using var g = new TorchSharp.torch.Generator((ulong)seed);
        var head = model.named_parameters().First(p => p.name == "lm_head.weight").parameter;
        head.add_(randn(head.shape, generator: g).mul(Scalars.Of(scale)), Scalars.One);
    }
}

internal static class Items
{
    /// <summary>Accuracy-like items with the given 0/1 values.</summary>
    public static SuiteResult Acc(string suite, IEnumerable<double> values, SuiteRole role = SuiteRole.Old, Func<int, string?>? category = null)
    {
        var items = values.Select((v, i) => new ItemScore(category?.Invoke(i), new Dictionary<string, double> { ["acc"] = v, ["acc_norm"] = v })).ToList();
        return new SuiteResult(suite, SuiteType.MultipleChoice, role, items, SuiteRunner.MetricsFor(SuiteType.MultipleChoice, items));
    }

    /// <summary>Perplexity items: nll per token for each item (10 tokens, 40 bytes, 8 words each).</summary>
    public static SuiteResult Ppl(string suite, IEnumerable<double> nllPerToken)
    {
        var items = nllPerToken.Select(n => new ItemScore(null, new Dictionary<string, double>
        {
            ["nll"] = n * 10, ["tokens"] = 10, ["words"] = 8, ["bytes"] = 40,
        })).ToList();
        return new SuiteResult(suite, SuiteType.Perplexity, SuiteRole.Old, items, SuiteRunner.MetricsFor(SuiteType.Perplexity, items));
    }
}
