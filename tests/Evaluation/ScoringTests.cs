using Forgetless.Evaluation;
using Forgetless.Model;
using Forgetless.Model.Inference;

namespace Forgetless.Tests.Evaluation;

[Collection(Forgetless.Tests.Peft.TorchSerial.Name)]
public sealed class ScoringTests
{
    // p(' ') = e^-1, p(a) = e^-3, p(b) = e^-1.2, p(é) = e^-2, the rest of the mass on 'z'.
    private static readonly Dictionary<char, double> LogProbs = new()
    {
        [' '] = -1, ['a'] = -3, ['b'] = -1.2, ['é'] = -2, ['z'] = Math.Log(1 - Math.Exp(-1) - Math.Exp(-3) - Math.Exp(-1.2) - Math.Exp(-2)),
    };

    private static SuiteResult Run(SuiteOptions suite, string path)
    {
        using var model = TinyModels.Unigram(LogProbs);
        var tokenizer = new TinyTokenizer();
        return new SuiteRunner(new Scorer(model, tokenizer), new TextGenerator(model, tokenizer), batchSize: 2).Run(suite, path, CancellationToken.None);
    }

    [Fact]
    public void Acc_acc_norm_and_acc_bytes_as_lm_eval_computes_them()
    {
        // Each choice is scored as " " + choice; lm-eval's acc_norm divides by len(choice) WITHOUT the delimiter,
        // acc_bytes by the choice's UTF-8 bytes.
        // Item 1, choices "b" and "bbbb": ll = -1 - 1.2 = -2.2 and -1 - 4.8 = -5.8.
        //   acc: -2.2 > -5.8 → "b".  acc_norm: -2.2/1 < -5.8/4 = -1.45 → "bbbb".  acc_bytes: the same (ASCII).
        //   (Counting the delimiter, -2.2/2 = -1.1 > -5.8/5 = -1.16 would pick "b": the old, wrong answer.)
        // Item 2, choices "é" and "bbb": ll = -1 - 2 = -3 and -1 - 3.6 = -4.6.
        //   acc: "é".  acc_norm: -3/1 < -4.6/3 = -1.533 → "bbb".  acc_bytes: -3/2 = -1.5 > -4.6/3 → "é".
        using var dir = new TempDirectory();
        var path = dir.File("mc.jsonl",
            "{\"query\":\"q\",\"choices\":[\"b\",\"bbbb\"],\"gold\":1}\n" +
            "{\"query\":\"q\",\"choices\":[\"é\",\"bbb\"],\"gold\":0}\n");
        var result = Run(new SuiteOptions { Name = "mc", Type = SuiteType.MultipleChoice }, path);
        result.Items[0].Values["acc"].Should().Be(0);
        result.Items[0].Values["acc_norm"].Should().Be(1);
        result.Items[0].Values["acc_bytes"].Should().Be(1);
        result.Items[1].Values["acc"].Should().Be(1);
        result.Items[1].Values["acc_norm"].Should().Be(0);
        result.Items[1].Values["acc_bytes"].Should().Be(1);
        result.Value("acc").Should().Be(0.5);
        result.Value("acc_norm").Should().Be(0.5);
        result.Value("acc_bytes").Should().Be(1);
    }

    [Fact]
    public void Word_and_byte_counts_and_the_perplexities_built_on_them_are_lm_eval_s()
    {
        using var dir = new TempDirectory();
        // " ab  b " : tokens ' ','a','b',' ',' ','b',' ' → nll 1+3+1.2+1+1+1.2+1 = 9.4 over 7 tokens, 7 bytes;
        // words = len(re.split(r"\s+", " ab  b ")) = len(['', 'ab', 'b', '']) = 4.
        // "éa" : nll 2 + 3 = 5 over 2 tokens, 3 bytes (é is two), 1 word.
        var path = dir.File("ppl.jsonl", "{\"text\":\" ab  b \",\"category\":\"x\"}\n\n{\"text\":\"éa\",\"category\":\"y\"}\n");
        var result = Run(new SuiteOptions { Name = "ppl", Type = SuiteType.Perplexity }, path);
        const double nll = 9.4 + 5;
        result.Items[0].Values["words"].Should().Be(4);
        result.Items[1].Values["bytes"].Should().Be(3);
        result.Value("nll").Should().BeApproximately(nll / 9, 1e-5);
        result.Value("token_perplexity").Should().BeApproximately(Math.Exp(nll / 9), 1e-4);
        result.Value("word_perplexity").Should().BeApproximately(Math.Exp(nll / 5), 1e-2);   // lm-eval weighted_perplexity
        result.Value("byte_perplexity").Should().BeApproximately(Math.Exp(nll / 10), 1e-4);
        result.Value("bits_per_byte").Should().BeApproximately(nll / 10 / Math.Log(2), 1e-5);
        result.Categories().Keys.Should().Equal("x", "y");
    }

    [Fact]
    public void A_document_longer_than_the_context_is_scored_in_lm_eval_s_rolling_windows()
    {
        // A random model with a context of 8 and a 21-token document. lm-eval's windows, worked by hand:
        // [BOS] t0..t6 predicts t0..t7; t7..t14 predicts t8..t15 (one token of context); t12..t19 predicts t16..t20
        // (the last, shorter window is given the 4 tokens before it as context, filling its input to 8).
        using var model = ModelFactory.Create(TinyModels.Config with { MaxPositionEmbeddings = 8 }, seed: 5);
        var tokenizer = new TinyTokenizer();
        const string text = "the quick brown fox j";
        var t = tokenizer.Encode(text);
        t.Should().HaveCount(21);
        using var dir = new TempDirectory();
        var path = dir.File("long.jsonl", "{\"text\":\"" + text + "\"}\n");
        var result = new SuiteRunner(new Scorer(model, tokenizer), new TextGenerator(model, tokenizer))
            .Run(new SuiteOptions { Name = "long", Type = SuiteType.Perplexity }, path, CancellationToken.None);

        double LogProbs(long[] input, int from, int[] targets)
        {
            using var _ = TorchSharp.torch.no_grad();
            using var logits = model.Forward(TorchSharp.torch.tensor(input, [1, input.Length]));
            using var logp = TorchSharp.torch.nn.functional.log_softmax(logits[0], -1);
            return targets.Select((y, k) => (double)logp[from + k, y].item<float>()).Sum();
        }
        long[] Ids(int start, int end) => t[start..end].Select(x => (long)x).ToArray();
        var nll = -(LogProbs([1, .. Ids(0, 7)], 0, t[0..8])
                    + LogProbs(Ids(7, 15), 0, t[8..16])
                    + LogProbs(Ids(12, 20), 3, t[16..21]));   // input t12..t19: its last 5 positions predict t16..t20
        result.Items[0].Values["tokens"].Should().Be(21);
        result.Items[0].Values["nll"].Should().BeApproximately(nll, 1e-4);
        result.Value("word_perplexity").Should().BeApproximately(Math.Exp(nll / 5), 1e-3 * Math.Exp(nll / 5));
    }

    [Fact]
    public void Cloze_greedy_accuracy_lambada_perplexity_per_item_and_candidate_choice()
    {
        using var dir = new TempDirectory();
        // The model's greedy token is always ' ' (log p = -1): target " " is greedy, " b" is not.
        var path = dir.File("cloze.jsonl",
            "{\"context\":\"ab\",\"target\":\" \"}\n" +
            "{\"context\":\"ab\",\"target\":\" b\",\"candidates\":[\" a\",\" b\"]}\n");
        var result = Run(new SuiteOptions { Name = "cloze", Type = SuiteType.Cloze }, path);
        result.Items[0].Values["acc"].Should().Be(1);
        result.Items[1].Values["acc"].Should().Be(0);
        result.Items[1].Values["acc_choice"].Should().Be(1);
        // lm-eval: perplexity = exp(-mean over items of each item's target log-likelihood) = exp((1 + 2.2) / 2).
        result.Value("perplexity").Should().BeApproximately(Math.Exp((1 + 2.2) / 2), 1e-4);
        // Ours, per token: exp((1 + 1 + 1.2) / 3).
        result.Value("token_perplexity").Should().BeApproximately(Math.Exp((1 + 1 + 1.2) / 3), 1e-4);
    }

    [Fact]
    public void Lambada_and_hellaswag_dumps_are_read_unchanged()
    {
        using var dir = new TempDirectory();
        var lambada = dir.File("lambada.jsonl", "{\"text\":\"ab ab b\"}\n");
        var cloze = Run(new SuiteOptions { Name = "l", Type = SuiteType.Cloze, Preset = SuitePreset.Lambada }, lambada);
        cloze.Items[0].Values["tokens"].Should().Be(2); // " b"
        cloze.Items[0].Values["nll"].Should().BeApproximately(2.2, 1e-4);

        // " a": -4 (per char of "a": -4); " bbb": -4.6 (per char: -1.53): acc picks "a", acc_norm "bbb".
        var hellaswag = dir.File("hs.jsonl",
            "{\"activity_label\":\"Ab\",\"ctx_a\":\"ab\",\"ctx_b\":\"BA\",\"endings\":[\"a\",\"bbb\"],\"label\":\"1\",\"split\":\"val\"}\n");
        var mc = Run(new SuiteOptions { Name = "h", Type = SuiteType.MultipleChoice, Preset = SuitePreset.Hellaswag, Fields = new() { ["category"] = "split" } }, hellaswag);
        mc.Items[0].Values["acc"].Should().Be(0);
        mc.Items[0].Values["acc_norm"].Should().Be(1);
        mc.Items[0].Category.Should().Be("val");
        SuiteRunner.Capitalize("BA bA").Should().Be("Ba ba");
        SuiteRunner.HellaswagClean(" How to [header] do it [title] Step  one ").Should().Be("How to do it. Step one");
    }

    [Fact]
    public void Field_renames_map_a_dump_onto_the_suite_shape()
    {
        using var dir = new TempDirectory();
        var path = dir.File("arc.jsonl", "{\"question\":\"q\",\"options\":[\"a\",\"bbb\"],\"answer\":0,\"subject\":\"s\"}\n");
        var result = Run(new SuiteOptions
        {
            Name = "arc", Type = SuiteType.MultipleChoice,
            Fields = new() { ["query"] = "question", ["choices"] = "options", ["gold"] = "answer", ["category"] = "subject" },
        }, path);
        result.Items[0].Values["acc"].Should().Be(1);
        result.Items[0].Category.Should().Be("s");
    }

    [Theory]
    [InlineData("{\"query\":\"q\",\"choices\":[\"a\"],\"gold\":0}\n{not json\n", ":2: not valid JSON")]
    [InlineData("{\"query\":\"q\",\"choices\":[\"a\"],\"gold\":0}\n\n{\"query\":\"q\",\"choices\":[\"a\"]}\n", ":3: field 'gold' is missing")]
    [InlineData("{\"query\":\"q\",\"choices\":[\"a\",\"b\"],\"gold\":5}\n", ":1: gold = 5 but there are 2 choices")]
    [InlineData("[1,2]\n", ":1: each line must be a JSON object")]
    [InlineData("{\"query\":\"q\",\"choices\":\"a\",\"gold\":0}\n", ":1: field 'choices' must be a list of strings")]
    public void Bad_suite_lines_are_reported_with_file_and_line(string content, string expected)
    {
        using var dir = new TempDirectory();
        var path = dir.File("bad.jsonl", content);
        var act = () => Run(new SuiteOptions { Name = "bad", Type = SuiteType.MultipleChoice }, path);
        act.Should().Throw<SuiteFormatException>().Which.Message.Should().Contain(path + expected);
    }
}
