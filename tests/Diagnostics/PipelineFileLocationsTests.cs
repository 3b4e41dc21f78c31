using Forgetless.Stages.Diagnostics;

namespace Forgetless.Tests.Diagnostics;

public sealed class PipelineFileLocationsTests : IDisposable
{
    private readonly TempDirectory dir = new();

    public void Dispose() => dir.Dispose();

    // Lines and columns below were counted by hand from this text (1-based; a column counts characters).
    private const string Pipeline = """
        // a comment before the object
        {
          "run": { "seed": 1, "device": "gpu" },
          /* a block comment */
          "evaluate": {
            "gates": [
              { "name": "é", "suite": "s", "minGain": 0.5 },
              { "name": "b",
                "suite": "t" },
            ],
          }
        }
        """;

    private PipelineFileLocations Read(string text = Pipeline) => PipelineFileLocations.Read(dir.File("forgetless.json", text));

    [Theory]
    [InlineData("run", 3, 3)]
    [InlineData("run.seed", 3, 12)]
    [InlineData("run.device", 3, 23)]
    [InlineData("evaluate", 5, 3)]
    [InlineData("evaluate.gates", 6, 5)]
    [InlineData("evaluate.gates[0]", 7, 7)]
    [InlineData("evaluate.gates[0].minGain", 7, 36)] // after a two-byte character: columns count characters
    [InlineData("evaluate.gates.0.minGain", 7, 36)]
    [InlineData("evaluate.gates[1]", 8, 7)]
    [InlineData("evaluate.gates[1].suite", 9, 9)]
    [InlineData("EVALUATE.Gates[1].SUITE", 9, 9)]
    public void Finds_each_key_of_a_commented_file_with_trailing_commas(string key, int line, int column)
    {
        var at = Read().Of(key);

        at.Should().NotBeNull();
        (at!.Line, at.Column).Should().Be((line, column));
        at.File.Should().Be(Path.Combine(dir.Path, "forgetless.json"));
    }

    [Fact]
    public void A_key_that_is_not_in_the_file_falls_back_to_the_nearest_enclosing_one()
    {
        var locations = Read();

        locations.Of("evaluate.gates[1].metric").Should().Be(new SourceLocation(locations.File, 8, 7, "evaluate.gates[1]"));
        locations.Of("finetune.steps").Should().BeNull();
    }

    [Theory]
    [InlineData("forgetless.json: unknown key 'run.device' — did you mean 'run.seed'?", 3, 23, "run.device")]
    [InlineData("forgetless.json: 'run.device' = 'gpu' is not valid; expected one of auto | cpu | cuda", 3, 23, "run.device")]
    [InlineData("forgetless.json: evaluate.gates[1].suite: no suite named 't'", 9, 9, "evaluate.gates[1].suite")]
    [InlineData("--set evaluate.gates.0.minGain=2: must be at most 1", 7, 36, "evaluate.gates[0].minGain")]
    [InlineData("evaluate: no candidate; set evaluate.adapter", 5, 3, "evaluate")]
    [InlineData("evaluate: the report could not be written", 5, 3, "evaluate")]
    public void Places_a_message_at_the_most_specific_key_it_names(string message, int line, int column, string subject)
    {
        var at = Read().Find(message);

        at.Should().Be(new SourceLocation(Path.Combine(dir.Path, "forgetless.json"), line, column, subject));
    }

    [Theory]
    [InlineData("/data/run.seed.txt: file not found")] // a path is not a key, even when it reads like one
    [InlineData("finetune: kd is on, but the training data has no replay rows")] // no finetune section in this file
    [InlineData("version 0.1.0 of the tool")]
    public void A_message_that_names_no_key_of_the_file_has_no_place(string message) =>
        Read().Find(message).Should().BeNull();

    [Fact]
    public void A_file_that_is_not_valid_json_keeps_the_keys_before_the_mistake_and_says_where_it_is()
    {
        var locations = Read("{\n  \"run\": { \"seed\": 1 },\n  \"evaluate\": ]\n}\n");

        locations.Of("run.seed").Should().Be(new SourceLocation(locations.File, 2, 12, "run.seed"));
        (locations.SyntaxError!.Line, locations.SyntaxError.Column).Should().Be((3, 15));
    }

    [Fact]
    public void A_missing_file_has_no_locations() =>
        PipelineFileLocations.Read(Path.Combine(dir.Path, "absent.json")).Find("run.seed = 1").Should().BeNull();
}
