using System.Text.Json.Nodes;

namespace Forgetless.Stages.Verbs.Synthesize;

/// <summary>
/// The config.json of real checkpoints, key for key as their model folders carry them, and how those folders store
/// their weights: what `forgetless synthesize-model` reproduces with random weights, so that load time, memory and
/// speed can be measured at a real model's size on a machine that cannot download it.
/// </summary>
public static class RealShapes
{
    /// <summary>A shape: its config.json and the largest shard its folder holds (null: one model.safetensors).</summary>
    public sealed record Shape(string Name, string Summary, JsonObject Config, long? MaxShardBytes);

    public static IReadOnlyList<Shape> All { get; } =
    [
        new("smollm2-135m", "HuggingFaceTB/SmolLM2-135M: Llama, 30 layers, d 576, 9 heads / 3 kv heads, vocab 49152, tied embeddings; one bf16 file",
            new JsonObject
            {
                ["architectures"] = new JsonArray("LlamaForCausalLM"), ["attention_bias"] = false, ["attention_dropout"] = 0.0,
                ["bos_token_id"] = 0, ["eos_token_id"] = 0, ["hidden_act"] = "silu", ["hidden_size"] = 576,
                ["initializer_range"] = 0.041666666666666664, ["intermediate_size"] = 1536, ["is_llama_config"] = true,
                ["max_position_embeddings"] = 8192, ["model_type"] = "llama", ["num_attention_heads"] = 9, ["num_hidden_layers"] = 30,
                ["num_key_value_heads"] = 3, ["pretraining_tp"] = 1, ["rms_norm_eps"] = 1e-05, ["rope_interleaved"] = false,
                ["rope_scaling"] = null, ["rope_theta"] = 100000, ["tie_word_embeddings"] = true, ["torch_dtype"] = "bfloat16",
                ["transformers_version"] = "4.40.1", ["use_cache"] = true, ["vocab_size"] = 49152,
            }, null),
        // The real folder holds one 988 MB file; written here in two shards (save_pretrained(max_shard_size="500MB")) so
        // that the run also goes through the index and shard-by-shard loading the 3B+ checkpoints need.
        new("qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B: Qwen2, 24 layers, d 896, 14 heads / 2 kv heads, qkv bias, vocab 151936, tied embeddings; bf16 in two shards",
            new JsonObject
            {
                ["architectures"] = new JsonArray("Qwen2ForCausalLM"), ["attention_dropout"] = 0.0, ["bos_token_id"] = 151643,
                ["eos_token_id"] = 151643, ["hidden_act"] = "silu", ["hidden_size"] = 896, ["initializer_range"] = 0.02,
                ["intermediate_size"] = 4864, ["max_position_embeddings"] = 32768, ["max_window_layers"] = 24, ["model_type"] = "qwen2",
                ["num_attention_heads"] = 14, ["num_hidden_layers"] = 24, ["num_key_value_heads"] = 2, ["rms_norm_eps"] = 1e-06,
                ["rope_theta"] = 1000000.0, ["sliding_window"] = 32768, ["tie_word_embeddings"] = true, ["torch_dtype"] = "bfloat16",
                ["transformers_version"] = "4.40.1", ["use_cache"] = true, ["use_sliding_window"] = false, ["vocab_size"] = 151936,
            }, 500_000_000),
    ];

    public static Shape? Find(string name) => All.FirstOrDefault(s => s.Name == name);
}
