using System.Text.Json.Nodes;
using Forgetless.Packaging;

namespace Forgetless.Tests.Packaging;

public sealed class AdapterSetVerifierTests
{
    private static JsonObject Manifest(params (string Kind, double Threshold, double Judged, bool Passed)[] gates) => new()
    {
        ["continual"] = new JsonObject
        {
            ["gates"] = new JsonArray(gates.Select((g, i) => (JsonNode)new JsonObject
            {
                ["name"] = $"gate{i}", ["kind"] = g.Kind, ["threshold"] = g.Threshold, ["judged"] = g.Judged, ["passed"] = g.Passed,
            }).ToArray()),
            ["passed"] = gates.All(g => g.Passed),
        },
    };

    [Fact]
    public void Recorded_gates_that_follow_from_their_numbers_pass()
    {
        AdapterSetVerifier.CheckGates(Manifest(("min", -0.05, -0.01, true), ("max", 0.1, 0.1, true))).Should().BeEmpty();
    }

    [Fact]
    public void A_verdict_that_contradicts_its_numbers_is_named()
    {
        // BWT's bound −0.2 is below the minimum −0.05, yet the record says pass.
        AdapterSetVerifier.CheckGates(Manifest(("min", -0.05, -0.2, true)))
            .Should().ContainSingle(p => p.Contains("gate0") && p.Contains("recorded as passed"));
    }

    [Fact]
    public void A_failed_gate_or_an_overall_verdict_that_disagrees_is_a_problem()
    {
        AdapterSetVerifier.CheckGates(Manifest(("max", 0.1, 0.3, false))).Should().Contain(p => p.Contains("gate0") && p.Contains("failed"));
        var manifest = Manifest(("max", 0.1, 0.3, false));
        manifest["continual"]!["passed"] = true;
        AdapterSetVerifier.CheckGates(manifest).Should().Contain(p => p.Contains("continual.passed"));
        var incomplete = Manifest(("min", 0, 0, true));
        incomplete["continual"]!["gates"]![0]!.AsObject().Remove("judged");
        AdapterSetVerifier.CheckGates(incomplete).Should().Contain(p => p.Contains("lacks"));
    }
}
