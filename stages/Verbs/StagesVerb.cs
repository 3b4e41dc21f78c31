using Forgetless.Runs;

namespace Forgetless.Stages.Verbs;

/// <summary>
/// `forgetless stages`: every stage the executable knows, in pipeline order, one per line as
/// <c>NAME&lt;TAB&gt;SUMMARY</c>. It is for scripts: build/stages.cake defines one Cake target per line,
/// so the order lives only in <see cref="StageRegistry"/>. Stages a config turns off are listed too
/// (their target turns them on); `status` shows what a config runs.
/// </summary>
public static class StagesVerb
{
    public static Verb Definition { get; } = new(
        "stages",
        "forgetless stages",
        "list the pipeline's stages in order, one per line: NAME<TAB>SUMMARY (for scripts such as build/stages.cake)",
        Register);

    /// <summary>The lines the verb prints.</summary>
    public static IEnumerable<string> Lines() => StageRegistry.All.Select(e => e.Name + "\t" + e.Summary);

    private static void Register(VerbContext context) =>
        context.AddCommand((_, _) =>
        {
            foreach (var line in Lines()) Console.Out.WriteLine(line);
            return Task.FromResult(ExitCodes.Ok);
        });
}
