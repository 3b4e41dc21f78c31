using System.Text.Json;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace Forgetless.Sdk;

/// <summary>
/// The diagnostics file of one forgetless invocation (<c>forgetless VERB --diagnostics FILE</c>: JSON lines with
/// snake_case keys) logged as what each line is to MSBuild: an error or a warning with its code (FL1001, ...) and the
/// file, line and column it concerns — so IDEs, binary logs (-bl) and CI annotations place it — and the closing
/// summary line as a message. Its fields are also kept for the targets: the run root, which stages ran, which were
/// up to date, the adapter that was evaluated.
/// </summary>
internal sealed class DiagnosticsReport
{
    public string RunRoot { get; private set; } = "";
    public string[] Ran { get; private set; } = [];
    public string[] UpToDate { get; private set; } = [];
    public string Adapter { get; private set; } = "";

    /// <summary>Logs every line of <paramref name="file"/>; true when one of them was an error.</summary>
    public bool Log(string file, TaskLoggingHelper log, string command)
    {
        bool errors = false;
        if (!File.Exists(file)) return false;
        int number = 0;
        foreach (string line in File.ReadLines(file))
        {
            number++;
            if (line.Trim().Length == 0) continue;
            try
            {
                using var document = JsonDocument.Parse(line);
                errors |= Log(document.RootElement, log, command);
            }
            catch (JsonException e)
            {
                log.LogWarning(null, "FL9001", null, file, number, 0, 0, 0, $"not a forgetless diagnostic (a JSON object was expected): {e.Message}");
            }
        }
        return errors;
    }

    private bool Log(JsonElement d, TaskLoggingHelper log, string command)
    {
        string code = Text(d, "code") ?? "";
        string message = Text(d, "message") ?? "";
        string? file = Text(d, "file");
        int line = Number(d, "line"), column = Number(d, "column");
        switch (Text(d, "severity"))
        {
            case "error":
                log.LogError(null, code, null, file, line, column, 0, 0, message);
                return true;
            case "warning":
                log.LogWarning(null, code, null, file, line, column, 0, 0, message);
                return false;
            default:
                if (d.TryGetProperty("exit_code", out _))
                {
                    RunRoot = Text(d, "run_root") ?? "";
                    Ran = Names(d, "ran");
                    UpToDate = Names(d, "up_to_date");
                    Adapter = Text(d, "adapter") ?? "";
                }
                log.LogMessage(MessageImportance.High, "{0}: {1}", command, message);
                return false;
        }
    }

    private static string? Text(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static int Number(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) ? n : 0;

    private static string[] Names(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array
            ? v.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()!).ToArray()
            : [];
}
