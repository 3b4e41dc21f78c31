namespace Forgetless.Corpora;

/// <summary>One item of a classification task: a prompt whose answer is one of the task's labels.</summary>
public sealed record LabelItem(string Id, string Prompt, string Label);

/// <summary>
/// A classification task of the embedded default (word classes, spam, syllables): items with one label each out of a
/// fixed label set, split into training rows (<c>prompt</c> → <c>response</c> = " " + label, the loss on the label
/// alone) and a held-out suite scored lm-eval style by choice among the labels (<c>query</c>, <c>choices</c>,
/// <c>gold</c>) and by greedy generation against <c>reference</c>.
/// </summary>
public sealed record LabelTask(string Name, IReadOnlyList<string> Labels, IReadOnlyList<LabelItem> Train, IReadOnlyList<LabelItem> Eval)
{
    public string TrainFile => Name + ".train.jsonl.gz";
    public string EvalFile => Name + ".eval.jsonl";

    /// <summary>The share of the most frequent label in the held-out items: what always answering it scores.</summary>
    public double MajorityBaseline => Eval.Count == 0 ? 0 : Eval.GroupBy(i => i.Label).Max(g => g.Count()) / (double)Eval.Count;

    public string MajorityLabel => Eval.GroupBy(i => i.Label).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).First().Key;

    /// <summary>Writes the two files; returns the counts for stats.json under <c>NAME.*</c>.</summary>
    public IEnumerable<KeyValuePair<string, double>> Write(DerivedFiles output)
    {
        output.WriteJsonLines(TrainFile, Train, (w, item) =>
        {
            w.WriteStartObject();
            w.WriteString("prompt", item.Prompt);
            w.WriteString("response", " " + item.Label);
            w.WriteEndObject();
        });
        output.WriteJsonLines(EvalFile, Eval, (w, item) =>
        {
            w.WriteStartObject();
            w.WriteString("query", item.Prompt);
            w.WriteStartArray("choices");
            foreach (var label in Labels) w.WriteStringValue(label);
            w.WriteEndArray();
            w.WriteNumber("gold", Labels.ToList().IndexOf(item.Label));
            w.WriteString("prompt", item.Prompt);
            w.WriteString("reference", " " + item.Label);
            w.WriteString("category", item.Label);
            w.WriteString("id", item.Id);
            w.WriteEndObject();
        });
        yield return new($"{Name}.train", Train.Count);
        yield return new($"{Name}.eval", Eval.Count);
        yield return new($"{Name}.labels", Labels.Count);
        yield return new($"{Name}.baseline.majority", Math.Round(MajorityBaseline, 4));
    }
}
