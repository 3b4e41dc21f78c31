using Forgetless.Configuration;
using Forgetless.Stages;

namespace Forgetless.Tests;

/// <summary>A <see cref="StageContext"/> from <c>section.key=value</c> settings, rooted in a test folder.</summary>
internal static class StageContexts
{
    public static StageContext For(string baseDirectory, params string[] settings) =>
        new(PipelineConfig.FromSettings(settings, StageRegistry.Sections, baseDirectory));
}
