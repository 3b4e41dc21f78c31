using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Forgetless.Continual;

namespace Forgetless.Packaging;

/// <summary>
/// README.md of an adapter-set package: the tasks and their adapters, how to load them (PEFT and forgetless), the
/// strategy's accuracy matrix and summaries, the router's accuracy and the gates.
/// </summary>
public static class AdapterSetCard
{
    /// <param name="continual">{ tasks, metrics, base, strategy: { r, metrics, intervals, router } } as the continual report writes them.</param>
    public static string Write(PackageOptions options, string baseModelName, string strategy, IReadOnlyList<string> tasks, IReadOnlyList<string> peftTypes,
        JsonObject continual, IReadOnlyList<ContinualGateVerdict> gates)
    {
        var s = new StringBuilder();
        s.Append("---\nlibrary_name: peft\nbase_model: ").Append(baseModelName).Append("\npipeline_tag: text-generation\ntags:\n- forgetless\n- continual-learning\n---\n\n");
        s.Append("# ").Append(options.Name).Append(' ').Append(options.Version).Append("\n\n");
        s.Append("One adapter per task for `").Append(baseModelName).Append("`, trained by Forgetless's continual strategy `").Append(strategy)
         .Append("` over a frozen base model and released only because every continual gate passed. Each task's folder is a PEFT adapter; ")
         .Append("`router.json` chooses a task from the input. Every file is listed in `SHA256SUMS`.\n\n");

        s.Append("## Adapters\n\n| task | peft_type | score after the last step |\n|---|---|---|\n");
        var last = continual["strategy"]?["r"] is JsonArray r && r.Count > 0 ? r[^1] as JsonArray : null;
        for (int j = 0; j < tasks.Count; j++)
            s.Append("| `").Append(tasks[j]).Append("` | `").Append(peftTypes[j]).Append("` | ").Append(F(last?[j])).Append(" |\n");
        s.Append('\n');

        s.Append("## Use\n\n```python\nfrom peft import PeftModel\n");
        s.Append("model = PeftModel.from_pretrained(base, \"").Append(options.Name).Append('/').Append(tasks[0]).Append("\", adapter_name=\"").Append(tasks[0]).Append("\")\n");
        foreach (var task in tasks.Skip(1))
            s.Append("model.load_adapter(\"").Append(options.Name).Append('/').Append(task).Append("\", adapter_name=\"").Append(task).Append("\")\n");
        s.Append("model.set_adapter(\"").Append(tasks[^1]).Append("\")\n```\n\n");
        s.Append("```\nforgetless generate --adapter ").Append(options.Name).Append(" --task auto \"PROMPT\"      # routed by router.json\n");
        s.Append("forgetless score --adapter ").Append(options.Name).Append(" --task ").Append(tasks[0]).Append(" SUITE.jsonl\n```\n\n");

        s.Append("## Accuracy matrix\n\nR[i, j]: task j after step i (").Append(string.Join(", ", (continual["metrics"] as JsonArray ?? []).Select(m => m?.ToString()).Distinct()))
         .Append(").\n\n| after step | ").Append(string.Join(" | ", tasks)).Append(" |\n|---|").Append(string.Concat(tasks.Select(_ => "---|"))).Append('\n');
        if (continual["strategy"]?["r"] is JsonArray rows)
            for (int i = 0; i < rows.Count; i++)
                s.Append("| ").Append(i + 1).Append(". ").Append(tasks[i]).Append(" | ")
                 .Append(string.Join(" | ", (rows[i] as JsonArray ?? []).Select(F))).Append(" |\n");
        if (continual["base"] is JsonArray baseRow)
            s.Append("| untrained | ").Append(string.Join(" | ", baseRow.Select(F))).Append(" |\n");
        s.Append('\n');
        if (continual["strategy"]?["metrics"] is JsonObject m)
            s.Append("ACC ").Append(F(m["acc"])).Append(", BWT ").Append(F(m["bwt"])).Append(", FWT ").Append(F(m["fwt"]))
             .Append(", forgetting ").Append(F(m["forgetting"])).Append(".\n\n");
        if (continual["strategy"]?["router"]?["accuracy"] is { } accuracy)
            s.Append("Router: ").Append(F(accuracy)).Append(" of held-out inputs go to their own task's adapter.\n\n");

        s.Append("## Gates\n\n");
        if (gates.Count == 0) s.Append("No continual gate was configured for this strategy.\n");
        else
        {
            s.Append("| gate | verdict | finding |\n|---|---|---|\n");
            foreach (var g in gates) s.Append("| ").Append(g.Name).Append(" | ").Append(g.Passed ? "pass" : "FAIL").Append(" | ").Append(g.Message).Append(" |\n");
        }
        return s.ToString();
    }

    private static string F(JsonNode? node) =>
        node is JsonValue v && v.TryGetValue<double>(out double x) ? x.ToString("0.000", CultureInfo.InvariantCulture) : "–";
}
