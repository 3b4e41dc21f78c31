using Forgetless.Runs;

namespace Forgetless.Tests.Runs;

/// <summary>A stage that copies its input file to an output, counting how often it really ran.</summary>
internal sealed class FakeStage(string name, string inputFile, string setting, string? upstream = null) : IStage
{
    public string Name => name;
    public int Runs { get; private set; }
    public Func<StageRun, CancellationToken, Task>? During { get; set; }
    public string Setting { get; set; } = setting;

    public void DeclareInputs(StageInputs inputs)
    {
        inputs.File("data", inputFile).Value("config", Setting);
        if (upstream is not null) inputs.Upstream(upstream);
    }

    public async Task<StageOutcome> RunAsync(StageRun run, CancellationToken cancellationToken)
    {
        Runs++;
        File.WriteAllText(Path.Combine(run.OutputDirectory, "out.txt"), File.ReadAllText(inputFile).ToUpperInvariant() + Setting);
        Directory.CreateDirectory(Path.Combine(run.OutputDirectory, "sub"));
        File.WriteAllText(Path.Combine(run.OutputDirectory, "sub", "part.txt"), "part");
        if (During is not null) await During(run, cancellationToken);
        return StageOutcome.Done(new Dictionary<string, object?> { ["rows"] = 3 });
    }
}
