using System.Text.Json;
using System.Text.Json.Nodes;

namespace Forgetless.Model;

/// <summary>Reads and writes HF <c>config.json</c>, with the defaults HF's config classes use.</summary>
internal static class ModelConfigJson
{
    public static ModelConfig Read(string json, string source)
    {
        JsonObject o;
        try
        {
            o = JsonNode.Parse(json) as JsonObject ?? throw new InvalidDataException($"{source}: expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not valid JSON: {e.Message}", e);
        }

        var type = o["model_type"]?.GetValue<string>()
            ?? throw new InvalidDataException($"{source}: missing 'model_type' (supported: {string.Join(", ", ModelFactory.SupportedModelTypes)})");
        if (!ModelFactory.SupportedModelTypes.Contains(type))
            throw new NotSupportedException(
                $"{source}: model_type '{type}' is not supported; supported model types: {string.Join(", ", ModelFactory.SupportedModelTypes)}");

        var r = new Reader(o, source);
        var config = type == "gpt2" ? ReadGpt2(r) : ReadLlamaFamily(r, type);
        return config with
        {
            Raw = o,
            BosTokenId = r.OptInt("bos_token_id"),
            EosTokenIds = r.IntOrList("eos_token_id"),
            PadTokenId = r.OptInt("pad_token_id"),
            InitializerRange = r.OptDouble("initializer_range") ?? 0.02,
        };
    }

    private static ModelConfig ReadLlamaFamily(Reader r, string type)
    {
        int hidden = r.Int("hidden_size"), heads = r.Int("num_attention_heads");
        if (hidden % heads != 0 && r.OptInt("head_dim") is null)
            throw new InvalidDataException($"{r.Source}: hidden_size {hidden} is not divisible by num_attention_heads {heads} and no head_dim is given");
        var kvHeads = r.OptInt("num_key_value_heads") ?? heads;
        if (heads % kvHeads != 0)
            throw new InvalidDataException($"{r.Source}: num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}");
        var act = r.OptString("hidden_act") ?? "silu";
        if (act is not ("silu" or "swish"))
            throw new NotSupportedException($"{r.Source}: hidden_act '{act}' is not supported for {type}; expected 'silu'");
        return new ModelConfig
        {
            ModelType = type,
            VocabSize = r.Int("vocab_size"),
            HiddenSize = hidden,
            NumHiddenLayers = r.Int("num_hidden_layers"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = r.OptInt("head_dim") ?? hidden / heads,
            IntermediateSize = r.Int("intermediate_size"),
            MaxPositionEmbeddings = r.OptInt("max_position_embeddings") ?? 2048,
            NormEps = r.OptDouble("rms_norm_eps") ?? 1e-6,
            RopeTheta = r.OptDouble("rope_theta") ?? 10000,
            RopeScaling = ReadRopeScaling(r),
            TieWordEmbeddings = r.OptBool("tie_word_embeddings") ?? false,
            // Qwen2 always has q/k/v biases and no flag for it.
            AttentionBias = type == "qwen2" || (r.OptBool("attention_bias") ?? false),
            MlpBias = r.OptBool("mlp_bias") ?? false,
            SlidingWindow = type == "mistral" ? r.OptInt("sliding_window") : null,
            HiddenAct = "silu",
        };
    }

    private static ModelConfig ReadGpt2(Reader r)
    {
        int hidden = r.Int("n_embd"), heads = r.Int("n_head");
        if (hidden % heads != 0)
            throw new InvalidDataException($"{r.Source}: n_embd {hidden} is not divisible by n_head {heads}");
        var act = r.OptString("activation_function") ?? "gelu_new";
        if (act != "gelu_new")
            throw new NotSupportedException($"{r.Source}: activation_function '{act}' is not supported for gpt2; expected 'gelu_new'");
        return new ModelConfig
        {
            ModelType = "gpt2",
            VocabSize = r.Int("vocab_size"),
            HiddenSize = hidden,
            NumHiddenLayers = r.Int("n_layer"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = heads,
            HeadDim = hidden / heads,
            IntermediateSize = r.OptInt("n_inner") ?? 4 * hidden,
            MaxPositionEmbeddings = r.OptInt("n_positions") ?? 1024,
            NormEps = r.OptDouble("layer_norm_epsilon") ?? 1e-5,
            TieWordEmbeddings = r.OptBool("tie_word_embeddings") ?? true,
            HiddenAct = act,
        };
    }

    private static RopeScaling? ReadRopeScaling(Reader r)
    {
        if (r.Object["rope_scaling"] is not JsonObject s) return null;
        var type = (s["rope_type"] ?? s["type"])?.GetValue<string>() ?? "default";
        var where = $"{r.Source}: rope_scaling";
        double Num(string key) => s[key]?.GetValue<double>() ?? throw new InvalidDataException($"{where}: missing '{key}' for type '{type}'");
        return type switch
        {
            "default" => null,
            "linear" => new RopeScaling("linear", Num("factor")),
            "llama3" => new RopeScaling("llama3", Num("factor"), Num("low_freq_factor"), Num("high_freq_factor"),
                (int)Num("original_max_position_embeddings")),
            _ => throw new NotSupportedException($"{where}: type '{type}' is not supported; supported: default, linear, llama3"),
        };
    }

    public static JsonObject Write(ModelConfig c)
    {
        var o = c.Raw?.DeepClone() as JsonObject ?? [];
        o["model_type"] = c.ModelType;
        o["vocab_size"] = c.VocabSize;
        o["tie_word_embeddings"] = c.TieWordEmbeddings;
        o["initializer_range"] = c.InitializerRange;
        if (c.ModelType == "gpt2")
        {
            o["architectures"] = new JsonArray("GPT2LMHeadModel");
            o["n_embd"] = c.HiddenSize;
            o["n_layer"] = c.NumHiddenLayers;
            o["n_head"] = c.NumAttentionHeads;
            o["n_inner"] = c.IntermediateSize;
            o["n_positions"] = c.MaxPositionEmbeddings;
            o["layer_norm_epsilon"] = c.NormEps;
            o["activation_function"] = c.HiddenAct;
        }
        else
        {
            o["architectures"] ??= new JsonArray(c.ModelType switch
            {
                "qwen2" => "Qwen2ForCausalLM",
                "mistral" => "MistralForCausalLM",
                _ => "LlamaForCausalLM",
            });
            o["hidden_size"] = c.HiddenSize;
            o["num_hidden_layers"] = c.NumHiddenLayers;
            o["num_attention_heads"] = c.NumAttentionHeads;
            o["num_key_value_heads"] = c.NumKeyValueHeads;
            o["head_dim"] = c.HeadDim;
            o["intermediate_size"] = c.IntermediateSize;
            o["max_position_embeddings"] = c.MaxPositionEmbeddings;
            o["rms_norm_eps"] = c.NormEps;
            o["rope_theta"] = c.RopeTheta;
            o["hidden_act"] = c.HiddenAct;
            if (c.ModelType != "qwen2") o["attention_bias"] = c.AttentionBias;
            o["mlp_bias"] = c.MlpBias;
            if (c.ModelType == "mistral") o["sliding_window"] = c.SlidingWindow;
            o["rope_scaling"] = c.RopeScaling switch
            {
                null => null,
                { Type: "linear" } s => new JsonObject { ["rope_type"] = "linear", ["factor"] = s.Factor },
                var s => new JsonObject
                {
                    ["rope_type"] = s.Type,
                    ["factor"] = s.Factor,
                    ["low_freq_factor"] = s.LowFreqFactor,
                    ["high_freq_factor"] = s.HighFreqFactor,
                    ["original_max_position_embeddings"] = s.OriginalMaxPositionEmbeddings,
                },
            };
        }
        o["bos_token_id"] = c.BosTokenId;
        o["eos_token_id"] = c.EosTokenIds.Count switch
        {
            0 => null,
            1 => c.EosTokenIds[0],
            _ => new JsonArray(c.EosTokenIds.Select(i => (JsonNode)i).ToArray()),
        };
        o["pad_token_id"] = c.PadTokenId;
        return o;
    }

    /// <summary>Typed access to config keys with errors that name the file and key.</summary>
    private sealed class Reader(JsonObject o, string source)
    {
        public JsonObject Object => o;
        public string Source => source;

        public int Int(string key) => OptInt(key) ?? throw new InvalidDataException($"{source}: missing required key '{key}'");

        public int? OptInt(string key) => Get(key, n => n.GetValueKind() == JsonValueKind.Number ? (int?)n.GetValue<double>() : null, "an integer");

        public double? OptDouble(string key) => Get(key, n => n.GetValueKind() == JsonValueKind.Number ? (double?)n.GetValue<double>() : null, "a number");

        public bool? OptBool(string key) => Get(key, n => n.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? (bool?)n.GetValue<bool>() : null, "true or false");

        public string? OptString(string key) => Get(key, n => n.GetValueKind() == JsonValueKind.String ? n.GetValue<string>() : null, "a string");

        public IReadOnlyList<int> IntOrList(string key) => o[key] switch
        {
            null => [],
            JsonArray a => a.Select(n => (int)n!.GetValue<double>()).ToArray(),
            var n => [(int)n.GetValue<double>()],
        };

        private T? Get<T>(string key, Func<JsonNode, T?> read, string expected)
        {
            var node = o[key];
            if (node is null) return default;
            return read(node) ?? throw new InvalidDataException($"{source}: '{key}' should be {expected}, got {node.ToJsonString()}");
        }
    }
}
