using Forgetless.Configuration;
using Forgetless.Data;
using Forgetless.Stages.Cli;
using Forgetless.Stages.Diagnostics;

namespace Forgetless.Tests.Diagnostics;

public sealed class FailureDiagnosticsTests : IDisposable
{
    private readonly TempDirectory dir = new();

    public void Dispose() => dir.Dispose();

    private PipelineFileLocations Pipeline() =>
        PipelineFileLocations.Read(dir.File("forgetless.json", "{\n  \"run\": { \"device\": \"gpu\" },\n  \"finetune\": { \"steps\": 0 }\n}\n"));

    [Fact]
    public void Each_line_of_a_configuration_error_is_a_diagnostic_at_its_key()
    {
        var pipeline = Pipeline();
        var e = new ConfigException("forgetless.json: 'run.device' = 'gpu' is not valid; expected one of auto | cpu | cuda\n" +
                                    "forgetless.json: finetune.steps = 0: must be positive");

        var diagnostics = FailureDiagnostics.Of(e, "finetune", pipeline).ToList();

        diagnostics.Should().Equal(
            new Diagnostic(DiagnosticSeverity.Error, "FL2001", "'run.device' = 'gpu' is not valid; expected one of auto | cpu | cuda")
                { File = pipeline.File, Line = 2, Column = 12, Subject = "run.device" },
            new Diagnostic(DiagnosticSeverity.Error, "FL2001", "finetune.steps = 0: must be positive")
                { File = pipeline.File, Line = 3, Column = 17, Subject = "finetune.steps" });
    }

    [Fact]
    public void A_configuration_error_that_names_no_key_is_placed_at_the_pipeline_file()
    {
        var pipeline = Pipeline();

        var d = FailureDiagnostics.Of(new ConfigException("stage 'distill' is turned off in forgetless.json"), null, pipeline).Single();

        (d.Code, d.File, d.Line).Should().Be(("FL2001", pipeline.File, null));
    }

    [Fact]
    public void A_data_error_keeps_its_file_and_line()
    {
        var e = new DataFormatException(Path.Combine(dir.Path, "task.jsonl"), 12, "missing field 'response'");

        var d = FailureDiagnostics.Of(e, "prepare", Pipeline()).Single();

        d.Should().Be(new Diagnostic(DiagnosticSeverity.Error, "FL3001", "prepare: missing field 'response'")
            { File = Path.Combine(dir.Path, "task.jsonl"), Line = 12 });
    }

    [Fact]
    public void Missing_files_usage_mistakes_and_bugs_get_their_own_codes()
    {
        var pipeline = Pipeline();
        string missing = Path.Combine(dir.Path, "nope.safetensors");

        var notFound = FailureDiagnostics.Of(new FileNotFoundException("model file not found", missing), "evaluate", pipeline).Single();
        var usage = FailureDiagnostics.Of(new UsageException("clean: unknown stage 'x'"), "clean", pipeline).Single();
        var bug = FailureDiagnostics.Of(new InvalidOperationException("sequence contains no elements"), "evaluate", pipeline).Single();
        var input = FailureDiagnostics.Of(new UserInputException("run.device = cuda, but CUDA is not available"), "finetune", pipeline).Single();

        (notFound.Code, notFound.File, notFound.Message).Should().Be(("FL3002", missing, "evaluate: model file not found"));
        (usage.Code, usage.File).Should().Be(("FL2002", null));
        (bug.Code, bug.Message).Should().Be(("FL5001", "evaluate: InvalidOperationException: sequence contains no elements (--verbose shows where)"));
        (input.Code, input.Line, input.Subject).Should().Be(("FL3003", 2, "run.device"));
    }
}
