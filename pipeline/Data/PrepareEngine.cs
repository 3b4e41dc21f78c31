using System.Globalization;
using System.Text.Json;
using Forgetless.Data.Sources;
using Forgetless.Model.Tokenizers;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Forgetless.Data;

/// <summary>
/// Ingests, validates, filters, mixes, tokenizes and packs the prepare stage's data in two streaming passes:
/// the first reads every source once to validate rows and count tokens per sampling bucket, the plan then fixes
/// how often each row is used, and the second rereads the sources in step and writes the mixed sequences.
/// Memory is bounded by the de-duplication map (about 28 bytes per distinct row), the decontamination
/// n-gram set, one Parquet row group per split, and one sequence per source; never by the number of rows held.
/// </summary>
public sealed class PrepareEngine
{
    public const string GeneratedSourceName = "generated";
    private const int MaxBadRowExamples = 20;

    private readonly PrepareOptions options;
    private readonly ITokenizer tokenizer;
    private readonly string tokenizerHash;
    private readonly IReplayTextGenerator? generator;
    private readonly ILogger logger;
    private readonly ChatTemplates.ChatRenderer? chat;

    public PrepareEngine(PrepareOptions options, ITokenizer tokenizer, string tokenizerHash, IReplayTextGenerator? generator = null, ILogger? logger = null,
        ChatTemplates.ChatRenderer? chat = null)
    {
        var errors = options.Validate();
        if (errors.Count > 0) throw new Configuration.ConfigException(string.Join(Environment.NewLine, errors.Select(e => "prepare." + e)));
        this.options = options;
        this.tokenizer = tokenizer;
        this.tokenizerHash = tokenizerHash;
        this.generator = generator;
        this.logger = logger ?? NullLogger.Instance;
        if (chat is null && options.TaskSources.Any(s => s.Chat != Sources.ChatFormat.None))
            throw new ArgumentException("chat task sources need the base model's chat template (a ChatRenderer)", nameof(chat));
        this.chat = chat;
    }

    /// <summary>
    /// Writes train.parquet, validation.parquet and stats.json into <paramref name="outputDirectory"/>; each is
    /// written under a temporary name and renamed once complete. Relative source paths are taken from
    /// <paramref name="baseDirectory"/>; <paramref name="workDirectory"/> keeps generated replay between attempts.
    /// </summary>
    public async Task<PrepareStats> RunAsync(string baseDirectory, string outputDirectory, string workDirectory, CancellationToken cancellationToken)
    {
        var sources = ResolveSources(baseDirectory);
        var decontaminator = LoadSuites(baseDirectory, cancellationToken);
        if (options.GeneratedReplay.Enabled)
            sources.Insert(options.TaskSources.Count, GenerateReplay(workDirectory, sources.Count, cancellationToken));
        var encoder = new DocumentEncoder(tokenizer, options.SeqLen, options.OverLength, chat);
        var stats = new PrepareStats { TargetReplayShare = options.ReplayShare, DecontaminationNgrams = decontaminator.NgramCount };
        var firstSeen = options.Dedup ? new Dictionary<ulong, long>() : null;

        var watch = System.Diagnostics.Stopwatch.StartNew();
        foreach (var source in sources)
            Survey(source, decontaminator, encoder, firstSeen, stats, cancellationToken);
        logger.LogInformation("prepare: first pass (validate, filter, count) took {Seconds:0.0} s", watch.Elapsed.TotalSeconds);
        foreach (var source in sources.Where(s => s.Kind == RowKind.Task)) RequireTrainingRows(source);
        stats.DedupSetEntries = firstSeen?.Count ?? 0;
        ReplayMixPlan.Plan(sources, options.ReplayShare);
        foreach (var s in sources)
        {
            s.Stats.UseFactor = s.AvailableTrainTokens == 0 ? 0 : Math.Round((double)s.Selection.SelectedTrainTokens / s.AvailableTrainTokens, 6);
            logger.LogInformation("prepare: {Source} ({Kind}) has {Available} train tokens, uses {Selected}", s.Name, SourceState.KindName(s.Kind), s.AvailableTrainTokens, s.Selection.SelectedTrainTokens);
        }

        watch.Restart();
        await WriteAsync(sources, decontaminator, encoder, firstSeen, stats, outputDirectory, cancellationToken);
        logger.LogInformation("prepare: second pass (mix, tokenize, pack, write) took {Seconds:0.0} s", watch.Elapsed.TotalSeconds);

        foreach (var s in sources) stats.Filtered.Add(s.Stats.Filtered);
        stats.Sources = sources.Select(s => s.Stats).ToList();
        var replayTokens = stats.Kinds.Where(k => k.Key != "task").Sum(k => k.Value.Train.Tokens);
        stats.AchievedReplayShare = stats.Train.Tokens == 0 ? 0 : Math.Round((double)replayTokens / stats.Train.Tokens, 6);
        var statsPath = Path.Combine(outputDirectory, PreparedDataset.StatsFileName);
        await File.WriteAllTextAsync(statsPath + ".tmp", stats.ToJson(), cancellationToken);
        File.Move(statsPath + ".tmp", statsPath, overwrite: true);
        logger.LogInformation("prepare: {Train} train tokens in {Sequences} sequences, replay share {Share:0.0000} (target {Target})",
            stats.Train.Tokens, stats.Train.Sequences, stats.AchievedReplayShare, options.ReplayShare);
        return stats;
    }

    private List<SourceState> ResolveSources(string baseDirectory)
    {
        var sources = new List<SourceState>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        void Add(DataSourceOptions o, RowKind kind)
        {
            var path = Path.GetFullPath(o.Path, baseDirectory);
            var format = SourceState.ResolveFormat(o, path, kind == RowKind.Replay);
            if (format != SourceFormat.PreparedDataset && !File.Exists(path))
                throw new DataFormatException(path, null, "does not exist; expected an input file.");
            if (o.Chat != Sources.ChatFormat.None && format != SourceFormat.Jsonl)
                throw new DataFormatException(path, null, $"is read as {format}; chat data ({o.Chat}) is read from JSON lines (.jsonl, .json, .ndjson or format jsonl).");
            var name = o.DisplayName;
            for (var n = 2; !names.Add(name); n++) name = $"{o.DisplayName}#{n}";
            var state = new SourceState
            {
                Index = sources.Count, Name = name, Path = path, Format = format, Kind = kind, Weight = o.Weight,
                Mapping = new FieldMapping(o),
            };
            state.Stats.Name = name;
            state.Stats.Path = o.Path;
            state.Stats.Kind = SourceState.KindName(kind);
            state.Stats.Format = JsonNamingPolicy.CamelCase.ConvertName(format.ToString());
            state.Stats.Weight = o.Weight;
            sources.Add(state);
        }
        foreach (var o in options.TaskSources) Add(o, RowKind.Task);
        foreach (var o in options.ReplaySources) Add(o, RowKind.Replay);
        return sources;
    }

    private Decontaminator LoadSuites(string baseDirectory, CancellationToken cancellationToken)
    {
        var decontaminator = new Decontaminator(options.Decontaminate.Ngram);
        foreach (var suite in options.Decontaminate.Suites)
        {
            var path = Path.GetFullPath(suite, baseDirectory);
            if (!File.Exists(path)) throw new DataFormatException(path, null, "does not exist; expected a JSON-lines evaluation suite.");
            decontaminator.AddSuite(path, cancellationToken);
        }
        return decontaminator;
    }

    /// <summary>
    /// Runs the generator once and keeps its text as JSON lines in the work folder, so both passes (and a resumed
    /// run with the same fingerprint) read the same documents.
    /// </summary>
    private SourceState GenerateReplay(string workDirectory, int index, CancellationToken cancellationToken)
    {
        var g = options.GeneratedReplay;
        if (generator is null)
            throw new InvalidOperationException("prepare.generatedReplay.enabled is true, but no replay text generator was supplied to the prepare stage.");
        Directory.CreateDirectory(workDirectory);
        var path = Path.Combine(workDirectory, $"generated-replay-seed{g.Seed}-budget{g.TokenBudget}.jsonl");
        if (!File.Exists(path))
        {
            long tokens = 0;
            using (var writer = new StreamWriter(path + ".tmp", append: false, new System.Text.UTF8Encoding(false)))
            {
                foreach (var text in generator.Generate(g.Seed, g.TokenBudget, cancellationToken))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (string.IsNullOrWhiteSpace(text)) continue;
                    writer.WriteLine(JsonSerializer.Serialize(new Dictionary<string, string> { ["text"] = text }));
                    tokens += tokenizer.Encode(text).Length;
                    if (tokens >= g.TokenBudget) break;
                }
            }
            File.Move(path + ".tmp", path, overwrite: true);
            logger.LogInformation("prepare: generated {Tokens} tokens of replay text", tokens);
        }
        var state = new SourceState
        {
            Index = index, Name = GeneratedSourceName, Path = path, Format = SourceFormat.Jsonl, Kind = RowKind.Generated, Weight = 1,
            Mapping = new FieldMapping(new DataSourceOptions { TextField = "text" }),
        };
        state.Stats.Name = GeneratedSourceName;
        state.Stats.Path = Path.GetFileName(path);
        state.Stats.Kind = SourceState.KindName(RowKind.Generated);
        state.Stats.Format = "jsonl";
        state.Stats.Weight = 1;
        return state;
    }

    /// <summary>First pass: validate every row, apply the filters, and count train tokens per sampling bucket.</summary>
    private void Survey(SourceState source, Decontaminator decontaminator, DocumentEncoder encoder, Dictionary<ulong, long>? firstSeen,
        PrepareStats stats, CancellationToken cancellationToken)
    {
        var filtered = source.Stats.Filtered;
        long ordinal = 0;
        foreach (var record in source.Read(cancellationToken))
        {
            if (++ordinal % 1_000_000 == 0)
                logger.LogInformation("prepare: checked {Rows} rows of {Source}", ordinal, source.Name);
            if (record.Error is { } error)
            {
                SkipBadRow(source, record.Line, error, stats);
                continue;
            }
            var key = ContentKey.Of(record);
            if (firstSeen is not null && !firstSeen.TryAdd(key.Dedup, source.Position(ordinal)))
            {
                filtered.Deduplicated++;
                continue;
            }
            if (decontaminator.IsContaminated(record))
            {
                filtered.Decontaminated++;
                continue;
            }
            EncodedDocument? document;
            try
            {
                document = encoder.Encode(record);
            }
            catch (ChatTemplates.ChatTemplateException e)
            {
                // A conversation the model's own template refuses (e.g. roles that do not alternate) is a bad row.
                SkipBadRow(source, record.Line, "the chat template cannot render this conversation: " + e.Message, stats);
                continue;
            }
            if (document is null)
            {
                filtered.Dropped++;
                continue;
            }
            if (document.Truncated) filtered.Truncated++;
            if (key.IsValidation(options.ValidationFraction)) continue;
            source.Histogram[key.Bucket(options.Seed)] += document.Ids.Length;
            source.AvailableTrainTokens += document.Ids.Length;
        }
        source.Stats.RowsRead = ordinal;
        source.Stats.AvailableTrainTokens = source.AvailableTrainTokens;
    }

    /// <summary>The bad-row policy: fail naming the file and line, or skip the row, count it and keep an example.</summary>
    private void SkipBadRow(SourceState source, long line, string error, PrepareStats stats)
    {
        if (options.OnBadRow == BadRowPolicy.Fail) throw new DataFormatException(source.Path, line, error);
        source.Stats.Filtered.Skipped++;
        if (stats.BadRowExamples.Count < MaxBadRowExamples)
            stats.BadRowExamples.Add(DataFormatException.Format(source.Path, line, error));
    }

    /// <summary>A task source that gives no training text makes the whole stage meaningless: an error, not an empty success.</summary>
    private static void RequireTrainingRows(SourceState source)
    {
        if (source.Stats.RowsRead == 0)
            throw new DataFormatException(source.Path, null, "has no records; a task source must give at least one row to train on");
        if (source.AvailableTrainTokens == 0)
        {
            var f = source.Stats.Filtered;
            throw new DataFormatException(source.Path, null,
                $"none of its {source.Stats.RowsRead} records is left for training ({f.Skipped} bad, {f.Deduplicated} duplicate, " +
                $"{f.Decontaminated} found in an evaluation suite, {f.Dropped} dropped as too long or empty; the rest went to validation)");
        }
    }

    /// <summary>Second pass: every source streams its sequences; the next sequence always comes from the source furthest behind its plan.</summary>
    private async Task WriteAsync(List<SourceState> sources, Decontaminator decontaminator, DocumentEncoder encoder,
        Dictionary<ulong, long>? firstSeen, PrepareStats stats, string outputDirectory, CancellationToken cancellationToken)
    {
        var trainPath = Path.Combine(outputDirectory, PreparedDataset.TrainFileName);
        var validationPath = Path.Combine(outputDirectory, PreparedDataset.ValidationFileName);
        Directory.CreateDirectory(outputDirectory);
        foreach (var p in new[] { trainPath, validationPath }) File.Delete(p + ".tmp");
        await using (var train = await PreparedDatasetWriter.CreateAsync(trainPath + ".tmp", options.RowGroupSize, Metadata("train", encoder), cancellationToken))
        await using (var validation = await PreparedDatasetWriter.CreateAsync(validationPath + ".tmp", options.RowGroupSize, Metadata("validation", encoder), cancellationToken))
        {
            var streams = sources.Select(s => Stream(s, decontaminator, encoder, firstSeen, cancellationToken).GetEnumerator()).ToList();
            var emitted = new long[sources.Count];
            var active = Enumerable.Range(0, sources.Count).ToList();
            try
            {
                while (active.Count > 0)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var next = active[0];
                    foreach (var i in active)
                        if (Progress(sources[i], emitted[i]) < Progress(sources[next], emitted[next])) next = i;
                    if (!streams[next].MoveNext())
                    {
                        active.Remove(next);
                        continue;
                    }
                    var (isValidation, sequence) = streams[next].Current;
                    var source = sources[next];
                    var kind = stats.Kinds.TryGetValue(sequence.Kind, out var k) ? k : stats.Kinds[sequence.Kind] = new KindStats();
                    if (isValidation)
                    {
                        await validation.AddAsync(sequence, cancellationToken);
                        stats.Validation.Add(sequence);
                        kind.Validation.Add(sequence);
                        source.Stats.Validation.Add(sequence);
                    }
                    else
                    {
                        await train.AddAsync(sequence, cancellationToken);
                        if (train.Rows % 100_000 == 0)
                            logger.LogInformation("prepare: {Sequences} train sequences written", train.Rows);
                        emitted[next] += sequence.Length;
                        stats.Train.Add(sequence);
                        kind.Train.Add(sequence);
                        source.Stats.Train.Add(sequence);
                    }
                }
            }
            finally
            {
                foreach (var s in streams) s.Dispose();
            }
            await train.CompleteAsync(cancellationToken);
            await validation.CompleteAsync(cancellationToken);
        }
        File.Move(trainPath + ".tmp", trainPath, overwrite: true);
        File.Move(validationPath + ".tmp", validationPath, overwrite: true);
    }

    private static double Progress(SourceState source, long emitted) =>
        source.Selection.SelectedTrainTokens == 0 ? 0 : (double)emitted / source.Selection.SelectedTrainTokens;

    /// <summary>The sequences of one source in file order, repeated as many passes as its selection needs.</summary>
    private IEnumerable<(bool IsValidation, PreparedSequence Sequence)> Stream(SourceState source, Decontaminator decontaminator,
        DocumentEncoder encoder, Dictionary<ulong, long>? firstSeen, CancellationToken cancellationToken)
    {
        var kind = SourceState.KindName(source.Kind);
        var trainPacker = new SequencePacker(options.SeqLen, encoder.PadId, options.Packing, source.Name, kind);
        var validationPacker = new SequencePacker(options.SeqLen, encoder.PadId, options.Packing, source.Name, kind);
        for (var pass = 0; pass < source.Selection.Passes; pass++)
        {
            long ordinal = 0;
            foreach (var record in source.Read(cancellationToken))
            {
                ordinal++;
                if (record.Error is not null) continue;
                var key = ContentKey.Of(record);
                var isValidation = key.IsValidation(options.ValidationFraction);
                var copies = source.Selection.TrainCopies(key.Bucket(options.Seed));
                if (isValidation ? pass > 0 || copies == 0 : pass >= copies) continue;
                if (firstSeen is not null && (!firstSeen.TryGetValue(key.Dedup, out var first) || first != source.Position(ordinal))) continue;
                if (decontaminator.IsContaminated(record)) continue;
                if (Encoded(encoder, record) is not { } document) continue;
                var packer = isValidation ? validationPacker : trainPacker;
                if (packer.Add(document) is { } closed) yield return (isValidation, closed);
            }
        }
        if (trainPacker.Flush() is { } lastTrain) yield return (false, lastTrain);
        if (validationPacker.Flush() is { } lastValidation) yield return (true, lastValidation);
    }

    /// <summary>The encoded document; null for a row the survey already skipped (dropped, or refused by the chat template).</summary>
    private static EncodedDocument? Encoded(DocumentEncoder encoder, SourceRecord record)
    {
        try
        {
            return encoder.Encode(record);
        }
        catch (ChatTemplates.ChatTemplateException)
        {
            return null;
        }
    }

    private Dictionary<string, string> Metadata(string split, DocumentEncoder encoder) => new()
    {
        ["forgetless.format"] = "forgetless-prepared/1",
        ["forgetless.split"] = split,
        ["forgetless.tokenizer.sha256"] = tokenizerHash,
        ["forgetless.tokenizer.vocab_size"] = tokenizer.VocabSize.ToString(CultureInfo.InvariantCulture),
        ["forgetless.tokenizer.eos_id"] = tokenizer.EosId?.ToString(CultureInfo.InvariantCulture) ?? "",
        ["forgetless.tokenizer.pad_id"] = encoder.PadId.ToString(CultureInfo.InvariantCulture),
        ["forgetless.seq_len"] = options.SeqLen.ToString(CultureInfo.InvariantCulture),
        ["forgetless.packing"] = options.Packing == PackingMode.Pack ? "pack" : "pad",
        ["forgetless.prepare.config"] = options.ToJson(),
    };
}
