using System.Text.Json.Nodes;
using Forgetless.Runs;
using Forgetless.Tests.FineTuning;

namespace Forgetless.Tests.Cli;

/// <summary>
/// Issue 20, items 4 and 6, as a user meets them: the built forgetless executable run as a process on a tiny
/// pipeline. Every bad value gets a named error with exit 2 (usage, configuration) or 1 (data, runtime), no stack
/// trace without --verbose, and nothing overwritten or half-published.
/// </summary>
public sealed class BadInputCliTests : IDisposable
{
    private readonly FineTuneFixture f = new();

    public void Dispose() => f.Dispose();

    /// <summary>VERB args...: one torch thread, like the other tests.</summary>
    private Task<ForgetlessProcess.Result> Run(params string[] args) => ForgetlessProcess.RunAsync(f.Root, [args[0], "--set", "run.threads=1", .. args[1..]]);

    private static void ShouldBeNamedError(ForgetlessProcess.Result result, int exitCode, string message)
    {
        result.ExitCode.Should().Be(exitCode, result.ToString());
        result.Output.Should().Contain(message, result.ToString());
        result.HasStackTrace.Should().BeFalse("a clear message needs no stack trace without --verbose: " + result);
    }

    [Fact]
    public async Task An_infinite_learning_rate_is_a_configuration_error_not_a_crash()
    {
        var result = await Run("finetune", "--set", "finetune.learningRate=Infinity");
        ShouldBeNamedError(result, 2, "'finetune.learningRate' = 'Infinity' is not valid; expected a finite number");
        Directory.Exists(Path.Combine(f.RunRoot, "finetune")).Should().BeFalse();
    }

    [Fact]
    public async Task A_run_root_that_is_a_file_is_named()
    {
        var file = Path.Combine(f.Root, "not-a-folder");
        File.WriteAllText(file, "keep me");
        var result = await Run("status", "--set", "run.root=not-a-folder");
        ShouldBeNamedError(result, 2, "run.root");
        result.Output.Should().Contain("is a file");
        File.ReadAllText(file).Should().Be("keep me");
    }

    [Fact]
    public async Task Bench_names_an_unknown_model_and_a_bad_round_count_and_takes_the_pipeline_options_cake_passes()
    {
        ShouldBeNamedError(await Run("bench", "profile", "--model", "huge"), 2, "bench profile: unknown --model 'huge'; models: base 4L d256, large 8L d512");
        ShouldBeNamedError(await Run("bench", "finetune", "--rounds", "0"), 2, "--rounds '0' is not a positive whole number");
        // Cake passes --config and --set to every verb (the Benchmark target once stopped at "unknown option --config").
        var scoring = await Run("bench", "scoring", "--config", "forgetless.json");
        scoring.ExitCode.Should().Be(0, scoring.ToString());
    }

    [Fact]
    public async Task Score_refuses_to_write_its_output_over_its_input()
    {
        var input = Path.Combine(f.Root, "rows.jsonl");
        const string rows = "{\"text\": \"the cat sat\"}\n";
        File.WriteAllText(input, rows);
        var result = await Run("score", "--model", "model", "--input", "rows.jsonl", "--output", "./rows.jsonl");
        ShouldBeNamedError(result, 2, "--output");
        File.ReadAllText(input).Should().Be(rows, "the input is never overwritten");
    }

    [Fact]
    public async Task An_empty_task_file_fails_prepare_and_publishes_nothing()
    {
        File.WriteAllText(Path.Combine(f.Root, "task.jsonl"), "");
        var result = await Run("prepare");
        ShouldBeNamedError(result, 1, "task.jsonl");
        result.Output.Should().Contain("no records");
        Directory.Exists(Path.Combine(f.RunRoot, "prepare")).Should().BeFalse("an empty prepare stage is no success");
    }

    [Theory]
    [InlineData("NaN")]
    [InlineData("Infinity")]
    [InlineData("-1")]
    public async Task Generate_refuses_a_temperature_that_is_not_a_finite_number_at_least_zero(string temperature)
    {
        var result = await Run("generate", "--prompt", "spell cat is", "--max-new-tokens", "2", "--temperature", temperature);
        ShouldBeNamedError(result, 2, "--temperature");
    }

    [Theory]
    [InlineData("status", "--set", "finetune.method=bogus")]
    [InlineData("status", "--set", "finetune.steps=0")]
    [InlineData("generate", "--prompt", "x", "--top-p", "7")]
    [InlineData("generate", "--prompt", "x", "--max-new-tokens", "0")]
    [InlineData("finetune", "--set", "finetune.steps=99999999999")]
    public async Task A_bad_value_exits_2_in_every_verb(params string[] args)
    {
        var result = await Run(args);
        result.ExitCode.Should().Be(2, result.ToString());
        result.HasStackTrace.Should().BeFalse(result.ToString());
    }

    [Fact]
    public async Task The_same_set_key_twice_takes_the_later_value_instead_of_crashing()
    {
        var result = await Run("status", "--set", "run.seed=1", "--set", "run.seed=2");
        result.ExitCode.Should().Be(0, result.ToString());
    }

    [Fact]
    public async Task An_unknown_key_from_the_environment_names_the_variable()
    {
        var result = await ForgetlessProcess.RunAsync(f.Root, new Dictionary<string, string?> { ["FORGETLESS_run__sede"] = "3" }, "status");
        ShouldBeNamedError(result, 2, "environment variable FORGETLESS_run__sede: unknown key 'run.sede'");
        result.Output.Should().NotContain("forgetless.json");
    }

    [Fact]
    public async Task A_list_from_the_environment_replaces_the_file_list_in_what_is_trained()
    {
        var result = await ForgetlessProcess.RunAsync(f.Root, new Dictionary<string, string?> { ["FORGETLESS_finetune__lora__targetModules__0"] = "o_proj" },
            "finetune", "--set", "run.threads=1");
        result.ExitCode.Should().Be(0, result.ToString());
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(f.AdapterDirectory, "adapter_config.json")))!;
        config["target_modules"]!.AsArray().Select(t => t!.GetValue<string>()).Should().Equal("o_proj");
    }

    [Fact]
    public async Task A_damaged_stage_record_is_reported_by_status_not_read_as_never_run()
    {
        (await Run("prepare")).ExitCode.Should().Be(0);
        File.WriteAllText(Path.Combine(f.RunRoot, "prepare", StageManifest.FileName), "{ this is not json");
        var result = await Run("status");
        result.ExitCode.Should().Be(0, result.ToString());
        var line = result.Stdout.Split('\n').First(l => l.StartsWith("prepare", StringComparison.Ordinal));
        line.Should().NotContain("never run");
        result.Stdout.Should().Contain($"{StageManifest.FileName} is damaged");
    }

    [Fact]
    public async Task A_sequence_length_beyond_the_models_positions_is_named()
    {
        var result = await Run("prepare", "--set", "prepare.seqLen=4096");
        ShouldBeNamedError(result, 2, "prepare.seqLen = 4096");
        result.Output.Should().Contain("max_position_embeddings 128");
        Directory.Exists(Path.Combine(f.RunRoot, "prepare")).Should().BeFalse();
    }
}
