using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace Forgetless.Sdk;

/// <summary>
/// Runs <c>forgetless VERB --config FILE --diagnostics FILE [--set KEY=VALUE]...</c> and reports what it found as
/// MSBuild diagnostics (<see cref="DiagnosticsReport"/>). Its console output is passed on as plain messages, never
/// read as errors: the diagnostics file is the one place errors come from, each with its code and location. Fails
/// when an error was reported, or when forgetless exited non-zero without saying why. Cancelling the build (Ctrl+C)
/// stops forgetless, which publishes nothing half-written and keeps its checkpoints.
/// </summary>
public sealed class RunForgetless : ToolTask
{
    /// <summary>The program: the tool's path, <c>dotnet</c> (with <see cref="LeadingArguments"/> <c>tool run forgetless</c>) or a name on PATH.</summary>
    [Required]
    public string Executable { get; set; } = "";

    public string[] LeadingArguments { get; set; } = [];

    [Required]
    public string Verb { get; set; } = "";

    [Required]
    public string PipelineFile { get; set; } = "";

    [Required]
    public string DiagnosticsFile { get; set; } = "";

    /// <summary><c>section.key=value</c> overrides, passed as <c>--set</c>.</summary>
    public ITaskItem[] Settings { get; set; } = [];

    public string[] VerbArguments { get; set; } = [];

    /// <summary>Where forgetless runs (the project's folder).</summary>
    public string WorkingDirectory { get; set; } = "";

    /// <summary>The name forgetless's messages are prefixed with (the project's name).</summary>
    public string Project { get; set; } = "";

    [Output]
    public string RunRoot { get; private set; } = "";

    [Output]
    public string[] Ran { get; private set; } = [];

    [Output]
    public string[] UpToDate { get; private set; } = [];

    /// <summary>The adapter folder the evaluate stage judged (when it was part of this invocation).</summary>
    [Output]
    public string Adapter { get; private set; } = "";

    protected override string ToolName => "forgetless";

    protected override MessageImportance StandardOutputLoggingImportance => MessageImportance.Normal;

    protected override MessageImportance StandardErrorLoggingImportance => MessageImportance.Normal;

    private string Described => (Project.Length > 0 ? Project + ": " : "") + "forgetless " + Verb;

    public override bool Execute()
    {
        if (File.Exists(DiagnosticsFile)) File.Delete(DiagnosticsFile);
        base.Execute();
        var report = new DiagnosticsReport();
        bool explained = report.Log(DiagnosticsFile, Log, Described);
        (RunRoot, Ran, UpToDate, Adapter) = (report.RunRoot, report.Ran, report.UpToDate, report.Adapter);
        if (ExitCode != 0 && !explained)
            Log.LogError(null, "FL5001", null, null, 0, 0, 0, 0,
                $"{Described} exited with code {ExitCode} without a diagnostic that says why; its output is in the build log (-v:n)");
        return !Log.HasLoggedErrors;
    }

    protected override string GenerateFullPathToTool()
    {
        if (Path.IsPathRooted(Executable)) return Executable;
        // A bare name (forgetless as a global tool, or dotnet): look it up on PATH as a shell would.
        foreach (string folder in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(folder, Executable);
            if (File.Exists(candidate)) return candidate;
            if (OperatingSystem.IsWindows() && File.Exists(candidate + ".exe")) return candidate + ".exe";
        }
        return Executable;
    }

    protected override string? GetWorkingDirectory() => WorkingDirectory.Length > 0 ? WorkingDirectory : null;

    protected override bool ValidateParameters()
    {
        string tool = GenerateFullPathToTool();
        if (File.Exists(tool)) return true;
        Log.LogError(null, "FL2004", null, null, 0, 0, 0, 0,
            (Path.IsPathRooted(Executable) ? $"{Executable} does not exist" : $"'{Executable}' is not on PATH") + $": {NotFound}");
        return false;
    }

    private const string NotFound = "install the forgetless tool (dotnet tool install forgetless), add it to the repository's tool manifest, or set ForgetlessToolPath";

    protected override string GenerateCommandLineCommands()
    {
        var line = new CommandLineBuilder(quoteHyphensOnCommandLine: false, useNewLineSeparator: false);
        foreach (string a in LeadingArguments) line.AppendTextUnquoted(" " + a);
        line.AppendTextUnquoted(" " + Verb);
        line.AppendSwitchIfNotNull("--config ", PipelineFile);
        line.AppendSwitchIfNotNull("--diagnostics ", DiagnosticsFile);
        foreach (var setting in Settings) line.AppendSwitchIfNotNull("--set ", setting.ItemSpec);
        foreach (string a in VerbArguments) line.AppendFileNameIfNotNull(a);
        return line.ToString().Trim();
    }

    /// <summary>forgetless's output is logged as written; a line that looks like "file(1): error X" stays a message.</summary>
    protected override void LogEventsFromTextOutput(string singleLine, MessageImportance messageImportance) =>
        Log.LogMessage(messageImportance, "{0}", singleLine);

    /// <summary>The exit code is reported with the diagnostics in <see cref="Execute"/>, not as MSBuild's generic MSB6006.</summary>
    protected override bool HandleTaskExecutionErrors() => true;
}
