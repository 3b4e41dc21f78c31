using Forgetless.Model.Tokenizers;
using Forgetless.Model.Devices;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Model.Inference;

/// <summary>How to generate. Temperature 0 means greedy; otherwise temperature + nucleus (top-p) sampling.</summary>
public sealed record GenerationOptions
{
    public int MaxNewTokens { get; init; } = 64;
    public double Temperature { get; init; }
    public double TopP { get; init; } = 1.0;
    /// <summary>Seeds the torch generator used for sampling; the same seed gives the same text.</summary>
    public long Seed { get; init; }
    /// <summary>Ids that end generation; default: the tokenizer's EOS, else the config's eos_token_id.</summary>
    public IReadOnlyList<int>? StopTokenIds { get; init; }
    /// <summary>
    /// End generation after a token whose text holds a line break (the token is kept): a caller that reads only the
    /// first line gets the same text without generating the lines after it.
    /// </summary>
    public bool StopAfterLineBreak { get; init; }

    /// <summary>Defaults from a model folder's generation_config.json (greedy unless it says do_sample).</summary>
    public static GenerationOptions From(GenerationConfig? config) => config is null ? new() : new()
    {
        MaxNewTokens = config.MaxNewTokens ?? 64,
        Temperature = config.DoSample == true ? config.Temperature ?? 1.0 : 0,
        TopP = config.DoSample == true ? config.TopP ?? 1.0 : 1.0,
        StopTokenIds = config.EosTokenIds.Count > 0 ? config.EosTokenIds : null,
    };
}

/// <param name="TokenIds">Generated ids, without the prompt and without the stop token.</param>
/// <param name="FinishReason">"eos" (a stop token), "line" (a line break, with <see cref="GenerationOptions.StopAfterLineBreak"/>),
/// "length" (MaxNewTokens or the model's context was reached).</param>
public sealed record GenerationResult(IReadOnlyList<int> PromptIds, IReadOnlyList<int> TokenIds, string Text, string FinishReason);

/// <summary>
/// Autoregressive generation with a KV cache: the prompt runs once, then one token per step. <see cref="Generate(string, GenerationOptions?, CancellationToken)"/>
/// generates for one prompt; <see cref="GenerateGreedy"/> for many prompts at once (greedy only). Takes an already-built
/// model, adapters applied or not. (Not named Generator: that clashes with
/// torch.Generator wherever <c>using static TorchSharp.torch</c> is in scope.)
/// </summary>
public sealed class TextGenerator(CausalLM model, ITokenizer tokenizer)
{
    public GenerationResult Generate(string prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        Generate(tokenizer.Encode(prompt), options, cancellationToken);

    public GenerationResult Generate(IReadOnlyList<int> promptIds, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new GenerationOptions();
        if (options.Temperature < 0 || options.TopP is <= 0 or > 1)
            throw new ArgumentException($"temperature must be >= 0 and top_p in (0, 1]; got {options.Temperature} and {options.TopP}");
        var prompt = promptIds.Count > 0 ? promptIds.ToArray()
            : (tokenizer.BosId ?? tokenizer.EosId) is { } start ? [start]
            : throw new ArgumentException("empty prompt and the tokenizer has no BOS or EOS token to start from");
        var stop = StopTokens(options).ToHashSet();
        var maxNew = Math.Min(options.MaxNewTokens, model.ContextLength - prompt.Length);
        if (maxNew < 0) throw new ArgumentException($"prompt of {prompt.Length} tokens exceeds the model's context of {model.ContextLength} tokens");

        using var _ = no_grad();
        using var cache = model.NewCache();
        var device = model.Device;
        // A CUDA tensor draws from a CUDA generator; the CPU generator serves the CPU (and the meta device).
        using var generator = options.Temperature > 0 ? new torch.Generator((ulong)options.Seed, device.type == DeviceType.CUDA ? device : CPU) : null;
        var generated = new List<int>();
        var finish = "length";
        var next = prompt.Select(t => (long)t).ToArray();
        while (generated.Count < maxNew)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var logits = model.Forward(tensor(next, [1, next.Length], device: device), cache: cache);
            var token = Pick(logits[0, -1], options, generator);
            if (stop.Contains(token))
            {
                finish = "eos";
                break;
            }
            generated.Add(token);
            if (options.StopAfterLineBreak && LineBreakTokens[token])
            {
                finish = "line";
                break;
            }
            next = [token];
        }
        return new GenerationResult(prompt, generated, tokenizer.Decode(generated), finish);
    }

    private IReadOnlyList<int> StopTokens(GenerationOptions options) =>
        options.StopTokenIds ?? (tokenizer.EosId is { } eos ? [eos] : model.Config.EosTokenIds);

    /// <summary>Per token id: whether its text holds a line break.</summary>
    private bool[] LineBreakTokens => lineBreakTokens ??= Enumerable.Range(0, model.Config.VocabSize)
        .Select(id => id < tokenizer.VocabSize && tokenizer.Decode([id]).Contains('\n')).ToArray();

    private bool[]? lineBreakTokens;

    /// <summary>How many tokens run between looks at which generations have finished (one host read each).</summary>
    private const int StepsPerCheck = 8;

    /// <summary>
    /// Greedy generation for many prompts in one batch: prompts left-padded (positions count real tokens only, so each
    /// row computes what it computes alone, up to float rounding), one forward per step for the rows still running.
    /// The next tokens stay on the device; every <see cref="StepsPerCheck"/> steps the finished rows are read once and
    /// dropped from the batch and the cache. Results are in prompt order and equal <see cref="Generate(IReadOnlyList{int}, GenerationOptions?, CancellationToken)"/>'s.
    /// </summary>
    public IReadOnlyList<GenerationResult> GenerateGreedy(IReadOnlyList<IReadOnlyList<int>> promptIds, GenerationOptions options, CancellationToken cancellationToken = default)
    {
        if (options.Temperature != 0) throw new ArgumentException("batched generation is greedy only; sample one prompt at a time");
        var results = new GenerationResult[promptIds.Count];
        int longest = promptIds.Count == 0 ? 0 : promptIds.Max(p => p.Count);
        // A padded batch must fit the context as a whole (learned positions count the padding); otherwise one at a time.
        if (promptIds.Count <= 1 || options.MaxNewTokens < 1 || promptIds.Any(p => p.Count == 0) || longest + options.MaxNewTokens > model.ContextLength)
        {
            for (int i = 0; i < promptIds.Count; i++) results[i] = Generate(promptIds[i], options, cancellationToken);
            return results;
        }
        var stopIds = StopTokens(options);
        var stops = new bool[model.Config.VocabSize];
        foreach (var id in stopIds) if (id >= 0 && id < stops.Length) stops[id] = true;
        if (options.StopAfterLineBreak) for (int id = 0; id < stops.Length; id++) stops[id] |= LineBreakTokens[id];

        int batch = promptIds.Count;
        var ids = new long[batch * longest];
        var mask = new long[batch * longest];
        for (int b = 0; b < batch; b++)
        {
            var prompt = promptIds[b];
            int pad = longest - prompt.Count;
            for (int t = 0; t < prompt.Count; t++) (ids[b * longest + pad + t], mask[b * longest + pad + t]) = (prompt[t], 1);
        }
        var tokens = Enumerable.Range(0, batch).Select(_ => new List<int>()).ToArray();
        using var _ = no_grad();
        using var cache = model.NewCache();
        var device = model.Device;
        using var stopTable = tensor(stops, device: device);
        var running = Enumerable.Range(0, batch).ToList();
        Tensor next, finished;
        var pending = new List<Tensor>();
        using (var scope = NewDisposeScope())
        {
            // Only each row's last prompt token needs logits.
            var last = tensor(Enumerable.Range(1, batch).Select(b => (long)b * longest - 1).ToArray(), device: device);
            var first = model.Forward(tensor(ids, [batch, longest], device: device), tensor(mask, [batch, longest], device: device), cache, logitsAt: last).argmax(-1);
            finished = DeviceOps.Rows(stopTable, first).DetachFromDisposeScope();
            next = first.DetachFromDisposeScope();
            pending.Add(next.alias().DetachFromDisposeScope());
        }
        for (int step = 1; step <= options.MaxNewTokens; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (step % StepsPerCheck == 0 || step == options.MaxNewTokens)
            {
                // One host read: the tokens since the last look, and which rows have finished.
                using var scope = NewDisposeScope();
                // (through HostValues, so the meta device reads zeros instead of failing: no row finishes there).
                int width = pending.Count + 1;
                var seen = HostValues.Longs(cat([stack(pending, 1), finished.to(ScalarType.Int64).unsqueeze(1)], 1));
                var done = Enumerable.Range(0, running.Count).Select(r => seen[r * width + pending.Count] != 0).ToArray();
                for (int r = 0; r < running.Count; r++)
                    for (int k = 0; k < pending.Count; k++) tokens[running[r]].Add((int)seen[r * width + k]);
                foreach (var t in pending) t.Dispose();
                pending.Clear();
                if (step == options.MaxNewTokens || done.All(d => d)) break;
                if (done.Any(d => d))
                {
                    var keep = Enumerable.Range(0, running.Count).Where(r => !done[r]).ToArray();
                    var rows = tensor(keep.Select(r => (long)r).ToArray(), device: device);
                    cache.KeepRows(rows);
                    (next, finished) = (Swap(next, DeviceOps.Rows(next, rows)), Swap(finished, DeviceOps.Rows(finished, rows)));
                    running = keep.Select(r => running[r]).ToList();
                }
            }
            using (var scope = NewDisposeScope())
            {
                var input = next.unsqueeze(1);
                var logits = model.Forward(input, ones_like(input), cache);
                var token = logits.select(1, 0).argmax(-1);
                finished = Swap(finished, finished.bitwise_or(DeviceOps.Rows(stopTable, token)));
                next = Swap(next, token);
                pending.Add(next.alias().DetachFromDisposeScope());
            }
        }
        next.Dispose();
        finished.Dispose();
        for (int b = 0; b < batch; b++) results[b] = Finish(promptIds[b], tokens[b], stopIds, options);
        return results;
    }

    private static Tensor Swap(Tensor old, Tensor replacement)
    {
        var kept = replacement.DetachFromDisposeScope();
        old.Dispose();
        return kept;
    }

    /// <summary>Cuts a row's tokens where <see cref="Generate(IReadOnlyList{int}, GenerationOptions?, CancellationToken)"/> would have stopped.</summary>
    private GenerationResult Finish(IReadOnlyList<int> prompt, List<int> tokens, IReadOnlyList<int> stopIds, GenerationOptions options)
    {
        int limit = Math.Min(options.MaxNewTokens, model.ContextLength - prompt.Count);
        var kept = new List<int>();
        string finish = "length";
        foreach (var token in tokens.Take(limit))
        {
            if (stopIds.Contains(token)) { finish = "eos"; break; }
            kept.Add(token);
            if (options.StopAfterLineBreak && LineBreakTokens[token]) { finish = "line"; break; }
        }
        return new GenerationResult(prompt, kept, tokenizer.Decode(kept), finish);
    }

    private static int Pick(Tensor logits, GenerationOptions options, torch.Generator? generator)
    {
        if (generator is null) return (int)HostValues.Longs(logits.argmax())[0];
        using var temperature = options.Temperature.ToScalar();
        var probs = nn.functional.softmax(logits.div(temperature), -1);
        if (options.TopP < 1)
        {
            // Keep the smallest set of most likely tokens whose probability reaches top_p (at least one).
            var (sorted, indices) = probs.sort(descending: true);
            var before = sorted.cumsum(0) - sorted;
            using var topP = options.TopP.ToScalar();
            var kept = sorted.masked_fill(before.ge(topP), Scalars.Zero);
            probs = zeros_like(probs).scatter(0, indices, kept);
            probs = probs / probs.sum();
        }
        return (int)HostValues.Longs(DeviceOps.Categorical(probs, generator))[0];
    }
}
