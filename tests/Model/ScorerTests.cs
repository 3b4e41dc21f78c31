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
    public void Logits_over_the_budget_are_made_a_slice_of_positions_at_a_time_with_the_same_scores()
    {
        using var model = TinyLlama();
        var tokenizer = new IdTokenizer(11);
        var whole = new Scorer(model, tokenizer, batchSize: 3).Score(Rows);
        // A budget of one byte: every scored position is projected alone.
        var sliced = new Scorer(model, tokenizer, batchSize: 3, logitsBudgetBytes: 1).Score(Rows);
        for (var i = 0; i < Rows.Length; i++)
        {
            sliced[i].TokenIds.Should().Equal(whole[i].TokenIds);
            sliced[i].IsGreedy.Should().Be(whole[i].IsGreedy);
            sliced[i].LogProbs.Zip(whole[i].LogProbs).Should().AllSatisfy(p => p.First.Should().BeApproximately(p.Second, 1e-5));
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
        scorer.Windows(ScoreRequest.ForText("cd")).Should().ContainSingle().Which.Should().BeEquivalentTo((new[] { 0 }, new[] { 2, 3 }));
        var generated = new TextGenerator(model, tokenizer).Generate("bcd", new GenerationOptions { MaxNewTokens = 3, StopTokenIds = [] });
        scorer.Score(ScoreRequest.ForContinuation("bcd", generated.Text)).IsGreedy.Should().BeTrue();
        var other = tokenizer.Decode([(generated.TokenIds[0] + 1) % 11]);
        scorer.Score(ScoreRequest.ForContinuation("bcd", other)).IsGreedy.Should().BeFalse();
    }

    [Fact]
    public void Rolling_windows_are_lm_eval_s_get_rolling_token_windows_made_disjoint()
    {
        // lm-eval, max_seq_len 4, context_len 1, prefix P, tokens 0..9 (worked by hand from utils.py):
        //   window 1: ([P] + t[:3], t[:4])        → disjoint ([P], [0,1,2,3])
        //   window 2: (t[3:7], t[4:8])            → disjoint (t[3:4], [4,5,6,7])
        //   window 3: (t[5:9], t[8:10])           → disjoint (t[5:8], [8,9])   the last window gets more context
        var windows = RollingWindows.Of(Enumerable.Range(0, 10).ToArray(), prefixToken: 99, contextLength: 4);
        windows.Should().HaveCount(3);
        windows[0].Context.Should().Equal(99);
        windows[0].Target.Should().Equal(0, 1, 2, 3);
        windows[1].Context.Should().Equal(3);
        windows[1].Target.Should().Equal(4, 5, 6, 7);
        windows[2].Context.Should().Equal(5, 6, 7);
        windows[2].Target.Should().Equal(8, 9);
        // Fits in one window: the prefix token and every token.
        RollingWindows.Of([5, 6], 99, 4).Should().ContainSingle().Which.Target.Should().Equal(5, 6);
        RollingWindows.Of([], 99, 4).Should().BeEmpty();
    }

    [Fact]
    public void A_text_longer_than_the_context_is_scored_in_rolling_windows()
    {
        using var model = TinyLlama(); // 32 positions
        model.ContextLength.Should().Be(32);
        var tokenizer = new IdTokenizer(11);
        var text = new string(Enumerable.Range(0, 40).Select(i => (char)('a' + (i * 7 + 3) % 11)).ToArray());
        var t = tokenizer.Encode(text);
        var result = new Scorer(model, tokenizer).Score(ScoreRequest.ForText(text));
        result.TokenIds.Should().Equal(t);

        // By hand: window 1 reads [BOS] + t[0..30] and predicts t[0..31]; window 2 reads the 32 tokens t[7..38]
        // and its last 8 positions predict t[32..39].
        using var _ = no_grad();
        using var first = model.Forward(LogitsAssert.Ids([0, .. t[..31].Select(x => (long)x)]));
        using var second = model.Forward(LogitsAssert.Ids(t[7..39].Select(x => (long)x).ToArray()));
        var a = LogitsAssert.Rows(first);
        var b = LogitsAssert.Rows(second);
        double LogProb(float[] row, int id) => row[id] - Math.Log(row.Sum(v => Math.Exp(v)));
        var expected = Enumerable.Range(0, 32).Select(i => LogProb(a[i], t[i]))
            .Concat(Enumerable.Range(32, 8).Select(i => LogProb(b[i - 8], t[i]))).ToList();
        result.LogProbs.Should().HaveCount(40);
        for (var i = 0; i < 40; i++) result.LogProbs[i].Should().BeApproximately(expected[i], 1e-5, $"token {i}");
    }

    [Fact]
    public void Context_and_continuation_split_lm_eval_style()
    {
        var tokenizer = TokenizerLoader.Load(Gpt2TokenizerFiles.Directory);
        using var model = ModelFactory.Create(ModelConfig.Llama(tokenizer.VocabSize, 8, 1, 2), seed: 1);
        var scorer = new Scorer(model, tokenizer);
        // The context's trailing space moves to the continuation, where GPT-2 merges it into " world" (995).
        scorer.Tokenize(ScoreRequest.ForContinuation("Hello ", "world")).Target.Should().Equal(995);
        var (context, target) = scorer.Tokenize(ScoreRequest.ForContinuation("Hello", " world"));
        context.Should().Equal(15496);
        target.Should().Equal(995);
        // rstrip() takes every kind of trailing whitespace, not only spaces: "\n" (198) moves too, then "world" (6894).
        (context, target) = scorer.Tokenize(ScoreRequest.ForContinuation("Hello\n", "world"));
        context.Should().Equal(15496);
        target.Should().Equal(198, 6894);
    }

    [Fact]
    public void An_empty_context_is_the_prefix_token_unless_the_continuation_starts_with_it()
    {
        using var model = TinyLlama();
        var scorer = new Scorer(model, new IdTokenizer(11)); // BOS is id 0 ('a')
        scorer.Tokenize(ScoreRequest.ForContinuation("", "fgh")).Should().BeEquivalentTo((new[] { 0 }, new[] { 5, 6, 7 }));
        // lm-eval: continuation_enc[0] is already the prefix token, so it becomes the context.
        scorer.Tokenize(ScoreRequest.ForContinuation("", "abc")).Should().BeEquivalentTo((new[] { 0 }, new[] { 1, 2 }));
    }

    [Fact]
    public void Python_whitespace_rules_as_lm_eval_sees_them()
    {
        // str.isspace covers the ASCII separators U+001C..U+001F, which .NET does not call white space.
        PythonText.RStrip("a b \t\n\u001f\u2003").Should().Be("a b");
        PythonText.RStrip("   ").Should().Be("");
        // len(re.split(r"\s+", s)): ['a', 'b'], ['', 'a', 'b', ''], [''], ['a', 'b'] (U+001C splits).
        PythonText.SplitOnWhitespaceCount("a  b").Should().Be(2);
        PythonText.SplitOnWhitespaceCount(" a\n\tb ").Should().Be(4);
        PythonText.SplitOnWhitespaceCount("").Should().Be(1);
        PythonText.SplitOnWhitespaceCount("a\u001cb").Should().Be(2);
        // len() counts code points: "é😀" is 2 in Python, 3 UTF-16 units in .NET.
        PythonText.Length("é😀").Should().Be(2);
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
        lines[0]["token_ids"]!.AsArray().Select(n => n!.GetValue<int>()).Should().Equal(1, 2, 3);
        lines[1]["token_ids"]!.AsArray().Select(n => n!.GetValue<int>()).Should().Equal(3);
        lines[1]["sum_logprob"]!.GetValue<double>().Should().BeLessThan(0);
        lines[1].ContainsKey("is_greedy").Should().BeTrue();

        File.WriteAllLines(input, ["""{"text": "bc"}""", "not json", """{"context": "a"}""", """{"text": 5}"""]);
        FluentActions.Invoking(() => scorer.ScoreFile(input, dir.Sub("out2.jsonl"))).Should().Throw<InvalidDataException>()
            .WithMessage("3 bad line(s) in in.jsonl:*in.jsonl:2: not valid JSON*in.jsonl:3: expected*in.jsonl:4: 'text' must be a string*");
        File.Exists(dir.Sub("out2.jsonl")).Should().BeFalse();
    }
}
