using System.Text.Json.Nodes;
using Forgetless.Evaluation;

namespace Forgetless.Tests.Evaluation;

[Collection(Forgetless.Tests.Peft.TorchSerial.Name)]
public sealed class EvaluationRunTests
{
    private static readonly Dictionary<char, double> LogProbs = new()
    {
        [' '] = -1, ['a'] = -3, ['b'] = -1.2, ['z'] = Math.Log(1 - Math.Exp(-1) - Math.Exp(-3) - Math.Exp(-1.2)),
    };

    internal static EvaluateOptions TinySuites(TempDirectory dir) => new()
    {
        Suites =
        [
            new SuiteOptions { Name = "ppl", Type = SuiteType.Perplexity, Path = dir.File("ppl.jsonl",
                "{\"text\":\"ab ab\",\"category\":\"g1\"}\n{\"text\":\"b a b\",\"category\":\"g2\"}\n{\"text\":\"ba\",\"category\":\"g1\"}\n") },
            new SuiteOptions { Name = "mc", Type = SuiteType.MultipleChoice, Path = dir.File("mc.jsonl",
                "{\"query\":\"q\",\"choices\":[\"a\",\"bbb\"],\"gold\":0,\"category\":\"seen\"}\n{\"query\":\"q\",\"choices\":[\"b\",\"a\"],\"gold\":0,\"category\":\"unseen\"}\n") },
            new SuiteOptions { Name = "cloze", Type = SuiteType.Cloze, Path = dir.File("cloze.jsonl",
                "{\"context\":\"ab\",\"target\":\" b\",\"candidates\":[\" a\"]}\n{\"context\":\"ba\",\"target\":\" \"}\n") },
            new SuiteOptions { Name = "gen", Type = SuiteType.Generation, Role = SuiteRole.New, MaxNewTokens = 3, Path = dir.File("gen.jsonl",
                "{\"prompt\":\"ab\",\"reference\":\" \"}\n{\"prompt\":\"ba\",\"reference\":\"b\"}\n") },
        ],
        Gates =
        [
            new GateOptions { Name = "ppl-forgetting", Suite = "ppl", Metric = "bits_per_byte", MaxDrop = 100, Relative = true },
            new GateOptions { Name = "gen-learned", Suite = "gen", Metric = "exact_match", MinGain = 0.5 },
        ],
        BootstrapResamples = 200,
        BatchSize = 2,
        SampleGenerations = 2,
    };

    private static ForgettingEvaluation Evaluation(EvaluateOptions options, string cache, double perturb = 0.5) => new()
    {
        Options = options,
        BaseDirectory = "/",
        LoadBase = () => (TinyModels.Unigram(LogProbs), new TinyTokenizer()),
        ApplyCandidate = m => TinyModels.Perturb(m, perturb),
        BaseFingerprint = "tiny-unigram",
        CacheDirectory = cache,
        Seed = 11,
    };

    [Fact]
    public void Second_run_takes_the_base_from_the_cache_and_gives_the_same_numbers()
    {
        using var dir = new TempDirectory();
        var options = TinySuites(dir);
        string cache = Path.Combine(dir.Path, ".cache", "evaluate");

        var first = Evaluation(options, cache);
        var r1 = first.Run(CancellationToken.None);
        first.Scored.Should().Contain(["base:ppl", "base:mc", "base:cloze", "base:gen", "candidate:ppl"]);
        r1.BaseSource.Values.Should().AllBe("scored");

        var second = Evaluation(options, cache, perturb: 0.8); // a new candidate
        var r2 = second.Run(CancellationToken.None);
        second.Scored.Should().NotContain(s => s.StartsWith("base:"));
        second.Scored.Should().HaveCount(4);
        r2.BaseSource.Values.Should().AllBe("cache");
        foreach (var (a, b) in r1.Comparisons.Zip(r2.Comparisons))
        foreach (var (ma, mb) in a.Metrics.Zip(b.Metrics))
            mb.Base.Should().Be(ma.Base);
        r2.Samples.Should().HaveCount(2);
        r2.Samples[0].Base.Should().Be(r1.Samples[0].Base, "generated text is cached with the base scores");

        // A changed suite file is a different cache key.
        File.AppendAllText(options.Suites[0].Path, "{\"text\":\"a b\"}\n");
        var third = Evaluation(options, cache);
        third.Run(CancellationToken.None);
        third.Scored.Should().Contain("base:ppl").And.NotContain("base:mc");
    }

    [Fact]
    public void Reports_hold_lm_eval_results_comparison_gates_and_charts()
    {
        using var dir = new TempDirectory();
        var options = TinySuites(dir);
        var result = Evaluation(options, Path.Combine(dir.Path, "cache")).Run(CancellationToken.None);
        File.WriteAllText(dir.File("metrics.jsonl"), "{\"step\":1,\"loss\":3.2,\"heldout_loss\":3.0}\nnot json\n{\"step\":2,\"loss\":2.9,\"val_task_loss\":2.7}\n");
        result = result with { Curves = LearningCurves.TryRead(Path.Combine(dir.Path, "metrics.jsonl")) };
        string output = Path.Combine(dir.Path, "out");
        EvaluationReports.WriteAll(result, output, "test");

        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(output, EvaluationReports.ResultsFile)))!;
        json["results"]!["ppl"]!["token_perplexity,none"]!.GetValue<double>().Should().BePositive();
        json["results"]!["mc"]!["acc_stderr,none"].Should().NotBeNull();
        json["base_results"]!["mc"]!["acc,none"]!.GetValue<double>().Should().Be(1.0);
        json["n-samples"]!["gen"]!["effective"]!.GetValue<int>().Should().Be(2);
        json["comparison"]!["ppl"]!["categories"]!["g1"]!["n"]!.GetValue<int>().Should().Be(2);
        json["comparison"]!["ppl"]!["metrics"]!["bits_per_byte"]!["forgetting_ci"]!.AsArray().Should().HaveCount(2);
        json["comparison"]!["gen"]!["metrics"]!["exact_match"]!["gain"].Should().NotBeNull();
        json["gates"]!.AsArray().Should().HaveCount(2);
        json["passed"]!.GetValue<bool>().Should().Be(result.Passed);
        json["date"]!.GetValue<double>().Should().BePositive();

        string html = File.ReadAllText(Path.Combine(output, EvaluationReports.HtmlFile));
        html.Should().Contain("<svg").And.Contain("Learning curves").And.Contain("Sample generations");
        html.Should().NotContain("src=\"http", "the page is self-contained");
        File.ReadAllText(Path.Combine(output, EvaluationReports.MarkdownFile)).Should().Contain("| gen-learned |");
    }
}
