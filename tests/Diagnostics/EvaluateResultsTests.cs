using Forgetless.Stages.Diagnostics;

namespace Forgetless.Tests.Diagnostics;

public sealed class EvaluateResultsTests : IDisposable
{
    private readonly TempDirectory dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public void Each_failed_gate_is_an_error_at_its_entry_in_the_pipeline_file()
    {
        // gates[0] opens on line 5 and gates[1] on line 6, both at column 7 (counted by hand).
        string config = dir.File("forgetless.json", """
            {
              "evaluate": {
                "suites": [],
                "gates": [
                  { "name": "kept", "suite": "old", "metric": "acc", "maxDrop": 0.1 },
                  { "name": "learned", "suite": "new", "metric": "acc", "minGain": 0.2 }
                ]
              }
            }
            """);
        dir.File("runs/evaluate/results.json", """
            {
              "gates": [
                { "name": "kept", "passed": true, "message": "old: drop of acc 0.01, allowed at most 0.1 — pass" },
                { "name": "learned", "passed": false, "message": "new: gain in acc 0.05, required at least 0.2 — FAIL" }
              ],
              "passed": false,
              "config": { "adapter": "/somewhere/adapter" }
            }
            """);

        var results = EvaluateResults.Read(Path.Combine(dir.Path, "runs", "evaluate"))!;
        var failed = results.FailedGates(PipelineFileLocations.Read(config));

        var error = failed.Should().ContainSingle().Subject;
        error.Should().Be(new Diagnostic(DiagnosticSeverity.Error, "FL1001",
            "release gate 'learned' failed: new: gain in acc 0.05, required at least 0.2 — FAIL")
        {
            File = config, Line = 6, Column = 7, Subject = "learned",
        });
        results.Adapter.Should().Be("/somewhere/adapter");
    }

    [Fact]
    public void No_results_file_means_no_results() =>
        EvaluateResults.Read(Path.Combine(dir.Path, "runs", "evaluate")).Should().BeNull();
}
