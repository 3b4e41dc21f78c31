using Forgetless.Configuration;

namespace Forgetless.Tests.Configuration;

public sealed class PipelineConfigTests : IDisposable
{
    private readonly TempDirectory dir = new();

    public void Dispose() => dir.Dispose();

    public enum Method { Full, Freeze, Lora }

    public sealed class LoraOptions
    {
        public int Rank { get; set; } = 8;
        public List<string> TargetModules { get; set; } = ["q_proj", "v_proj"];
    }

    public sealed class TrainOptions : IValidatableOptions
    {
        public Method Method { get; set; } = Method.Lora;
        public double LearningRate { get; set; } = 1e-3;
        public int Steps { get; set; } = 10;
        public LoraOptions Lora { get; set; } = new();

        public IEnumerable<string> Validate()
        {
            if (LearningRate <= 0) yield return $"learningRate = {LearningRate}: must be greater than 0";
        }
    }

    private static readonly Dictionary<string, Type> Sections = new()
    {
        ["run"] = typeof(RunOptions),
        ["finetune"] = typeof(TrainOptions),
    };

    private PipelineConfig Load(string json, params string[] sets) =>
        PipelineConfig.Load(dir.File("forgetless.json", json), Sections, PipelineConfig.ParseOverrides(sets), useEnvironment: false);

    private PipelineConfig LoadWithEnvironment(string json, Dictionary<string, string> environment) =>
        PipelineConfig.Load(dir.File("forgetless.json", json), Sections, environment: environment);

    [Fact]
    public void Binds_sections_with_defaults_for_missing_keys()
    {
        var config = Load("""{ "finetune": { "method": "full", "lora": { "rank": 4 } } }""");
        var options = config.Section<TrainOptions>("finetune");

        options.Method.Should().Be(Method.Full);
        options.Lora.Rank.Should().Be(4);
        options.Steps.Should().Be(10);
        config.Section<RunOptions>("run").Root.Should().Be("runs");
    }

    [Fact]
    public void A_mistyped_key_names_the_key_and_suggests_the_nearest_valid_one()
    {
        var act = () => Load("""{ "finetune": { "learningRat": 0.1, "lora": { "rnak": 4 } } }""");

        act.Should().Throw<ConfigException>()
            .Which.Message.Should().Contain("unknown key 'finetune.learningRat' — did you mean 'finetune.learningRate'?")
            .And.Contain("unknown key 'finetune.lora.rnak' — did you mean 'finetune.lora.rank'?");
    }

    [Fact]
    public void A_mistyped_section_is_reported()
    {
        var act = () => Load("""{ "fintune": { } }""");
        act.Should().Throw<ConfigException>().WithMessage("*unknown section 'fintune' — did you mean 'finetune'?*");
    }

    [Fact]
    public void A_bad_value_names_the_key_the_value_and_what_is_allowed()
    {
        var act = () => Load("""{ "finetune": { "method": "qlora2", "steps": "ten" } }""");

        var message = act.Should().Throw<ConfigException>().Which.Message;
        message.Should().Contain("'finetune.method' = 'qlora2' is not valid; expected one of full | freeze | lora");
        message.Should().Contain("'finetune.steps' = 'ten' is not valid; expected a whole number");
    }

    [Fact]
    public void Options_validation_errors_name_the_section_and_key()
    {
        var config = Load("""{ "finetune": { "learningRate": -1 } }""");
        var act = () => config.Section<TrainOptions>("finetune");
        act.Should().Throw<ConfigException>().WithMessage("forgetless.json:1: finetune.learningRate = -1: must be greater than 0");
    }

    [Fact]
    public void Invalid_json_reports_the_line()
    {
        var act = () => Load("{\n  \"finetune\": {\n    \"steps\": 10,,\n  }\n}");
        act.Should().Throw<ConfigException>().WithMessage("*forgetless.json:3:*not valid JSON*");
    }

    [Fact]
    public void Command_line_overrides_win_and_lists_can_be_given_inline()
    {
        var config = Load("""{ "finetune": { "steps": 5 } }""", "finetune.steps=7", "finetune.lora.targetModules=[q_proj,k_proj,v_proj]");
        var options = config.Section<TrainOptions>("finetune");

        options.Steps.Should().Be(7);
        options.Lora.TargetModules.Should().Equal("q_proj", "k_proj", "v_proj");
    }

    [Fact]
    public void Overrides_are_checked_like_the_file()
    {
        var act = () => Load("{}", "finetune.stpes=3");
        act.Should().Throw<ConfigException>().WithMessage("*unknown key 'finetune.stpes' — did you mean 'finetune.steps'?*");
    }

    [Fact]
    public void Environment_variables_override_the_file()
    {
        Environment.SetEnvironmentVariable("FORGETLESS_run__seed", "99");
        try
        {
            var config = PipelineConfig.Load(dir.File("forgetless.json", """{ "run": { "seed": 1 } }"""), Sections);
            config.Section<RunOptions>("run").Seed.Should().Be(99);
        }
        finally
        {
            Environment.SetEnvironmentVariable("FORGETLESS_run__seed", null);
        }
    }

    [Fact]
    public void Canonical_json_is_stable_and_uses_names_as_written_in_the_file()
    {
        var a = PipelineConfig.Canonical(new TrainOptions());
        a.Should().Be(PipelineConfig.Canonical(new TrainOptions()));
        a.Should().Contain("\"method\":\"lora\"").And.Contain("\"learningRate\":0.001");
    }

    [Fact]
    public void A_missing_file_says_where_it_was_looked_for()
    {
        var act = () => PipelineConfig.Load(Path.Combine(dir.Path, "nope.json"), Sections);
        act.Should().Throw<ConfigException>().WithMessage("*nope.json: pipeline file not found*");
    }

    // Issue 20, item 4: lists replace, never merge by index, from every source; `[]` empties.
    [Fact]
    public void A_list_given_on_the_command_line_replaces_the_file_list_instead_of_merging_by_index()
    {
        var config = Load("""{ "finetune": { "lora": { "targetModules": ["q_proj", "v_proj"] } } }""", "finetune.lora.targetModules=[o_proj]");
        config.Section<TrainOptions>("finetune").Lora.TargetModules.Should().Equal("o_proj");
    }

    [Fact]
    public void A_field_of_one_list_item_set_on_the_command_line_edits_that_item_and_keeps_the_others()
    {
        var config = PipelineConfig.Load(dir.File("forgetless.json", """
            { "evaluate": { "suites": [ { "name": "a", "type": "perplexity", "path": "a.jsonl" },
                                        { "name": "b", "type": "cloze", "path": "b.jsonl", "limit": 7 } ] } }
            """), new Dictionary<string, Type> { ["evaluate"] = typeof(Forgetless.Evaluation.EvaluateOptions) },
            PipelineConfig.ParseOverrides(["evaluate.suites.0.limit=4"]), useEnvironment: false);
        var suites = config.Section<Forgetless.Evaluation.EvaluateOptions>("evaluate").Suites;
        suites.Select(s => (s.Name, s.Limit)).Should().Equal(("a", 4), ("b", 7));
    }

    [Fact]
    public void An_empty_list_on_the_command_line_empties_the_list()
    {
        var config = Load("""{ "finetune": { "lora": { "targetModules": ["q_proj", "v_proj"] } } }""", "finetune.lora.targetModules=[]");
        config.Section<TrainOptions>("finetune").Lora.TargetModules.Should().BeEmpty();
    }

    [Fact]
    public void An_empty_list_in_the_file_empties_the_default_list()
    {
        var config = Load("""{ "finetune": { "lora": { "targetModules": [] } } }""");
        config.Section<TrainOptions>("finetune").Lora.TargetModules.Should().BeEmpty();
    }

    [Fact]
    public void The_same_key_set_twice_on_the_command_line_takes_the_later_value()
    {
        var config = Load("{}", "finetune.steps=3", "finetune.steps=4", "finetune.lora.targetModules=[a,b,c]", "finetune.lora.targetModules=[d]");
        var options = config.Section<TrainOptions>("finetune");
        options.Steps.Should().Be(4);
        options.Lora.TargetModules.Should().Equal("d");
    }

    [Fact]
    public void An_environment_list_replaces_the_file_list_and_an_unknown_environment_key_names_the_variable()
    {
        var file = """{ "finetune": { "lora": { "targetModules": ["q_proj", "v_proj"] } } }""";
        var config = LoadWithEnvironment(file, new() { ["FORGETLESS_finetune__lora__targetModules__0"] = "o_proj" });
        config.Section<TrainOptions>("finetune").Lora.TargetModules.Should().Equal("o_proj");

        var act = () => LoadWithEnvironment(file, new() { ["FORGETLESS_run__sede"] = "3" });
        act.Should().Throw<ConfigException>().Which.Message.Should()
            .StartWith("environment variable FORGETLESS_run__sede: unknown key 'run.sede'").And.NotContain("forgetless.json");
    }

    [Fact]
    public void A_key_written_twice_in_the_file_is_named_with_both_lines()
    {
        var act = () => Load("{\n  \"finetune\": {\n    \"steps\": 5,\n    \"steps\": 6\n  }\n}");
        act.Should().Throw<ConfigException>().WithMessage("forgetless.json:4: 'finetune.steps' is written twice (first on line 3)*");
    }

    [Fact]
    public void A_null_value_is_named_instead_of_read_as_zero()
    {
        var act = () => Load("{\n  \"finetune\": { \"steps\": null }\n}");
        act.Should().Throw<ConfigException>().WithMessage("forgetless.json:2: 'finetune.steps' is null*remove the key*");
    }

    [Theory]
    [InlineData("finetune.steps=99999999999", "'finetune.steps' = '99999999999' is too large; expected a whole number from -2147483648 to 2147483647")]
    [InlineData("finetune.learningRate=Infinity", "'finetune.learningRate' = 'Infinity' is not valid; expected a finite number")]
    [InlineData("finetune.learningRate=NaN", "'finetune.learningRate' = 'NaN' is not valid; expected a finite number")]
    [InlineData("finetune.learningRate=1e999", "'finetune.learningRate' = '1e999' is not valid; expected a finite number")]
    public void Out_of_range_numbers_are_named_on_loading(string setting, string expected)
    {
        var act = () => Load("{}", setting);
        act.Should().Throw<ConfigException>().WithMessage($"--set {setting}: {expected}");
    }

    [Theory]
    [InlineData("learningRat", "learningRate")]
    [InlineData("sede", "seed")]
    [InlineData("zzzzzz", null)]
    public void Nearest_name_suggests_only_close_matches(string typed, string? expected) =>
        NearestName.Find(typed, ["learningRate", "seed", "steps"]).Should().Be(expected);
}
