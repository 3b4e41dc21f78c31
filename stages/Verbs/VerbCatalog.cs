namespace Forgetless.Stages.Verbs;

/// <summary>Every verb of the forgetless executable, in the order `forgetless help` lists them.</summary>
public static class VerbCatalog
{
    public static IReadOnlyList<Verb> All { get; } =
    [
        .. StageVerbs.All(),
        StatusVerb.Definition,
        StagesVerb.Definition,
        CleanVerb.Definition,
        InitVerb.Definition,
        CorporaVerb.Definition,
        Pretrain.PretrainVerb.Definition,
        ScoreVerb.Definition,
        GenerateVerb.Definition,
        FineTune.BenchVerb.Definition,
        Synthesize.SynthesizeModelVerb.Definition,
        VerifyVerb.Definition,
        Doctor.DoctorVerb.Definition,
        Package.CompareVerb.Definition,
        Continual.ContinualVerb.Definition,
        Study.StudyVerb.Definition,
    ];

    public static string Help()
    {
        var lines = new List<string>
        {
            "forgetless — fine-tune language models without forgetting: a staged, gated, reproducible pipeline.",
            "",
            "usage: forgetless VERB [options]",
            "",
        };
        lines.AddRange(All.Select(v => $"  {v.Name,-10} {v.Summary}\n  {"",-10}   {v.Usage}"));
        lines.Add("");
        lines.Add("Common options: --config FILE (default forgetless.json), --set section.key=value (repeatable; [a,b] is a list");
        lines.Add("and replaces the file's, [] empties it), environment FORGETLESS_section__key=value, --verbose (stack traces),");
        lines.Add("--diagnostics FILE (every error and warning as JSON lines with a code and the file and line it concerns).");
        lines.Add("Verbs that write hold the run root's lock; a second writer stops, or waits with --wait.");
        lines.Add("Exit codes: 0 done or up to date, 1 error, 2 usage or configuration error, 3 stale (status --check),");
        lines.Add("4 a release gate failed (or the adapter is not the one the gates judged), 130 cancelled.");
        return string.Join('\n', lines);
    }
}
