using System.Reflection;

namespace Forgetless.Stages;

public static class ToolVersion
{
    /// <summary>
    /// The version recorded in every stage manifest; a new version makes every stage stale.
    /// The informational version without the source-revision suffix, so a commit that changes
    /// no code does not invalidate every run.
    /// </summary>
    public static string Current { get; } =
        (typeof(ToolVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0")
        .Split('+')[0];
}
