using System.Text.Json.Nodes;

namespace Forgetless.Tests.Model.Fixtures;

/// <summary>Dimensions of a tiny test model.</summary>
public sealed record TinySpec(
    string ModelType,
    int Vocab = 11,
    int Hidden = 8,
    int Layers = 2,
    int Heads = 2,
    int KvHeads = 2,
    int Intermediate = 12,
    int MaxPositions = 32,
    bool Tied = false,
    JsonObject? RopeScaling = null,
    double RopeTheta = 10000,
    int? SlidingWindow = null,
    int? HeadDimOverride = null,
    bool AttentionBias = false,
    bool MlpBias = false)
{
    public int HeadDim => HeadDimOverride ?? Hidden / Heads;
}

/// <summary>A tiny checkpoint: its config.json text and its tensors under the HF key names.</summary>
public sealed record TinyCheckpoint(TinySpec Spec, string ConfigJson, Dictionary<string, TestTensor> Tensors)
{
    /// <summary>Writes config.json and model.safetensors (optionally in another dtype) into a new folder.</summary>
    public string WriteTo(string directory, string dtype = "F32")
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "config.json"), ConfigJson);
        TestSafetensors.Write(Path.Combine(directory, "model.safetensors"), Tensors, dtype);
        return directory;
    }
}

/// <summary>Builds tiny random checkpoints in the real HF layout (GPT-2 Conv1D weights stored [in, out]).</summary>
public static class TinyCheckpoints
{
    public static TinyCheckpoint Create(TinySpec spec, int seed = 1)
    {
        var random = new Random(seed);
        var tensors = new Dictionary<string, TestTensor>();
        void Add(string name, double scale, double offset, params long[] shape)
        {
            var n = shape.Aggregate(1L, (a, b) => a * b);
            var data = new float[n];
            for (var i = 0; i < n; i++) data[i] = (float)(offset + scale * (random.NextDouble() * 2 - 1));
            tensors[name] = new TestTensor(shape, data);
        }
        var d = spec.Hidden;
        if (spec.ModelType == "gpt2")
        {
            Add("transformer.wte.weight", 0.5, 0, spec.Vocab, d);
            Add("transformer.wpe.weight", 0.3, 0, spec.MaxPositions, d);
            for (var l = 0; l < spec.Layers; l++)
            {
                var p = $"transformer.h.{l}.";
                Add(p + "ln_1.weight", 0.2, 1, d);
                Add(p + "ln_1.bias", 0.1, 0, d);
                Add(p + "attn.c_attn.weight", 0.4, 0, d, 3 * d);
                Add(p + "attn.c_attn.bias", 0.1, 0, 3 * d);
                Add(p + "attn.c_proj.weight", 0.4, 0, d, d);
                Add(p + "attn.c_proj.bias", 0.1, 0, d);
                Add(p + "ln_2.weight", 0.2, 1, d);
                Add(p + "ln_2.bias", 0.1, 0, d);
                Add(p + "mlp.c_fc.weight", 0.4, 0, d, spec.Intermediate);
                Add(p + "mlp.c_fc.bias", 0.1, 0, spec.Intermediate);
                Add(p + "mlp.c_proj.weight", 0.4, 0, spec.Intermediate, d);
                Add(p + "mlp.c_proj.bias", 0.1, 0, d);
            }
            Add("transformer.ln_f.weight", 0.2, 1, d);
            Add("transformer.ln_f.bias", 0.1, 0, d);
            if (!spec.Tied) Add("lm_head.weight", 0.5, 0, spec.Vocab, d);
        }
        else
        {
            var hd = spec.HeadDim;
            Add("model.embed_tokens.weight", 0.5, 0, spec.Vocab, d);
            for (var l = 0; l < spec.Layers; l++)
            {
                var p = $"model.layers.{l}.";
                Add(p + "input_layernorm.weight", 0.2, 1, d);
                Add(p + "self_attn.q_proj.weight", 0.4, 0, spec.Heads * hd, d);
                Add(p + "self_attn.k_proj.weight", 0.4, 0, spec.KvHeads * hd, d);
                Add(p + "self_attn.v_proj.weight", 0.4, 0, spec.KvHeads * hd, d);
                if (spec.ModelType == "qwen2" || spec.AttentionBias)
                {
                    Add(p + "self_attn.q_proj.bias", 0.3, 0, spec.Heads * hd);
                    Add(p + "self_attn.k_proj.bias", 0.3, 0, spec.KvHeads * hd);
                    Add(p + "self_attn.v_proj.bias", 0.3, 0, spec.KvHeads * hd);
                }
                Add(p + "self_attn.o_proj.weight", 0.4, 0, d, spec.Heads * hd);
                if (spec.AttentionBias) Add(p + "self_attn.o_proj.bias", 0.3, 0, d);
                Add(p + "post_attention_layernorm.weight", 0.2, 1, d);
                Add(p + "mlp.gate_proj.weight", 0.4, 0, spec.Intermediate, d);
                Add(p + "mlp.up_proj.weight", 0.4, 0, spec.Intermediate, d);
                Add(p + "mlp.down_proj.weight", 0.4, 0, d, spec.Intermediate);
                if (spec.MlpBias)
                {
                    Add(p + "mlp.gate_proj.bias", 0.3, 0, spec.Intermediate);
                    Add(p + "mlp.up_proj.bias", 0.3, 0, spec.Intermediate);
                    Add(p + "mlp.down_proj.bias", 0.3, 0, d);
                }
            }
            Add("model.norm.weight", 0.2, 1, d);
            if (!spec.Tied) Add("lm_head.weight", 0.5, 0, spec.Vocab, d);
        }
        return new TinyCheckpoint(spec, Config(spec).ToJsonString(), tensors);
    }

    private static JsonObject Config(TinySpec s) => s.ModelType == "gpt2"
        ? new JsonObject
        {
            ["model_type"] = "gpt2", ["architectures"] = new JsonArray("GPT2LMHeadModel"),
            ["vocab_size"] = s.Vocab, ["n_embd"] = s.Hidden, ["n_layer"] = s.Layers, ["n_head"] = s.Heads,
            ["n_inner"] = s.Intermediate, ["n_positions"] = s.MaxPositions, ["layer_norm_epsilon"] = 1e-5,
            ["activation_function"] = "gelu_new", ["tie_word_embeddings"] = s.Tied,
            ["bos_token_id"] = 0, ["eos_token_id"] = 1,
        }
        : new JsonObject
        {
            ["model_type"] = s.ModelType, ["vocab_size"] = s.Vocab, ["hidden_size"] = s.Hidden,
            ["num_hidden_layers"] = s.Layers, ["num_attention_heads"] = s.Heads, ["num_key_value_heads"] = s.KvHeads,
            ["intermediate_size"] = s.Intermediate, ["max_position_embeddings"] = s.MaxPositions,
            ["rms_norm_eps"] = 1e-6, ["rope_theta"] = s.RopeTheta, ["rope_scaling"] = s.RopeScaling?.DeepClone(),
            ["hidden_act"] = "silu", ["tie_word_embeddings"] = s.Tied, ["sliding_window"] = s.SlidingWindow,
            ["bos_token_id"] = 0, ["eos_token_id"] = 1,
            ["head_dim"] = s.HeadDimOverride, ["attention_bias"] = s.AttentionBias, ["mlp_bias"] = s.MlpBias,
        };
}

/// <summary>A temp folder removed when the test ends.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "forgetless-model-" + Guid.NewGuid().ToString("N"));

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
