using Forgetless.Stages;
using Forgetless.Stages.Verbs;

namespace Forgetless.Tests.Stages;

public sealed class StagesVerbTests
{
    [Fact]
    public void Lists_every_registered_stage_in_pipeline_order_as_name_tab_summary()
    {
        var fields = StagesVerb.Lines().Select(l => l.Split('\t')).ToList();

        // build/stages.cake splits each line at its first tab: a second tab or a line break would shift or cut a target.
        fields.Should().AllSatisfy(f => f.Should().HaveCount(2));
        fields.Should().AllSatisfy(f => string.Concat(f).Should().NotContainAny("\n", "\r"));
        fields.Select(f => f[0]).Should().Equal(StageRegistry.All.Select(e => e.Name));
        fields.Select(f => f[0]).Should().StartWith(["prepare", "finetune"]).And.EndWith("package");
    }

    [Fact]
    public async Task Runs_as_a_verb_of_the_executable_without_a_pipeline_file()
    {
        VerbCatalog.All.Should().ContainSingle(v => v.Name == "stages");
        (await ForgetlessApp.RunAsync(["stages"])).Should().Be(0);
        (await ForgetlessApp.RunAsync(["stages", "--force"])).Should().Be(2, "it takes no options");
    }
}
