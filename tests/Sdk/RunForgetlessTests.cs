using Forgetless.Sdk;
using Microsoft.Build.Utilities;

namespace Forgetless.Tests.Sdk;

/// <summary>
/// The SDK's task against a stand-in for the forgetless executable: a shell script that records its arguments,
/// prints what forgetless prints, writes a diagnostics file and exits with a chosen code.
/// </summary>
public sealed class RunForgetlessTests : IDisposable
{
    private readonly TempDirectory dir = new();
    private readonly RecordingBuildEngine engine = new();

    public void Dispose() => dir.Dispose();

    private string Diagnostics => Path.Combine(dir.Path, "obj", "forgetless.diagnostics.jsonl");

    /// <summary>A fake forgetless that writes <paramref name="diagnostics"/> to the file after --diagnostics and exits with <paramref name="exit"/>.</summary>
    private string FakeTool(string diagnostics, int exit)
    {
        dir.File("diagnostics.txt", diagnostics);
        string script = dir.File("forgetless", $$"""
            #!/bin/sh
            printf '%s\n' "$@" > "{{dir.Path}}/arguments.txt"
            echo "12:00:00 info: forgetless[0] evaluate: running"
            echo "forgetless.json(3,4): error XX0001: a log line that only looks like an error" >&2
            while [ "$#" -gt 0 ]; do
              if [ "$1" = "--diagnostics" ]; then mkdir -p "$(dirname "$2")"; cp "{{dir.Path}}/diagnostics.txt" "$2"; fi
              shift
            done
            exit {{exit}}
            """);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return script;
    }

    private RunForgetless Task(string executable) => new()
    {
        BuildEngine = engine,
        Executable = executable,
        Verb = "evaluate",
        PipelineFile = Path.Combine(dir.Path, "my pipeline.json"),
        DiagnosticsFile = Diagnostics,
        Settings = [new TaskItem("finetune.steps=4"), new TaskItem("evaluate.gates.3.minGain=2")],
        Project = "MyAdapter",
        WorkingDirectory = dir.Path,
    };

    [Fact]
    public void A_failed_gate_is_an_msbuild_error_with_its_code_file_line_and_message()
    {
        string pipeline = Path.Combine(dir.Path, "forgetless.json");
        var task = Task(FakeTool($$"""
            {"severity":"warning","code":"FL8001","message":"finetune: kd is on, but there are no replay rows","file":"{{pipeline}}","line":40,"column":5}
            {"severity":"error","code":"FL1001","message":"release gate 'learned' failed: gain 5%, required at least 20% — FAIL","file":"{{pipeline}}","line":95,"column":7,"subject":"learned"}
            {"severity":"info","code":"FL0000","message":"failed (exit code 4) after completing evaluate","exit_code":4,"ran":["evaluate"],"up_to_date":["prepare","finetune"],"run_root":"{{dir.Path}}/runs"}
            """, exit: 4));

        task.Execute().Should().BeFalse();

        var error = engine.Errors.Should().ContainSingle().Subject;
        (error.Code, error.File, error.LineNumber, error.ColumnNumber).Should().Be(("FL1001", pipeline, 95, 7));
        error.Message.Should().Be("release gate 'learned' failed: gain 5%, required at least 20% — FAIL");
        var warning = engine.Warnings.Should().ContainSingle().Subject;
        (warning.Code, warning.LineNumber).Should().Be(("FL8001", 40));
        task.Ran.Should().Equal("evaluate");
        task.UpToDate.Should().Equal("prepare", "finetune");
        task.RunRoot.Should().Be(dir.Path + "/runs");
        engine.Messages.Select(m => m.Message).Should().Contain("MyAdapter: forgetless evaluate: failed (exit code 4) after completing evaluate")
            .And.Contain("forgetless.json(3,4): error XX0001: a log line that only looks like an error", "the console is passed on as it is");
    }

    [Fact]
    public void Passes_the_verb_the_pipeline_file_the_diagnostics_file_and_each_setting_as_separate_arguments()
    {
        var task = Task(FakeTool("""{"severity":"info","code":"FL0000","message":"nothing to do","exit_code":0,"ran":[],"up_to_date":["prepare"]}""", exit: 0));

        task.Execute().Should().BeTrue();

        File.ReadAllLines(Path.Combine(dir.Path, "arguments.txt")).Should().Equal(
            "evaluate", "--config", Path.Combine(dir.Path, "my pipeline.json"), "--diagnostics", Diagnostics,
            "--set", "finetune.steps=4", "--set", "evaluate.gates.3.minGain=2");
        engine.Errors.Should().BeEmpty();
        task.UpToDate.Should().Equal("prepare");
    }

    [Fact]
    public void A_failure_without_diagnostics_still_fails_the_build_and_says_so()
    {
        var task = Task(FakeTool("", exit: 134));

        task.Execute().Should().BeFalse();

        var error = engine.Errors.Should().ContainSingle().Subject;
        error.Code.Should().Be("FL5001");
        error.Message.Should().Contain("exited with code 134");
    }

    [Fact]
    public void A_stale_diagnostics_file_from_an_earlier_run_is_not_reported_again()
    {
        dir.File("obj/forgetless.diagnostics.jsonl", """{"severity":"error","code":"FL2001","message":"old news"}""");
        var task = Task(Path.Combine(dir.Path, "no-tool-here"));

        task.Execute().Should().BeFalse();

        engine.Errors.Select(e => e.Code).Should().Equal("FL2004");
        File.Exists(Diagnostics).Should().BeFalse();
    }

    [Fact]
    public void A_tool_that_is_not_on_path_is_a_named_error()
    {
        var task = Task("forgetless-that-is-not-installed");

        task.Execute().Should().BeFalse();

        engine.Errors.Should().ContainSingle().Which.Code.Should().Be("FL2004");
    }

    [Fact]
    public void A_line_that_is_not_json_is_a_warning_that_names_it()
    {
        var task = Task(FakeTool("not json\n{\"severity\":\"info\",\"code\":\"FL0000\",\"message\":\"done\",\"exit_code\":0}", exit: 0));

        task.Execute().Should().BeTrue();

        var warning = engine.Warnings.Should().ContainSingle().Subject;
        (warning.Code, warning.File, warning.LineNumber).Should().Be(("FL9001", Diagnostics, 1));
    }
}
