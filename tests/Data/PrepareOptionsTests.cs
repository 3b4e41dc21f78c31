using Forgetless.Data;

namespace Forgetless.Tests.Data;

public sealed class PrepareOptionsTests
{
    [Fact]
    public void Validate_names_key_value_and_what_is_allowed()
    {
        var options = new PrepareOptions
        {
            TaskSources = [new DataSourceOptions { Path = "t.jsonl", PromptField = "p", Weight = -1 }],
            ReplaySources = [],
            ReplayShare = 1.5,
            SeqLen = 2,
            ValidationFraction = 1,
            Decontaminate = new DecontaminationOptions { Ngram = 2 },
        };

        var errors = options.Validate();

        errors.Should().Contain("replayShare: 1.5 is not allowed; expected a fraction in [0, 1), e.g. 0.25.");
        errors.Should().Contain("seqLen: 2 is not allowed; expected 8 to 1048576.");
        errors.Should().Contain("taskSources[0].weight: -1 is not allowed; expected a positive number up to 1000.");
        errors.Should().Contain(e => e.StartsWith("taskSources[0]: promptField 'p' and responseField '' must be given together"));
        errors.Should().Contain(e => e.StartsWith("validationFraction: 1 is not allowed"));
        errors.Should().Contain(e => e.StartsWith("decontaminate.ngram: 2 is not allowed"));
        new PrepareOptions { TaskSources = [new DataSourceOptions { Path = "a.txt" }], ReplayShare = 0 }.Validate().Should().BeEmpty();
        new PrepareOptions { TaskSources = [new DataSourceOptions { Path = "a.txt" }] }.Validate()
            .Should().Equal("replayShare: 0.25 needs replay data; add replaySources or enable generatedReplay.");
    }

    [Fact]
    public void Json_uses_camel_case_names_and_enum_names()
    {
        var json = new PrepareOptions { Packing = PackingMode.Pad, ReplaySources = [new DataSourceOptions { Path = "x", Format = SourceFormat.PreparedDataset }] }.ToJson();

        json.Should().Contain("\"replayShare\":0.25").And.Contain("\"packing\":\"pad\"").And.Contain("\"format\":\"preparedDataset\"")
            .And.Contain("\"onBadRow\":\"fail\"").And.Contain("\"overLength\":\"truncate\"").And.Contain("\"seqLen\":512");
        PrepareOptions.FromJson(json).ToJson().Should().Be(json);
    }
}
