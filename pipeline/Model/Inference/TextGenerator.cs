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
/// <param name="FinishReason">"eos" (a stop token), "length" (MaxNewTokens or the model's context was reached).</param>
public sealed record GenerationResult(IReadOnlyList<int> PromptIds, IReadOnlyList<int> TokenIds, string Text, string FinishReason);

/// <summary>
/// Batch-1 autoregressive generation with a KV cache: the prompt runs once, then one token per step.
/// Takes an already-built model, adapters applied or not. (Not named Generator: that clashes with
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
        var stop = (options.StopTokenIds ?? (tokenizer.EosId is { } eos ? [eos] : model.Config.EosTokenIds)).ToHashSet();
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
            next = [token];
        }
        return new GenerationResult(prompt, generated, tokenizer.Decode(generated), finish);
    }

    private static int Pick(Tensor logits, GenerationOptions options, torch.Generator? generator)
    {
        if (generator is null) return (int)HostValues.Longs(logits.argmax())[0];
        var probs = nn.functional.softmax(logits / options.Temperature, -1);
        if (options.TopP < 1)
        {
            // Keep the smallest set of most likely tokens whose probability reaches top_p (at least one).
            var (sorted, indices) = probs.sort(descending: true);
            var before = sorted.cumsum(0) - sorted;
            var kept = sorted.masked_fill(before.ge(options.TopP), 0);
            probs = zeros_like(probs).scatter(0, indices, kept);
            probs = probs / probs.sum();
        }
        return (int)HostValues.Longs(DeviceOps.Categorical(probs, generator))[0];
    }
}
