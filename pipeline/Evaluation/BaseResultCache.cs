using System.Text.Json;
using System.Text.Json.Nodes;
using Forgetless.Runs;

namespace Forgetless.Evaluation;

/// <summary>
/// Item-level scores of the base model, kept under the run root's <c>.cache/evaluate/</c> so that a
/// new candidate is compared without rescoring the base. The key covers everything the scores depend
/// on: the base model's fingerprint, the suite file's bytes, the suite options and the scoring code's
/// version. Item scores (not metrics) are kept because the paired bootstrap needs them.
/// </summary>
public sealed class BaseResultCache(string directory)
{
    /// <summary>Bump when scoring changes meaning (tokenisation, windows, metric inputs).</summary>
    public const int ScoringVersion = 5; // 3: fused attention (float rounding differs from the hand-written path); 4: shared contexts cut as lm-eval cuts each pair, batched scoring and generation; 5: a trunk shorter than its branch is not shared (a text's first rolling window is a plain row again)

    public string Directory { get; } = directory;

    public static string Key(string baseFingerprint, string suiteFileHash, SuiteOptions suite, string device) =>
        FileHashes.Of(string.Join('\n', "scoring " + ScoringVersion, "base " + baseFingerprint, "suite-file " + suiteFileHash,
            "suite " + JsonSerializer.Serialize(suite, EvaluateOptions.Json), "device " + device));

    private string PathOf(string key) => System.IO.Path.Combine(Directory, key + ".json");

    public SuiteResult? TryLoad(string key, SuiteOptions suite)
    {
        string path = PathOf(key);
        if (!File.Exists(path)) return null;
        try
        {
            var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            var items = root["items"]!.AsArray().Select(n =>
            {
                var o = n!.AsObject();
                var values = o["v"]!.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<double>(), StringComparer.Ordinal);
                return new ItemScore(o["c"]?.GetValue<string>(), values) { Output = o["o"]?.GetValue<string>() };
            }).ToList();
            return new SuiteResult(suite.Name, suite.Type, suite.Role, items, SuiteRunner.MetricsFor(suite.Type, items));
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or FormatException)
        {
            return null; // a damaged cache entry only costs a rescore
        }
    }

    public void Save(string key, SuiteResult result)
    {
        var items = new JsonArray();
        foreach (var item in result.Items)
        {
            var values = new JsonObject();
            foreach (var (k, v) in item.Values) values[k] = v;
            var o = new JsonObject { ["c"] = item.Category, ["v"] = values };
            if (item.Output is not null) o["o"] = item.Output;
            items.Add(o);
        }
        var root = new JsonObject { ["suite"] = result.Suite, ["scoringVersion"] = ScoringVersion, ["items"] = items };
        System.IO.Directory.CreateDirectory(Directory);
        AtomicFile.WriteAllText(PathOf(key), root.ToJsonString());
    }
}
