using Forgetless.Runs;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Forgetless.Model.Inference;

/// <summary>What <see cref="JsonlScoring.Run"/> did.</summary>
public sealed record ScoreFileSummary(int Rows, long ScoredTokens, double SumLogProb, TimeSpan Elapsed);

/// <summary>
/// JSONL in, JSONL out. Each input line is <c>{"text": ...}</c> or <c>{"context": ..., "continuation": ...}</c>
/// (other fields are kept); each output line adds <c>token_ids</c>, <c>logprobs</c>, <c>sum_logprob</c>,
/// <c>num_tokens</c> and <c>is_greedy</c>. All lines are checked before any scoring, and every bad line is
/// reported as <c>file:line: reason</c>. The output appears only when complete.
/// </summary>
public static class JsonlScoring
{
    public static ScoreFileSummary Run(Scorer scorer, string inputPath, string outputPath, CancellationToken cancellationToken = default)
    {
        var watch = Stopwatch.StartNew();
        var name = Path.GetFileName(inputPath);
        if (!File.Exists(inputPath)) throw new FileNotFoundException($"{name}: file not found ({inputPath})", inputPath);
        var rows = new List<(JsonObject Json, ScoreRequest Request)>();
        var errors = new List<string>();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(inputPath))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var (error, row) = Parse(line);
            if (error is not null) errors.Add($"{name}:{lineNumber}: {error}");
            else rows.Add(row!.Value);
        }
        if (errors.Count > 0)
            throw new InvalidDataException($"{errors.Count} bad line(s) in {name}:{Environment.NewLine}"
                + string.Join(Environment.NewLine, errors.Take(20)) + (errors.Count > 20 ? $"{Environment.NewLine}..." : ""));

        var results = scorer.Score(rows.Select(r => r.Request).ToList(), cancellationToken);
        var output = new StringBuilder();
        for (var i = 0; i < rows.Count; i++)
        {
            var o = rows[i].Json;
            var r = results[i];
            o["token_ids"] = new JsonArray(r.TokenIds.Select(t => (JsonNode)t).ToArray());
            o["logprobs"] = new JsonArray(r.LogProbs.Select(p => (JsonNode)p).ToArray());
            o["sum_logprob"] = r.SumLogProb;
            o["num_tokens"] = r.TokenCount;
            o["is_greedy"] = r.IsGreedy;
            output.Append(o.ToJsonString()).Append('\n');
        }
        AtomicFile.WriteAllText(outputPath, output.ToString());
        return new ScoreFileSummary(rows.Count, results.Sum(r => (long)r.TokenCount), results.Sum(r => r.SumLogProb), watch.Elapsed);

    }

    private static (string? Error, (JsonObject Json, ScoreRequest Request)? Row) Parse(string line)
    {
        {
            JsonNode? node;
            try
            {
                node = JsonNode.Parse(line);
            }
            catch (JsonException e)
            {
                return ($"not valid JSON ({e.Message})", null);
            }
            if (node is not JsonObject o) return ("expected a JSON object", null);
            string? Str(string key) => o[key] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;
            if (o.ContainsKey("text"))
            {
                if (Str("text") is not { } text) return ("'text' must be a string", null);
                if (o.ContainsKey("context") || o.ContainsKey("continuation")) return ("has 'text' and 'context'/'continuation'; use one form", null);
                return (null, (o, ScoreRequest.ForText(text)));
            }
            if (Str("context") is not { } context || Str("continuation") is not { } continuation)
                return ("expected {\"text\": string} or {\"context\": string, \"continuation\": string}", null);
            return (null, (o, ScoreRequest.ForContinuation(context, continuation)));
        }
    }
}
