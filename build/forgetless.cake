// Running the built forgetless executable. Tasks run it directly instead of `dotnet run`, so the solution
// is built once per invocation (the Build task), not once per stage.

// Runs `forgetless VERB` with the pipeline file and overrides; a non-zero exit fails the task with a
// CakeException carrying forgetless's own code, which build.cake makes the build's exit code.
void Forgetless(BuildParameters p, string verb, IEnumerable<string> extra = null, bool forceable = false)
{
    var args = new ProcessArgumentBuilder().Append(p.ForgetlessDll).Append(verb);
    foreach (var a in p.PipelineArguments()) args.AppendQuoted(a);
    foreach (var a in extra ?? new string[0]) args.AppendQuoted(a);
    if (forceable && p.Force) args.Append("--force");
    int code = StartProcess("dotnet", new ProcessSettings { Arguments = args });
    if (code != 0) throw new CakeException(code, $"forgetless {verb} exited with code {code}");
}

// The pipeline's stages in order, as `forgetless stages` reports them: (name, summary) pairs.
// Cake needs its tasks before RunTarget, so this runs while the script is being defined, before the
// Build task. An executable that is missing (a fresh clone) or cannot list its stages (built before the
// verb existed) is built here first; one older than the sources lists the stages it was built with
// until the Build task has run.
IReadOnlyList<(string Name, string Summary)> PipelineStages(BuildParameters p)
{
    IEnumerable<string> output = new string[0], errors = new string[0];
    int ListStages() => !FileExists(p.ForgetlessDll) ? -1 : StartProcess("dotnet", new ProcessSettings
    {
        Arguments = new ProcessArgumentBuilder().Append(p.ForgetlessDll).Append("stages"),
        RedirectStandardOutput = true,
        RedirectStandardError = true,
    }, out output, out errors);
    if (ListStages() != 0)
    {
        Information("Building the forgetless executable to read its stage list");
        DotNetBuild("./stages/Forgetless.Stages.csproj", new DotNetBuildSettings { Configuration = p.Configuration, NoLogo = true });
        int code = ListStages();
        if (code != 0) throw new CakeException(code, $"forgetless stages exited with code {code}: {string.Join(" ", errors)}");
    }
    return output.Where(l => l.Length > 0).Select(l => l.Split('\t', 2)).Select(f => (f[0], f.Length > 1 ? f[1] : "")).ToList();
}
