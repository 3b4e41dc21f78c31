// Every knob of the Cake command line, read once (Setup in build.cake) and handed to each task as
// Does<BuildParameters>((context, p) => ...). Pipeline knobs pass through to forgetless, e.g.
//   dotnet cake --target=FineTune --method=qlora --device=cpu --force --set=finetune.lora.r=16
public sealed class BuildParameters
{
    public string Configuration { get; private init; }
    /// <summary>--config: the pipeline file.</summary>
    public string PipelineFile { get; private init; }
    /// <summary>--force: rerun the target's stage even when it is up to date.</summary>
    public bool Force { get; private init; }
    /// <summary>--method: shortcut for --set=finetune.method=...</summary>
    public string Method { get; private init; }
    /// <summary>--device: shortcut for --set=run.device=...</summary>
    public string Device { get; private init; }
    /// <summary>--set=section.key=value, repeatable.</summary>
    public IReadOnlyList<string> Settings { get; private init; }
    /// <summary>--adapter (Evaluate): evaluate this adapter folder instead of the pipeline's.</summary>
    public string Adapter { get; private init; }
    /// <summary>--check (Status): fail with exit 3 when a stage is not up to date.</summary>
    public bool Check { get; private init; }
    /// <summary>--steps (Benchmark): timed steps per method.</summary>
    public int BenchmarkSteps { get; private init; }
    /// <summary>--rebuild-root and --reference (Rebuild).</summary>
    public string RebuildRoot { get; private init; }
    public string Reference { get; private init; }
    /// <summary>--strategy=NAME (Continual), repeatable: run only these strategies.</summary>
    public IReadOnlyList<string> Strategies { get; private init; }
    /// <summary>--torch-backend (Pack): cpu or cuda, the libtorch the tool package carries (build/TorchBackend.props).</summary>
    public string TorchBackend { get; private init; }

    public string Solution => "./Forgetless.sln";
    public string ForgetlessDll => $"./stages/bin/{Configuration}/net10.0/forgetless.dll";

    public static BuildParameters From(ICakeContext context) => new BuildParameters
    {
        Configuration = context.Argument("configuration", "Release"),
        PipelineFile = context.Argument("config", "forgetless.json"),
        Force = context.HasArgument("force"),
        Method = context.Argument<string>("method", null),
        Device = context.Argument<string>("device", null),
        Settings = context.Arguments<string>("set", new string[0]).ToList(),
        Adapter = context.Argument<string>("adapter", null),
        Check = context.HasArgument("check"),
        BenchmarkSteps = context.Argument("steps", 6),
        RebuildRoot = context.Argument("rebuild-root", "artifacts/rebuild"),
        Reference = context.Argument("reference", "runs/package"),
        Strategies = context.Arguments<string>("strategy", new string[0]).ToList(),
        TorchBackend = context.Argument("torch-backend", "cpu"),
    };

    /// <summary>The pipeline file and every override (the shortcuts, then each --set), as forgetless arguments.</summary>
    public IEnumerable<string> PipelineArguments()
    {
        yield return "--config";
        yield return PipelineFile;
        if (Method != null) { yield return "--set"; yield return "finetune.method=" + Method; }
        if (Device != null) { yield return "--set"; yield return "run.device=" + Device; }
        foreach (var s in Settings) { yield return "--set"; yield return s; }
    }
}
