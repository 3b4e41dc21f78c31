using System.Xml.Linq;
using Forgetless.Evaluation;

namespace Forgetless.Tests.Evaluation;

public sealed class GateTests
{
    private static Dictionary<string, (SuiteResult Base, SuiteResult Candidate)> Suites(params (SuiteResult Base, SuiteResult Candidate)[] pairs) =>
        pairs.ToDictionary(p => p.Base.Suite, p => p);

    private static IEnumerable<double> Ones(int n, int zeros) => Enumerable.Range(0, n).Select(i => i < zeros ? 0.0 : 1.0);

    // facts: base acc 0.8, candidate 0.7 (a drop of 0.1, relative 0.125); seen items 0-49 drop 0.2, unseen none.
    private static readonly (SuiteResult, SuiteResult) Facts = (
        Items.Acc("facts", Ones(100, 20), category: i => i % 2 == 0 ? "seen" : "unseen"),
        Items.Acc("facts", Enumerable.Range(0, 100).Select(i => i < 20 || (i < 40 && i % 2 == 0) ? 0.0 : 1.0), category: i => i % 2 == 0 ? "seen" : "unseen"));

    // heldout: perplexity e^1 → e^1.2 (20.7% worse); lower is better.
    private static readonly (SuiteResult, SuiteResult) Heldout = (
        Items.Ppl("heldout", Enumerable.Repeat(1.0, 50)), Items.Ppl("heldout", Enumerable.Repeat(1.2, 50)));

    // pronounce (new): 0.1 → 0.5.
    private static readonly (SuiteResult, SuiteResult) Pronounce = (
        Items.Acc("pronounce", Ones(100, 90), SuiteRole.New), Items.Acc("pronounce", Ones(100, 50), SuiteRole.New));

    private static GateVerdict Judge(GateOptions gate, GateDecision decision = GateDecision.Point, bool any = false) =>
        ReleaseGates.Judge(gate, Suites(Facts, Heldout, Pronounce), decision, any, seed: 5, resamples: 400);

    [Theory]
    // higher is better, absolute
    [InlineData("facts", "acc", "", "maxDrop", 0.15, false, true)]
    [InlineData("facts", "acc", "", "maxDrop", 0.05, false, false)]
    // higher is better, relative (0.125)
    [InlineData("facts", "acc", "", "maxDrop", 0.2, true, true)]
    [InlineData("facts", "acc", "", "maxDrop", 0.1, true, false)]
    // by category: seen dropped 0.2 (0.8 → 0.6... relative to 0.8 base), unseen 0
    [InlineData("facts", "acc_norm", "seen", "maxDrop", 0.1, false, false)]
    [InlineData("facts", "acc_norm", "unseen", "maxDrop", 0.0, false, true)]
    // lower is better: perplexity rose by e^0.2 − 1 ≈ 22%
    [InlineData("heldout", "token_perplexity", "", "maxDrop", 0.25, true, true)]
    [InlineData("heldout", "token_perplexity", "", "maxDrop", 0.2, true, false)]
    [InlineData("heldout", "nll", "", "maxDrop", 0.25, false, true)]
    [InlineData("heldout", "nll", "", "maxDrop", 0.15, false, false)]
    // gains on the new task
    [InlineData("pronounce", "acc", "", "minGain", 0.3, false, true)]
    [InlineData("pronounce", "acc", "", "minGain", 0.5, false, false)]
    [InlineData("pronounce", "acc", "", "minGain", 3.0, true, true)]
    [InlineData("pronounce", "acc", "", "minGain", 5.0, true, false)]
    // a perplexity that got worse is a negative gain
    [InlineData("heldout", "token_perplexity", "", "minGain", 0.0, false, false)]
    // absolute bounds on the candidate
    [InlineData("facts", "acc", "", "min", 0.6, false, true)]
    [InlineData("facts", "acc", "", "min", 0.8, false, false)]
    [InlineData("facts", "acc", "", "max", 0.8, false, true)]
    [InlineData("heldout", "token_perplexity", "", "max", 3.0, false, false)]
    [InlineData("heldout", "token_perplexity", "", "max", 3.4, false, true)]
    public void Point_gates_pass_and_fail_where_they_should(string suite, string metric, string category, string kind, double threshold, bool relative, bool passes)
    {
        var gate = new GateOptions { Suite = suite, Metric = metric, Category = category, Relative = relative };
        switch (kind)
        {
            case "maxDrop": gate.MaxDrop = threshold; break;
            case "minGain": gate.MinGain = threshold; break;
            case "min": gate.Min = threshold; break;
            default: gate.Max = threshold; break;
        }
        var verdict = Judge(gate);
        verdict.Passed.Should().Be(passes, verdict.Message);
        verdict.Message.Should().EndWith(passes ? "pass" : "FAIL");
    }

    [Fact]
    public void Better_perplexity_passes_a_zero_max_drop()
    {
        var suites = Suites((Items.Ppl("heldout", Enumerable.Repeat(1.2, 20)), Items.Ppl("heldout", Enumerable.Repeat(1.0, 20))));
        var verdict = ReleaseGates.Judge(new GateOptions { Suite = "heldout", Metric = "token_perplexity", MaxDrop = 0 }, suites, GateDecision.Point, false, 1);
        verdict.Observed.Should().BeNegative();
        verdict.Passed.Should().BeTrue();
    }

    [Fact]
    public void Interval_decisions_fail_on_the_whole_interval_or_on_any_of_it()
    {
        // 100 items, base all right, candidate wrong on 5: drop 0.05 with a bootstrap interval of roughly [0.01, 0.10].
        var suites = Suites((Items.Acc("t", Ones(100, 0)), Items.Acc("t", Ones(100, 5))));
        GateVerdict Judge(double maxDrop, GateDecision d, bool any) =>
            ReleaseGates.Judge(new GateOptions { Suite = "t", Metric = "acc", MaxDrop = maxDrop }, suites, d, any, seed: 9, resamples: 1000);

        var point = Judge(0.04, GateDecision.Point, false);
        point.Passed.Should().BeFalse("0.05 > 0.04");
        var whole = Judge(0.04, GateDecision.Interval, false);
        whole.Interval!.Low.Should().BeLessThan(0.04);
        whole.Passed.Should().BeTrue("part of the interval is within 0.04, so the drop is not established");

        Judge(0.06, GateDecision.Point, false).Passed.Should().BeTrue();
        var any = Judge(0.06, GateDecision.Interval, true);
        any.Interval!.High.Should().BeGreaterThan(0.06);
        any.Passed.Should().BeFalse("with anyOfInterval, a plausible drop past 0.06 fails");
        Judge(0.15, GateDecision.Interval, true).Passed.Should().BeTrue();
        Judge(0.005, GateDecision.Interval, false).Passed.Should().BeFalse("even the low end of the interval is past 0.005");

        // A per-gate override beats the section default.
        ReleaseGates.Judge(new GateOptions { Suite = "t", Metric = "acc", MaxDrop = 0.04, Decision = GateDecision.Point }, suites,
            GateDecision.Interval, false, 9).Passed.Should().BeFalse();
    }

    [Fact]
    public void Non_inferiority_is_the_default_and_judges_the_one_sided_bound_on_the_worse_side()
    {
        new EvaluateOptions().Decision.Should().Be(GateDecision.NonInferiority);

        // 100 items, base right on all, candidate wrong on 5: a resample's drop is X/100, X ~ Binomial(100, 0.05).
        // From the binomial pmf by hand: P(X ≤ 8) = 0.937, P(X ≤ 9) = 0.972, so the 95% quantile — the one-sided 95%
        // bound of the drop — is 9/100 (4000 resamples keep the empirical quantile there: 0.013 is ~4 standard errors).
        var drop = Suites((Items.Acc("t", Ones(100, 0)), Items.Acc("t", Ones(100, 5))));
        GateVerdict Drop(double maxDrop, GateDecision d) =>
            ReleaseGates.Judge(new GateOptions { Suite = "t", Metric = "acc", MaxDrop = maxDrop }, drop, d, false, seed: 9, resamples: 4000);
        var strict = Drop(0.08, GateDecision.NonInferiority);
        strict.Bound.Should().BeApproximately(0.09, 1e-12);
        strict.Passed.Should().BeFalse("a drop of up to 0.09 is plausible, so the candidate has not shown it stays within 0.08");
        strict.Message.Should().Contain("one-sided 95% bound 0.09");
        Drop(0.08, GateDecision.Interval).Passed.Should().BeTrue("the old rule lets it pass: the interval also holds drops below 0.08");
        Drop(0.09, GateDecision.NonInferiority).Passed.Should().BeTrue();

        // 200 items, base wrong on all, candidate right on 10: a resample's gain is X/200, X ~ Binomial(200, 0.05);
        // P(X ≤ 4) = 0.026, P(X ≤ 5) = 0.062: the 5% quantile (the worse side of a gain) is 5/200 = 0.025.
        var gain = Suites((Items.Acc("n", Ones(200, 200), SuiteRole.New), Items.Acc("n", Ones(200, 190), SuiteRole.New)));
        GateVerdict Gain(double minGain, GateDecision d) =>
            ReleaseGates.Judge(new GateOptions { Suite = "n", Metric = "acc", MinGain = minGain }, gain, d, false, seed: 9, resamples: 4000);
        var learned = Gain(0.04, GateDecision.NonInferiority);
        learned.Observed.Should().BeApproximately(0.05, 1e-12);
        learned.Bound.Should().BeApproximately(0.025, 1e-12);
        learned.Passed.Should().BeFalse("a gain as small as 0.025 is plausible");
        Gain(0.04, GateDecision.Interval).Passed.Should().BeTrue();
        Gain(0.025, GateDecision.NonInferiority).Passed.Should().BeTrue();
    }

    [Fact]
    public void AnyOfInterval_belongs_to_the_interval_decision()
    {
        new EvaluateOptions { AnyOfInterval = true }.Validate().Should().ContainSingle().Which.Should().Contain("decision interval only");
        new EvaluateOptions { AnyOfInterval = true, Decision = GateDecision.Interval }.Validate().Should().BeEmpty();
    }

    [Fact]
    public void Lower_is_better_interval_gates_use_the_worsening_direction()
    {
        var random = new Random(4);
        var b = Enumerable.Range(0, 60).Select(_ => 1 + random.NextDouble() * 0.2).ToArray();
        var suites = Suites((Items.Ppl("h", b), Items.Ppl("h", b.Select(x => x + 0.3))));
        var verdict = ReleaseGates.Judge(new GateOptions { Suite = "h", Metric = "token_perplexity", MaxDrop = 0.1, Relative = true }, suites, GateDecision.Interval, false, 2, resamples: 300);
        verdict.Interval!.Low.Should().BeGreaterThan(0.1);
        verdict.Passed.Should().BeFalse();
        ReleaseGates.Judge(new GateOptions { Suite = "h", Metric = "token_perplexity", MinGain = -0.5, Relative = true }, suites, GateDecision.Interval, false, 2, resamples: 300)
            .Passed.Should().BeTrue();
    }

    [Fact]
    public void Unknown_suite_metric_or_category_is_a_user_error()
    {
        var act1 = () => Judge(new GateOptions { Suite = "nope", Metric = "acc", MaxDrop = 0 });
        act1.Should().Throw<UserInputException>().WithMessage("*no suite named 'nope'*");
        var act2 = () => Judge(new GateOptions { Suite = "facts", Metric = "f1", MaxDrop = 0 });
        act2.Should().Throw<UserInputException>().WithMessage("*no metric 'f1'*");
        var act3 = () => Judge(new GateOptions { Suite = "facts", Metric = "acc", Category = "rare", MaxDrop = 0 });
        act3.Should().Throw<UserInputException>().WithMessage("*no items of category 'rare'*seen, unseen*");
    }

    [Fact]
    public void Gate_options_are_validated()
    {
        var options = new EvaluateOptions
        {
            Suites = [new SuiteOptions { Name = "facts", Type = SuiteType.MultipleChoice, Path = "f.jsonl" }],
            Gates =
            [
                new GateOptions { Suite = "facts", Metric = "acc" },
                new GateOptions { Suite = "fcts", Metric = "acc", MaxDrop = 1, MinGain = 1 },
                new GateOptions { Suite = "facts", Metric = "acc", Min = 0.5, Relative = true },
            ],
        };
        var errors = options.Validate();
        errors.Should().Contain(e => e.StartsWith("gates[0]: set exactly one"));
        errors.Should().Contain(e => e.StartsWith("gates[1]: set exactly one"));
        errors.Should().Contain(e => e.Contains("gates[1].suite: no suite named 'fcts' — did you mean 'facts'?"));
        errors.Should().Contain(e => e.StartsWith("gates[2].relative"));
    }

    [Fact]
    public void JUnit_xml_is_well_formed_with_one_case_per_gate_and_a_failure_on_each_failed_gate()
    {
        var gates = new List<GateOptions>
        {
            new() { Suite = "facts", Metric = "acc", MaxDrop = 0.15 },
            new() { Suite = "facts", Metric = "acc_norm", Category = "seen", MaxDrop = 0.05, Name = "seen <facts> & \"friends\"" },
            new() { Suite = "pronounce", Metric = "acc", MinGain = 0.3 },
        };
        var suites = Suites(Facts, Heldout, Pronounce);
        var verdicts = ReleaseGates.Judge(gates, suites, GateDecision.Point, false, 1);
        var result = new EvaluationResult([], suites, verdicts, [], null, new Dictionary<string, string>(), new EvaluateOptions(),
            new Dictionary<string, object?>(), DateTimeOffset.UnixEpoch);

        var xml = XDocument.Parse(EvaluationReports.JUnit(result).ToString());
        var cases = xml.Descendants("testcase").ToList();
        cases.Should().HaveCount(3);
        cases.Select(c => c.Attribute("name")!.Value).Should().Contain("seen <facts> & \"friends\"");
        cases.Count(c => c.Element("failure") is not null).Should().Be(1);
        cases[1].Element("failure")!.Attribute("message")!.Value.Should().Contain("FAIL");
        xml.Root!.Name.LocalName.Should().Be("testsuites");
        xml.Descendants("testsuite").Single().Attribute("failures")!.Value.Should().Be("1");
        xml.Descendants("testsuite").Single().Attribute("tests")!.Value.Should().Be("3");
    }
}
