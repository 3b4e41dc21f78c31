using System.Text.Json;
using System.Text.Json.Serialization;

namespace Forgetless.Stages.Diagnostics;

public enum DiagnosticSeverity { Error, Warning, Info }

/// <summary>
/// One line of the diagnostics file (<c>--diagnostics FILE</c>): what went wrong (or what was done), a stable code,
/// and where — the file, line and column it concerns when there is one. MSBuild (the Forgetless SDK), IDEs and CI
/// annotations read these instead of the console's prose.
/// </summary>
public sealed record Diagnostic(DiagnosticSeverity Severity, string Code, string Message)
{
    /// <summary>Absolute path of the file the diagnostic concerns (the pipeline file, a data file).</summary>
    public string? File { get; init; }

    /// <summary>1-based line and column in <see cref="File"/>.</summary>
    public int? Line { get; init; }
    public int? Column { get; init; }

    /// <summary>What in the file it is about: a configuration key (<c>evaluate.gates[3]</c>), a stage, a gate name.</summary>
    public string? Subject { get; init; }

    /// <summary>The summary line only: the exit code, the stages that ran and those already up to date, the run store.</summary>
    public int? ExitCode { get; init; }
    public IReadOnlyList<string>? Ran { get; init; }
    public IReadOnlyList<string>? UpToDate { get; init; }
    public string? RunRoot { get; init; }
    /// <summary>The adapter folder the evaluate stage judged, when this invocation ran it or found it up to date.</summary>
    public string? Adapter { get; init; }
    public string? PipelineFile { get; init; }

    public Diagnostic At(SourceLocation? location) => location is null ? this
        : this with { File = location.File, Line = location.Line, Column = location.Column, Subject = location.Subject ?? Subject };

    /// <summary>One JSON object on one line, snake_case keys, absent fields left out.</summary>
    public string ToJsonLine() => JsonSerializer.Serialize(this, Json);

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        // Quotes and dashes as they are: the file is read by people too (the messages quote keys and values).
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };
}

/// <summary>A place in a file: what an error is about.</summary>
public sealed record SourceLocation(string File, int? Line = null, int? Column = null, string? Subject = null);
