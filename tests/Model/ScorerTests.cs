using System.Text.Json.Nodes;
using Forgetless.Model;
using Forgetless.Model.Inference;
using Forgetless.Model.Tokenizers;
using Forgetless.Tests.Model.Fixtures;
using static TorchSharp.torch;

namespace Forgetless.Tests.Model;

public sealed class ScorerTests
{
    private static CausalLM TinyLlama() =>
        ModelFactory.Create(ModelConfig.FromJson(TinyCheckpoints.Create(new TinySpec("llama", Heads: 4, KvHeads: 2)).ConfigJson), seed: 11);

    private static readonly ScoreRequest[] Rows =
    [
        ScoreRequest.ForText("bcdefgh"),
        ScoreRequest.ForContinuation("bc", "de"),
        ScoreRequest.ForText("jj"),
        ScoreRequest.ForContinuation("cdefghijab", "c"),
        ScoreRequest.ForContinuation("", "fgh"),
    ];

    [Fact]
    public void Batched_scores_equal_unbatched_scores()
    {
        using var model = TinyLlama();
        var tokenizer = new IdTokenizer(11);
        var batched = new Scorer(model, tokenizer, batchSize: 3).Score(Rows);
        var alone = Rows.Select(r => new Scorer(model, tokenizer, batchSize: 1).Score(r)).ToList();
        for (var i = 0; i < Rows.Length; i++)
        {
            batched[i].TokenIds.Should().Equal(alone[i].TokenIds);
            batched[i].IsGreedy.Should().Be(alone[i].IsGreedy);
            batched[i].LogProbs.Zip(alone[i].LogProbs).Should().AllSatisfy(p => p.First.Should().BeApproximately(p.Second, 1e-5));
            batched[i].SumLogProb.Should().BeApproximately(alone[i].SumLogProb, 1e-5);
        }
    }

    [Fact]
    public void Scores_are_log_softmax_of_the_forward_logits()
    {
        using var model = TinyLlama();
        var result = new Scorer(model, new IdTokenizer(11)).Score(ScoreRequest.ForContinuation("bc", "de"));
        result.TokenIds.Should().Equal(3, 4);
        result.TokenCount.Should().Be(2);
        using var _ = no_grad();
        using var logits = model.Forward(LogitsAssert.Ids(1, 2, 3));
        var rows = LogitsAssert.Rows(logits);
        double LogProb(float[] row, int id) => row[id] - Math.Log(row.Sum(v => Math.Exp(v)));
        result.LogProbs[0].Should().BeApproximately(LogProb(rows[1], 3), 1e-5);
        result.LogProbs[1].Should().BeApproximately(LogProb(rows[2], 4), 1e-5);
        result.SumLogProb.Should().BeApproximately(result.LogProbs.Sum(), 1e-9);
        result.IsGreedy.Should().Be(rows[1].ToList().IndexOf(rows[1].Max()) == 3 && rows[2].ToList().IndexOf(rows[2].Max()) == 4);
    }

    [Fact]
    public void Text_rows_are_conditioned_on_bos_and_greedy_continuations_are_greedy()
    {
        using var model = TinyLlama();
        var tokenizer = new IdTokenizer(11);
        var scorer = new Scorer(model, tokenizer);
        var (context, target) = scorer.Tokenize(ScoreRequest.ForText("cd"));
        context.Should().Equal(0);
        target.Should().Equal(2, 3);
        var generated = new TextGenerator(model, tokenizer).Generate("bcd", new GenerationOptions { MaxNewTokens = 3, StopTokenIds = [] });
        scorer.Score(ScoreRequest.ForContinuation("bcd", generated.Text)).IsGreedy.Should().BeTrue();
        var other = tokenizer.Decode([(generated.TokenIds[0] + 1) % 11]);
        scorer.Score(ScoreRequest.ForContinuation("bcd", other)).IsGreedy.Should().BeFalse();
    }

    [Fact]
    public void Context_and_continuation_split_lm_eval_style()
    {
        var tokenizer = TokenizerLoader.Load(Gpt2TokenizerFiles.Directory);
        using var model = ModelFactory.Create(ModelConfig.Llama(tokenizer.VocabSize, 8, 1, 2), seed: 1);
        var scorer = new Scorer(model, tokenizer);
        // The context's trailing space moves to the continuation, where GPT-2 merges it into " world".
        scorer.Tokenize(ScoreRequest.ForContinuation("Hello ", "world")).Target.Should().Equal(995);
        var (context, target) = scorer.Tokenize(ScoreRequest.ForContinuation("Hello", " world"));
        context.Should().Equal(15496);
        target.Should().Equal(995);
    }

    [Fact]
    public void Score_file_writes_jsonl_and_reports_bad_lines_with_file_and_line()
    {
        using var dir = new TempDir();
        using var model = TinyLlama();
        var scorer = new Scorer(model, new IdTokenizer(11));
        var input = dir.Sub("in.jsonl");
        File.WriteAllLines(input, ["""{"id": 1, "text": "bcd"}""", "", """{"context": "bc", "continuation": "d"}"""]);
        var summary = scorer.ScoreFile(input, dir.Sub("out.jsonl"));
        summary.Rows.Should().Be(2);
        var lines = File.ReadAllLines(dir.Sub("out.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        lines[0]["id"]!.GetValue<int>().Should().Be(1);
        lines[0]["num_tokens"]!.GetValue<int>().Should().Be(3);
        lines[1]["token_ids"]!.AsArray().Select(n => n!.GetValue<int>()).Should().Equal(3);
        lines[1]["sum_logprob"]!.GetValue<double>().Should().BeLessThan(0);
        lines[1].ContainsKey("is_greedy").Should().BeTrue();

        File.WriteAllLines(input, ["""{"text": "bc"}""", "not json", """{"context": "a"}""", """{"text": 5}"""]);
        FluentActions.Invoking(() => scorer.ScoreFile(input, dir.Sub("out2.jsonl"))).Should().Throw<InvalidDataException>()
            .WithMessage("3 bad line(s) in in.jsonl:*in.jsonl:2: not valid JSON*in.jsonl:3: expected*in.jsonl:4: 'text' must be a string*");
        File.Exists(dir.Sub("out2.jsonl")).Should().BeFalse();
    }
}
