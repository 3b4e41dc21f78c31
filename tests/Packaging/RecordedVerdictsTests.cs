using System.Text.Json.Nodes;
using Forgetless.Packaging;

namespace Forgetless.Tests.Packaging;

/// <summary>Non-inferiority verdicts (the default decision) are rechecked against their one-sided bound.</summary>
public sealed class RecordedVerdictsTests
{
    /// <summary>A maxDrop gate of 0.05 judged on its one-sided bound, in the shape results.json records it.</summary>
    private static JsonObject Evaluation(double bound, bool passed, double low = 0.01, double high = 0.05) => new()
    {
        ["gates"] = new JsonArray(new JsonObject
        {
            ["name"] = "heldout-forgetting", ["suite"] = "heldout", ["metric"] = "bits_per_byte", ["kind"] = "maxDrop", ["threshold"] = 0.05,
            ["relative"] = false, ["decision"] = "non_inferiority", ["base"] = 2.4, ["candidate"] = 2.43, ["observed"] = 0.03,
            ["interval"] = new JsonArray(low, high), ["bound"] = bound, ["passed"] = passed, ["message"] = "m",
        }),
        ["passed"] = passed,
        ["higher_is_better"] = new JsonObject { ["heldout"] = new JsonObject { ["bits_per_byte"] = false } },
    };

    [Fact]
    public void A_bound_within_the_threshold_supports_a_pass()
    {
        RecordedVerdicts.Check(Evaluation(bound: 0.045, passed: true), "results.json").Should().BeEmpty();
    }

    [Fact]
    public void A_pass_recorded_over_a_bound_past_the_threshold_is_a_contradiction()
    {
        // The interval's low end (0.01) is within 0.05, so the interval rule would pass; non-inferiority does not.
        RecordedVerdicts.Check(Evaluation(bound: 0.058, passed: true, high: 0.062), "results.json")
            .Should().ContainSingle(p => p.Contains("recorded as passed") && p.Contains("one-sided bound 0.058"));
    }

    [Fact]
    public void A_bound_outside_its_own_interval_is_refused()
    {
        RecordedVerdicts.Check(Evaluation(bound: 0.001, passed: true), "results.json")
            .Should().Contain(p => p.Contains("lies outside its interval"));
    }
}
