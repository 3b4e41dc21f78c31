using Forgetless.Configuration;
using Forgetless.Data;
using Forgetless.Stages.Cli;

namespace Forgetless.Stages.Diagnostics;

/// <summary>
/// What an exception becomes in the diagnostics file: a code by the kind of mistake (the same split that decides
/// the exit code), and the file and line it concerns — a data file's line, or the key of the pipeline file that
/// the message names.
/// </summary>
public static class FailureDiagnostics
{
    public static IEnumerable<Diagnostic> Of(Exception e, string? what, PipelineFileLocations? pipeline)
    {
        string Prefixed(string message) => what is null ? message : $"{what}: {message}";
        switch (e)
        {
            case UsageException:
                yield return new Diagnostic(DiagnosticSeverity.Error, DiagnosticCodes.Usage, e.Message);
                break;
            case ConfigException:
                // The loader joins one line per problem; each gets its own diagnostic and location.
                foreach (string line in e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    yield return new Diagnostic(DiagnosticSeverity.Error, DiagnosticCodes.Configuration, WithoutFilePrefix(line, pipeline))
                        .At(InPipelineFile(line, pipeline));
                break;
            case DataFormatException data:
                yield return new Diagnostic(DiagnosticSeverity.Error, DiagnosticCodes.Data, Prefixed(data.Problem))
                    .At(new SourceLocation(Path.GetFullPath(data.File), data.Line is { } l ? (int)Math.Min(l, int.MaxValue) : null));
                break;
            case FileNotFoundException missing when missing.FileName is { Length: > 0 } file:
                yield return new Diagnostic(DiagnosticSeverity.Error, DiagnosticCodes.MissingInput, Prefixed(e.Message))
                    .At(pipeline?.Find(e.Message) ?? new SourceLocation(Path.GetFullPath(file)));
                break;
            case FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException:
                yield return new Diagnostic(DiagnosticSeverity.Error, DiagnosticCodes.MissingInput, Prefixed(e.Message)).At(pipeline?.Find(e.Message));
                break;
            case UserInputException:
                yield return new Diagnostic(DiagnosticSeverity.Error, DiagnosticCodes.Input, Prefixed(e.Message)).At(pipeline?.Find(e.Message));
                break;
            default:
                yield return new Diagnostic(DiagnosticSeverity.Error, DiagnosticCodes.Internal, Prefixed($"{e.GetType().Name}: {e.Message} (--verbose shows where)"));
                break;
        }
    }

    /// <summary>A configuration problem is in the pipeline file: at the key it names, at a JSON syntax error, or at the file.</summary>
    private static SourceLocation? InPipelineFile(string message, PipelineFileLocations? pipeline) =>
        pipeline is null ? null : pipeline.Find(message) ?? pipeline.SyntaxError ?? new SourceLocation(pipeline.File);

    /// <summary>"forgetless.json:4: unknown key ..." → "unknown key ...": the file and line are the diagnostic's own fields.</summary>
    private static string WithoutFilePrefix(string line, PipelineFileLocations? pipeline)
    {
        if (pipeline is null) return line;
        var prefix = System.Text.RegularExpressions.Regex.Match(line, "^" + System.Text.RegularExpressions.Regex.Escape(Path.GetFileName(pipeline.File)) + @"(?::\d+)*: ");
        return prefix.Success ? line[prefix.Length..] : line;
    }
}
