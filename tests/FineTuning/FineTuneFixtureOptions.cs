using Forgetless.Configuration;
using Forgetless.FineTuning;

namespace Forgetless.Tests.FineTuning;

/// <summary>A <c>finetune</c> section from <c>finetune.KEY=VALUE</c> settings alone, bound and checked like a pipeline file's.</summary>
internal static class FineTuneFixtureOptions
{
    public static FineTuneOptions Parse(params string[] settings) =>
        PipelineConfig.FromSettings(settings, new Dictionary<string, Type> { ["finetune"] = typeof(FineTuneOptions) }, Path.GetTempPath())
            .Section<FineTuneOptions>("finetune");
}
