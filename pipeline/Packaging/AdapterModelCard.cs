using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Forgetless.Packaging;

/// <summary>
/// The package's README.md: a Hugging Face model card (YAML front matter that the Hub and PEFT read) with the
/// method, the data, a base-vs-candidate metrics table with intervals, the gate verdicts and the provenance.
/// Built only from the provenance record, so it is as deterministic as the manifest.
/// </summary>
public static class AdapterModelCard
{
    public static string Write(Provenance p, JsonObject adapterConfig, bool hasMerged)
    {
        var s = new StringBuilder();
        s.Append("---\n");
        s.Append("library_name: peft\n");
        s.Append("base_model: ").Append(p.BaseModelName).Append('\n');
        s.Append("pipeline_tag: text-generation\n");
        s.Append("tags:\n- forgetless\n- ").Append(p.PeftType.ToLowerInvariant().Replace('_', '-')).Append('\n');
        s.Append("---\n\n");
        s.Append("# ").Append(p.Name).Append(' ').Append(p.Version).Append("\n\n");
        s.Append("An adapter for `").Append(p.BaseModelName).Append("` fine-tuned by Forgetless and released only because every ")
         .Append("forgetting gate passed. Every file is listed in `SHA256SUMS`; `forgetless.manifest.json` records what it was built from.\n\n");

        s.Append("## Method\n\n");
        s.Append("- peft_type: `").Append(p.PeftType).Append("`\n");
        foreach (var key in new[] { "method", "r", "lora_alpha", "use_rslora", "use_dora", "target_modules", "fan_in_fan_out", "num_virtual_tokens", "bottleneck_size" })
            if (adapterConfig[key] is { } value)
                s.Append("- ").Append(key).Append(": `").Append(value.ToJsonString()).Append("`\n");
        s.Append('\n');

        s.Append("## Data\n\n");
        s.Append("- prepared data (prepare stage outputs digest): `").Append(p.PreparedData ?? "not from this pipeline").Append("`\n");
        if (p.Config["prepare"] is JsonObject prepare)
        {
            foreach (var (kind, key) in new[] { ("task", "taskSources"), ("replay", "replaySources") })
                if (prepare[key] is JsonArray sources)
                    foreach (var src in sources)
                        s.Append("- ").Append(kind).Append(": `").Append(src?["path"]?.ToString()).Append('`').Append('\n');
            if (prepare["replayShare"] is { } share) s.Append("- replay share: ").Append(share.ToJsonString()).Append('\n');
        }
        s.Append('\n');

        s.Append("## Evaluation: base vs candidate\n\n");
        s.Append("| suite | role | metric | base | candidate | difference | 95% interval |\n|---|---|---|---:|---:|---:|---|\n");
        if (p.Evaluation["comparison"] is JsonObject comparison)
            foreach (var (suite, node) in comparison.OrderBy(c => c.Key, StringComparer.Ordinal))
                if (node?["metrics"] is JsonObject metrics)
                    foreach (var (metric, m) in metrics.OrderBy(c => c.Key, StringComparer.Ordinal))
                        s.Append("| ").Append(suite).Append(" | ").Append(node["role"]).Append(" | ").Append(metric)
                         .Append(" | ").Append(Num(m?["base"])).Append(" | ").Append(Num(m?["candidate"]))
                         .Append(" | ").Append(Num(m?["difference"])).Append(" | ").Append(Interval(m?["difference_ci"])).Append(" |\n");
        s.Append('\n');

        s.Append("## Release gates\n\n");
        s.Append("| gate | metric | observed | threshold | interval | verdict |\n|---|---|---:|---:|---|---|\n");
        if (p.Evaluation["gates"] is JsonArray gates)
            foreach (var g in gates)
                s.Append("| ").Append(g?["name"]).Append(" | ").Append(g?["suite"]).Append('.').Append(g?["metric"])
                 .Append(" | ").Append(Num(g?["observed"])).Append(" | ").Append(g?["kind"]).Append(' ').Append(Num(g?["threshold"]))
                 .Append(" | ").Append(Interval(g?["interval"])).Append(" | ").Append(g?["passed"]?.GetValue<bool>() == true ? "passed" : "FAILED").Append(" |\n");
        s.Append("\nAll gates passed: ").Append(p.Evaluation["passed"]?.GetValue<bool>() == true ? "yes" : "no").Append("\n\n");

        s.Append("## Use\n\n");
        s.Append("Python (PEFT):\n\n```python\nfrom transformers import AutoModelForCausalLM\nfrom peft import PeftModel\n\n")
         .Append("base = AutoModelForCausalLM.from_pretrained(\"").Append(p.BaseModelName).Append("\")\n")
         .Append("model = PeftModel.from_pretrained(base, \"").Append(p.Name).Append("\")\n```\n\n");
        s.Append("Forgetless: `forgetless generate --adapter ").Append(p.Name).Append(" ...`; check it with `forgetless verify ")
         .Append(p.Name).Append(" --base BASE_MODEL_DIR`.\n");
        if (hasMerged) s.Append("\n`merged/` holds the base model with the adapter folded in, as a plain Hugging Face model folder.\n");
        s.Append('\n');

        s.Append("## Provenance\n\n");
        s.Append("- the gates judged the adapter with digest `").Append(p.Judged.Adapter.Digest).Append("` on the base model with digest `")
         .Append(p.Judged.BaseModel.Digest).Append("` (every file in `forgetless.manifest.json`)\n");
        s.Append("- `").Append(InTotoStatement.FileName).Append("`: in-toto statement with a SLSA provenance predicate over every file here\n");
        s.Append("- source revision: `").Append(p.SourceRevision).Append("`\n");
        foreach (var (tool, version) in p.Tools) s.Append("- ").Append(tool).Append(": ").Append(version).Append('\n');
        return s.ToString();
    }

    private static string Num(JsonNode? node) =>
        node is JsonValue v && v.TryGetValue<double>(out var d) ? d.ToString("0.####", CultureInfo.InvariantCulture) : "–";

    private static string Interval(JsonNode? node) =>
        node is JsonArray { Count: 2 } a ? $"[{Num(a[0])}, {Num(a[1])}]" : "–";
}
