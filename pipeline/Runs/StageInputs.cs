namespace Forgetless.Runs;

/// <summary>
/// The declared inputs of a stage. Each entry has a name (shown by <c>status</c> when it changed)
/// and is hashed by content, like DVC's deps and params.
/// </summary>
public sealed class StageInputs
{
    private readonly List<StageInput> entries = [];

    public IReadOnlyList<StageInput> Entries => entries;

    /// <summary>A single file, hashed by content.</summary>
    public StageInputs File(string name, string path) => Add(new StageInput(name, StageInputKind.File, Path.GetFullPath(path)));

    /// <summary>Every file under a folder, hashed by relative path and content.</summary>
    public StageInputs Directory(string name, string path) => Add(new StageInput(name, StageInputKind.Directory, Path.GetFullPath(path)));

    /// <summary>A value such as the stage's config section serialised as JSON.</summary>
    public StageInputs Value(string name, string value) => Add(new StageInput(name, StageInputKind.Value, value));

    /// <summary>A value that counts only when it differs from <paramref name="usual"/> (a key added later, whose usual value must not make earlier runs stale).</summary>
    public StageInputs ValueUnless(string name, string value, string usual) => value == usual ? this : Value(name, value);

    /// <summary>The outputs of another stage; its manifest's fingerprint stands for them.</summary>
    public StageInputs Upstream(string stageName) => Add(new StageInput("stage:" + stageName, StageInputKind.Upstream, stageName));

    private StageInputs Add(StageInput input)
    {
        if (entries.Any(e => e.Name == input.Name))
            throw new InvalidOperationException($"Stage input '{input.Name}' is declared twice.");
        entries.Add(input);
        return this;
    }
}

public enum StageInputKind { File, Directory, Value, Upstream }

public sealed record StageInput(string Name, StageInputKind Kind, string Source);
