using System.Text.Json;
using Forgetless.Stages;
using Forgetless.Tests.Corpora;

namespace Forgetless.Tests.Diagnostics;

/// <summary>`forgetless VERB --diagnostics FILE`, run in-process: what the file says for each kind of outcome.</summary>
public sealed class ExecutableDiagnosticsTests : IDisposable
{
    private readonly TempDirectory dir = new();

    public void Dispose() => dir.Dispose();

    private string DiagnosticsPath => Path.Combine(dir.Path, "obj", "diagnostics.jsonl");

    private async Task<(int Exit, List<JsonElement> Lines)> Run(params string[] args)
    {
        int exit = await ForgetlessApp.RunAsync([.. args, "--diagnostics", DiagnosticsPath]);
        var lines = File.ReadAllLines(DiagnosticsPath).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        return (exit, lines);
    }

    private static string? Text(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v.GetString() : null;

    private static int? Number(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v.GetInt32() : null;

    private static string[] Names(JsonElement e, string name) => e.GetProperty(name).EnumerateArray().Select(x => x.GetString()!).ToArray();

    /// <summary>A prepare-only pipeline on a few rows of a made-up task, tokenized by the committed base model's tokenizer.</summary>
    private string PreparePipeline(string taskRows)
    {
        dir.File("task.jsonl", taskRows);
        string baseModel = Path.Combine(RepoData.Root, "data", "models", "forgetless-base").Replace("\\", "/");
        return dir.File("forgetless.json", $$"""
            {
              "run": { "root": "runs", "baseModel": "{{baseModel}}" },
              "prepare": {
                "taskSources": [ { "path": "task.jsonl", "promptField": "prompt", "responseField": "response" } ],
                "replayShare": 0,
                "seqLen": 64,
                "validationFraction": 0
              }
            }
            """);
    }

    private static string Rows(int count) => string.Concat(Enumerable.Range(0, count).Select(i => $$"""{"prompt": "Spell {{i}}:", "response": " {{i}} {{i + 1}}"}""" + "\n"));

    [Fact]
    public async Task A_stage_that_ran_and_then_one_that_was_up_to_date_are_told_apart_in_the_summary()
    {
        string config = PreparePipeline(Rows(40));

        var (exit, lines) = await Run("prepare", "--config", config);
        exit.Should().Be(0);
        var summary = lines.Should().ContainSingle().Subject;
        (Text(summary, "severity"), Text(summary, "code"), Number(summary, "exit_code")).Should().Be(("info", "FL0000", 0));
        Names(summary, "ran").Should().Equal("prepare");
        Names(summary, "up_to_date").Should().BeEmpty();
        Text(summary, "run_root").Should().Be(Path.Combine(dir.Path, "runs"));
        Text(summary, "message").Should().Be("ran prepare");

        (exit, lines) = await Run("prepare", "--config", config);
        exit.Should().Be(0);
        summary = lines.Should().ContainSingle().Subject;
        Names(summary, "ran").Should().BeEmpty();
        Names(summary, "up_to_date").Should().Equal("prepare");
        Text(summary, "message").Should().Be("nothing to do: prepare up to date");
    }

    [Fact]
    public async Task A_bad_data_row_is_an_error_at_its_file_and_line()
    {
        string config = PreparePipeline(Rows(3) + "{\"prompt\": \"Spell 3:\", \"respo\n" + Rows(2));

        var (exit, lines) = await Run("prepare", "--config", config);

        exit.Should().Be(1);
        var error = lines[0];
        (Text(error, "severity"), Text(error, "code")).Should().Be(("error", "FL3001"));
        (Text(error, "file"), Number(error, "line")).Should().Be((Path.Combine(dir.Path, "task.jsonl"), 4));
        Text(error, "message").Should().StartWith("prepare: ");
        Number(lines[^1], "exit_code").Should().Be(1);
        lines.Should().HaveCount(2);
    }

    [Fact]
    public async Task A_configuration_error_is_placed_at_the_key_in_the_pipeline_file()
    {
        string config = dir.File("forgetless.json", "{\n  \"run\": {\n    \"root\": \"runs\",\n    \"sede\": 4\n  }\n}\n");

        var (exit, lines) = await Run("status", "--config", config);

        exit.Should().Be(2);
        lines.Should().HaveCount(2);
        var error = lines[0];
        (Text(error, "code"), Text(error, "file"), Number(error, "line"), Number(error, "column")).Should().Be(("FL2001", config, 4, 5));
        Text(error, "message").Should().Be("unknown key 'run.sede' — did you mean 'run.seed'?");
        Text(error, "subject").Should().Be("run.sede");
    }

    [Fact]
    public async Task A_value_set_twice_on_the_command_line_takes_the_later_one()
    {
        string config = PreparePipeline(Rows(5));

        var (exit, lines) = await Run("status", "--config", config, "--set", "run.device=gpu", "--set", "run.device=cpu");
        exit.Should().Be(0, string.Join("\n", lines));

        (exit, lines) = await Run("status", "--config", config, "--set", "run.device=cpu", "--set", "run.device=gpu");
        exit.Should().Be(2);
        Text(lines[0], "message").Should().Contain("'gpu' is not valid");
    }

    [Fact]
    public async Task A_command_line_mistake_is_a_usage_error_without_a_file()
    {
        var (exit, lines) = await Run("stages", "--frobnicate");

        exit.Should().Be(2);
        Text(lines[0], "code").Should().Be("FL2002");
        Text(lines[0], "message").Should().Contain("--frobnicate");
        lines[0].TryGetProperty("file", out _).Should().BeFalse();
    }

    [Fact]
    public async Task A_stale_pipeline_under_status_check_is_explained_by_its_exit_code()
    {
        string config = PreparePipeline(Rows(5));

        var (exit, lines) = await Run("status", "--check", "--config", config);

        exit.Should().Be(3);
        lines.Select(l => Text(l, "code")).Should().Equal("FL4001", "FL0000");
        Text(lines[1], "message").Should().Be("failed (exit code 3)");
    }
}
