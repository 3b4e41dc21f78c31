using System.Text.Json;
using AtomicFile = Forgetless.Runs.AtomicFile;

namespace Forgetless.FineTuning;

/// <summary>
/// metrics.jsonl: one JSON object per logged step (<c>step</c>, <c>tokens</c>, <c>lr</c>, <c>loss</c>,
/// <c>tokens_per_s</c>, and at evaluations <c>val_task_loss</c> and <c>heldout_loss</c>; every other training term
/// under its name, e.g. <c>ewc</c>, <c>kd</c>, <c>si</c>). Step 0 holds the losses before training.
/// </summary>
public sealed class MetricsLog(string path)
{
    public const string FileName = "metrics.jsonl";

    public string Path { get; } = path;

    /// <summary>Appends one line. A NaN or infinite number (e.g. the validation loss of a run without validation rows)
    /// has no JSON form: it is left out of the line rather than failing the run.</summary>
    public void Append(Dictionary<string, object?> entry)
    {
        var finite = entry.Where(kv => kv.Value is not (double d and (double.NaN or double.PositiveInfinity or double.NegativeInfinity)))
            .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        File.AppendAllText(Path, JsonSerializer.Serialize(finite) + "\n");
    }

    /// <summary>After a resume, lines past the checkpoint would repeat: drop them so the log reads like an uninterrupted one.</summary>
    public void TrimAfter(long step)
    {
        if (!File.Exists(Path)) return;
        var kept = File.ReadAllLines(Path).Where(line => line.Length > 0 && StepOf(line) is { } s && s <= step && !(step == 0 && s == 0)).ToList();
        AtomicFile.WriteAllText(Path, kept.Count == 0 ? "" : string.Join("\n", kept) + "\n");
    }

    /// <summary>
    /// A training stage's last act: its metrics.jsonl (the trainer writes it into the resumable work folder) copied to the
    /// outputs with an optional closing line, and the loss curve drawn from it.
    /// </summary>
    public static void Publish(Runs.StageRun run, string title, Dictionary<string, object?>? closing = null)
    {
        string published = System.IO.Path.Combine(run.OutputDirectory, FileName);
        File.Copy(System.IO.Path.Combine(run.WorkDirectory, FileName), published);
        if (closing is not null) new MetricsLog(published).Append(closing);
        LossCurve.Draw(published, System.IO.Path.Combine(run.OutputDirectory, LossCurve.FileName), title);
    }

    /// <summary>The entries as (step, key → value) for plotting.</summary>
    public static List<Dictionary<string, double>> Read(string path)
    {
        var result = new List<Dictionary<string, double>>();
        if (!File.Exists(path)) return result;
        foreach (var line in File.ReadLines(path))
        {
            if (line.Length == 0) continue;
            using var doc = JsonDocument.Parse(line);
            var entry = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var p in doc.RootElement.EnumerateObject())
                if (p.Value.ValueKind == JsonValueKind.Number) entry[p.Name] = p.Value.GetDouble();
            result.Add(entry);
        }
        return result;
    }

    private static long? StepOf(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            return doc.RootElement.GetProperty("step").GetInt64();
        }
        catch (JsonException)
        {
            return null; // a line cut off by a kill
        }
    }
}
