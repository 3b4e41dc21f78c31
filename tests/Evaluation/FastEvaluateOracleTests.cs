using System.Text;
using Forgetless.Evaluation;
using Forgetless.Model;
using Forgetless.Model.Inference;
using Forgetless.Tests.Model.Fixtures;
using static TorchSharp.torch;

namespace Forgetless.Tests.Evaluation;

/// <summary>
/// The fast Evaluate (shared contexts, rows batched by length, logits only where scored, batched KV-cache generation)
/// against the straightforward way, written out here: each (context, continuation) pair as its own lm-eval input
/// through a plain forward with log-softmax taken in double, and generation as a full forward per token without cache.
/// </summary>
[Collection(Forgetless.Tests.Peft.TorchSerial.Name)]
public sealed class FastEvaluateOracleTests
{
    private const int Context = 12;

    private static CausalLM Model() => ModelFactory.Create(TinyModels.Config with { MaxPositionEmbeddings = Context }, seed: 21);

    /// <summary>lm-eval's loglikelihood of one pair: input (context + continuation)[:-1] cut from the left to the context.</summary>
    private static (double[] LogProbs, bool Greedy) Oracle(CausalLM model, int[] context, int[] target)
    {
        var input = context.Concat(target).ToArray()[..^1];
        if (input.Length > Context) input = input[^Context..];
        using var _ = no_grad();
        using var logits = model.Forward(tensor(input.Select(t => (long)t).ToArray(), [1, input.Length]));
        var rows = LogitsAssert.Rows(logits);
        var logProbs = new double[target.Length];
        bool greedy = true;
        for (int j = 0; j < target.Length; j++)
        {
            var row = rows[input.Length - target.Length + j];
            double max = row.Max(), logSum = max + Math.Log(row.Sum(v => Math.Exp(v - max)));
            logProbs[j] = row[target[j]] - logSum;
            greedy &= Array.IndexOf(row, row.Max()) == target[j];
        }
        return (logProbs, greedy);
    }

    [Fact]
    public void Shared_and_batched_scores_equal_each_pair_scored_alone()
    {
        using var model = Model();
        int[] Ids(params int[] ids) => ids;
        var shortContext = Ids(5, 6, 7);
        var longContext = Enumerable.Range(3, 11).ToArray(); // 11 tokens: continuations of 2+ tokens are cut from the left
        var pairs = new List<(int[] Context, int[] Target)>
        {
            (shortContext, Ids(9)), (shortContext, Ids(10, 11)), (shortContext, Ids(12, 13, 14, 15)), (shortContext, Ids(9)),
            (longContext, Ids(20)), (longContext, Ids(21, 22)), (longContext, Ids(23, 24)), (longContext, Ids(25, 26, 27)),
            (Ids(8), Ids(30, 31)), (shortContext, Ids()), (Ids(40, 41, 42, 43), Ids(44, 45, 46)),
        };
        var scored = new Scorer(model, new TinyTokenizer(), batchSize: 2).ScoreTokens(pairs);
        for (int i = 0; i < pairs.Count; i++)
        {
            var (expected, greedy) = pairs[i].Target.Length == 0 ? ([], true) : Oracle(model, pairs[i].Context, pairs[i].Target);
            scored[i].TokenIds.Should().Equal(pairs[i].Target);
            scored[i].LogProbs.Should().HaveCount(expected.Length);
            for (int j = 0; j < expected.Length; j++) scored[i].LogProbs[j].Should().BeApproximately(expected[j], 1e-5, $"pair {i}, token {j}");
            scored[i].IsGreedy.Should().Be(greedy, $"pair {i}");
        }
    }

    [Fact]
    public void Multiple_choice_and_cloze_items_score_as_each_choice_alone()
    {
        using var dir = new TempDirectory();
        using var model = Model();
        var tokenizer = new TinyTokenizer();
        var mc = dir.File("mc.jsonl", string.Concat(Enumerable.Range(0, 7).Select(i =>
            $"{{\"query\":\"{new string((char)('a' + i), 2 + i)}\",\"choices\":[\"b\",\"cd\",\"efg\",\"é\"],\"gold\":{i % 4}}}\n")));
        var cloze = dir.File("cloze.jsonl", string.Concat(Enumerable.Range(0, 5).Select(i =>
            $"{{\"context\":\"{new string((char)('k' + i), 3 + 2 * i)}\",\"target\":\" ab\",\"candidates\":[\" x\",\" yz\",\" ab\"]}}\n"))
            + "{\"context\":\"hello\",\"target\":\" you\"}\n");
        var runner = new SuiteRunner(new Scorer(model, tokenizer, batchSize: 2), new TextGenerator(model, tokenizer), batchSize: 2);

        var choice = runner.Run(new SuiteOptions { Name = "mc", Type = SuiteType.MultipleChoice }, mc, CancellationToken.None);
        for (int i = 0; i < 7; i++)
        {
            string[] choices = ["b", "cd", "efg", "é"];
            var sums = choices.Select(c => Oracle(model, tokenizer.Encode(new string((char)('a' + i), 2 + i)), tokenizer.Encode(" " + c)).LogProbs.Sum()).ToArray();
            choice.Items[i].Values["acc"].Should().Be(ArgMax(sums) == i % 4 ? 1 : 0);
            choice.Items[i].Values["acc_norm"].Should().Be(ArgMax(sums.Select((s, c) => s / choices[c].Length).ToArray()) == i % 4 ? 1 : 0);
            choice.Items[i].Values["acc_bytes"].Should().Be(ArgMax(sums.Select((s, c) => s / Encoding.UTF8.GetByteCount(choices[c])).ToArray()) == i % 4 ? 1 : 0);
        }

        var items = runner.Run(new SuiteOptions { Name = "cloze", Type = SuiteType.Cloze }, cloze, CancellationToken.None).Items;
        for (int i = 0; i < 5; i++)
        {
            var context = tokenizer.Encode(new string((char)('k' + i), 3 + 2 * i));
            var candidates = new[] { " x", " yz", " ab" }.Select(c => Oracle(model, context, tokenizer.Encode(c))).ToArray();
            items[i].Values["nll"].Should().BeApproximately(-candidates[2].LogProbs.Sum(), 1e-5);
            items[i].Values["acc"].Should().Be(candidates[2].Greedy ? 1 : 0);
            items[i].Values["acc_choice"].Should().Be(ArgMax(candidates.Select(c => c.LogProbs.Sum()).ToArray()) == 2 ? 1 : 0);
        }
        var plain = Oracle(model, tokenizer.Encode("hello"), tokenizer.Encode(" you"));
        items[5].Values["nll"].Should().BeApproximately(-plain.LogProbs.Sum(), 1e-5);
        items[5].Values.Should().NotContainKey("acc_choice");
    }

    [Fact]
    public void Batched_greedy_generation_equals_generating_each_prompt_without_a_cache()
    {
        using var model = ModelFactory.Create(TinyModels.Config with { MaxPositionEmbeddings = 32 }, seed: 4);
        var tokenizer = new TinyTokenizer();
        var prompts = new[] { "ab", "hello there", "x", "quite a long prompt", "mid size" }.Select(p => (IReadOnlyList<int>)tokenizer.Encode(p)).ToList();
        // Stop at a token this model emits for some prompts and not others, so rows finish at different steps.
        var options = new GenerationOptions { MaxNewTokens = 10, StopTokenIds = [TinyTokenizer.Id('e'), TinyTokenizer.Id('t')] };
        var batched = new TextGenerator(model, tokenizer).GenerateGreedy(prompts, options);
        using var _ = no_grad();
        for (int i = 0; i < prompts.Count; i++)
        {
            var sequence = prompts[i].ToList();
            var expected = new List<int>();
            string finish = "length";
            while (expected.Count < 10)
            {
                using var logits = model.Forward(tensor(sequence.Select(t => (long)t).ToArray(), [1, sequence.Count]));
                var last = LogitsAssert.Rows(logits)[^1];
                int token = Array.IndexOf(last, last.Max());
                if (options.StopTokenIds.Contains(token)) { finish = "eos"; break; }
                expected.Add(token);
                sequence.Add(token);
            }
            batched[i].TokenIds.Should().Equal(expected, $"prompt {i}");
            batched[i].FinishReason.Should().Be(finish);
        }
        batched.Select(b => b.FinishReason).Should().Contain("eos").And.Contain("length", "the rows should not all stop alike");
    }

    private static int ArgMax(double[] values) => Array.IndexOf(values, values.Max());
}
