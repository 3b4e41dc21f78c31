using System.Text.Json;
using Forgetless.Evaluation;

namespace Forgetless.Stages.Diagnostics;

/// <summary>
/// What the diagnostics take from the evaluate stage's results.json: one error per failed release gate (its
/// <c>gates</c> list is in the order of <c>evaluate.gates</c>, so each is placed at its gate in the pipeline file),
/// and the adapter folder that was judged (<c>config.adapter</c>).
/// </summary>
public sealed class EvaluateResults
{
    private readonly JsonElement root;

    private EvaluateResults(JsonElement root) => this.root = root;

    /// <summary>The results in <paramref name="evaluateDirectory"/>; null when there are none or they cannot be read.</summary>
    public static EvaluateResults? Read(string evaluateDirectory)
    {
        string path = Path.Combine(evaluateDirectory, EvaluationReports.ResultsFile);
        if (!File.Exists(path)) return null;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            return document.RootElement.ValueKind == JsonValueKind.Object ? new EvaluateResults(document.RootElement.Clone()) : null;
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            return null;
        }
    }

    public string? Adapter =>
        root.TryGetProperty("config", out var config) && config.ValueKind == JsonValueKind.Object &&
        config.TryGetProperty("adapter", out var adapter) && adapter.ValueKind == JsonValueKind.String
            ? adapter.GetString()
            : null;

    public IReadOnlyList<Diagnostic> FailedGates(PipelineFileLocations? pipeline)
    {
        if (!root.TryGetProperty("gates", out var gates) || gates.ValueKind != JsonValueKind.Array) return [];
        var failed = new List<Diagnostic>();
        int index = 0;
        foreach (var gate in gates.EnumerateArray())
        {
            if (gate.TryGetProperty("passed", out var passed) && passed.ValueKind == JsonValueKind.False)
            {
                string name = Text(gate, "name") ?? $"evaluate.gates[{index}]";
                var at = pipeline?.Of($"evaluate.gates[{index}]") ?? (pipeline is null ? null : new SourceLocation(pipeline.File));
                failed.Add(new Diagnostic(DiagnosticSeverity.Error, DiagnosticCodes.GateFailed, $"release gate '{name}' failed: {Text(gate, "message")}")
                    .At(at) with { Subject = name });
            }
            index++;
        }
        return failed;
    }

    private static string? Text(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
