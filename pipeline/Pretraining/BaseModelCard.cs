using System.Globalization;
using System.Text;

namespace Forgetless.Pretraining;

/// <summary>
/// The README.md of the embedded base model: what it is, how it was made, what it knows. Its front matter,
/// sections and numbers (from <see cref="BaseModelReport"/>) have nothing in common with the adapter package's
/// card (<see cref="Packaging.AdapterModelCard"/>, built from the provenance record), so the two stay apart.
/// </summary>
public static class BaseModelCard
{
    public static string Write(PretrainOptions options, PretrainResult result, BaseModelReport report, int seed)
    {
        var n = report.Numbers;
        string F(string key) => BaseModelReport.Format(n.GetValueOrDefault(key));
        var card = new StringBuilder();
        card.AppendLine("---");
        card.AppendLine("license: other");
        card.AppendLine("library_name: forgetless");
        card.AppendLine("tags: [llama, tiny, forgetless-embedded-default]");
        card.AppendLine("---");
        card.AppendLine();
        card.AppendLine("# forgetless-base");
        card.AppendLine();
        card.AppendLine("The embedded base model of Forgetless: a tiny Llama-architecture model pretrained from scratch on");
        card.AppendLine("the Brown corpus plus WordNet fact sentences, so that the pipeline has something real to fine-tune");
        card.AppendLine("and something real to forget, with no download and no GPU. It is a teaching-size model, not a");
        card.AppendLine("useful assistant.");
        card.AppendLine();
        card.AppendLine("## How it was made");
        card.AppendLine();
        card.AppendLine(Invariant($"- Architecture: llama, {options.Layers} layers, hidden {options.Hidden}, {options.Heads} heads ({options.KvHeads} key/value heads), tied embeddings: {options.TieEmbeddings}, {result.Parameters:N0} parameters, context {options.MaxPositions}."));
        card.AppendLine(Invariant($"- Tokenizer: byte-level BPE, {result.Tokenizer.VocabSize} tokens, trained by Forgetless on the same text (`data/tokenizer`)."));
        card.AppendLine(Invariant($"- Data: `{options.Corpus}` — Brown corpus training files (held-out files excluded) with the fact sentences of the *seen* half of the fact probe, each repeated 30 times in three wordings (see `data/corpora/NOTICE.*` and docs/data.md)."));
        card.AppendLine(Invariant($"- Training: {result.Steps} steps of {options.Batch} × {options.SeqLen} tokens ({result.TokensSeen:N0} tokens seen), AdamW (β2 0.95, weight decay {options.WeightDecay}), peak learning rate {options.LearningRate}, {options.WarmupSteps} warm-up steps, cosine decay to {options.MinLrRatio} of the peak, gradient clipping {options.ClipNorm}, seed {seed}."));
        card.AppendLine(Invariant($"- Wall time: {result.WallSeconds / 60:F1} minutes of this run on a 2-core CPU (a resumed run counts only its own part). Final training loss {result.FinalTrainLoss:F3}, held-out loss {result.FinalHeldoutLoss:F3} nats/token."));
        card.AppendLine("- Rebuild: `./build.sh --target=Pretrain` (same seed and inputs give the same loss curve on the same machine); `training_log.jsonl` is the curve.");
        card.AppendLine();
        card.AppendLine("## What it knows");
        card.AppendLine();
        card.AppendLine("| measure | this model | baseline |");
        card.AppendLine("|---|---|---|");
        card.AppendLine($"| held-out Brown perplexity (tokens) | {F("heldout.perplexity")} | smoothed bigram {F("bigram.perplexity")} |");
        card.AppendLine($"| held-out Brown bits per byte | {F("heldout.bits_per_byte")} | smoothed bigram {F("bigram.bits_per_byte")} |");
        card.AppendLine($"| facts, seen, acc / acc_norm | {F("facts.acc.seen")} / {F("facts.acc_norm.seen")} | chance 0.25 |");
        card.AppendLine($"| facts, unseen (control), acc / acc_norm | {F("facts.acc.unseen")} / {F("facts.acc_norm.unseen")} | chance 0.25 |");
        card.AppendLine($"| facts, seen − unseen, acc (95% CI) | {F("facts.acc.gap")} {F("facts.acc.gap_ci95")} | 0 |");
        card.AppendLine($"| facts, seen − unseen, acc_norm (95% CI) | {F("facts.acc_norm.gap")} {F("facts.acc_norm.gap_ci95")} | 0 |");
        card.AppendLine($"| cloze, choice among context words | {F("cloze.acc_choice")} | most frequent context word {F("cloze.baseline_most_frequent")} |");
        card.AppendLine($"| cloze, greedy exact match | {F("cloze.acc_greedy")} | — |");
        card.AppendLine($"| cloze, target perplexity | {F("cloze.target_perplexity")} | — |");
        card.AppendLine();
        card.AppendLine("Samples (temperature 0.8, top-p 0.95; the prompt is the first words):");
        card.AppendLine();
        foreach (var sample in report.Samples)
        {
            card.AppendLine("> " + sample.Replace("\n", " "));
            card.AppendLine();
        }
        card.AppendLine("`eval.json` holds these numbers. Licences of the data: see `data/corpora/NOTICE.*`.");
        return card.ToString();
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
