using System.Text.Json.Nodes;

namespace Forgetless.Model;

/// <summary>RoPE frequency scaling as HF writes it in <c>rope_scaling</c>.</summary>
public sealed record RopeScaling(
    string Type,
    double Factor,
    double LowFreqFactor = 1,
    double HighFreqFactor = 4,
    int OriginalMaxPositionEmbeddings = 8192);

/// <summary>
/// The parts of an HF <c>config.json</c> the architectures need, under one set of names for every
/// family (GPT-2's <c>n_embd</c>/<c>n_layer</c>/... are mapped onto these). <see cref="Raw"/> keeps the
/// original JSON so that saving does not drop keys we do not model.
/// </summary>
public sealed record ModelConfig
{
    public required string ModelType { get; init; }
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int NumHiddenLayers { get; init; }
    public required int NumAttentionHeads { get; init; }
    public required int NumKeyValueHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int IntermediateSize { get; init; }
    public required int MaxPositionEmbeddings { get; init; }
    /// <summary>rms_norm_eps (llama family) or layer_norm_epsilon (gpt2).</summary>
    public required double NormEps { get; init; }
    public double RopeTheta { get; init; } = 10000;
    public RopeScaling? RopeScaling { get; init; }
    public bool TieWordEmbeddings { get; init; }
    public bool AttentionBias { get; init; }
    public bool MlpBias { get; init; }
    /// <summary>Mistral's sliding attention window; null when the model attends to everything.</summary>
    public int? SlidingWindow { get; init; }
    public string HiddenAct { get; init; } = "silu";
    public double InitializerRange { get; init; } = 0.02;
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int? PadTokenId { get; init; }
    public JsonObject? Raw { get; init; }

    /// <summary>A Llama config with HF's defaults for whatever is not given; handy for tests and pretraining.</summary>
    public static ModelConfig Llama(int vocabSize, int hiddenSize, int numLayers, int numHeads, int? numKvHeads = null,
        int? intermediateSize = null, int maxPositions = 2048, bool tieWordEmbeddings = false) => new()
    {
        ModelType = "llama",
        VocabSize = vocabSize,
        HiddenSize = hiddenSize,
        NumHiddenLayers = numLayers,
        NumAttentionHeads = numHeads,
        NumKeyValueHeads = numKvHeads ?? numHeads,
        HeadDim = hiddenSize / numHeads,
        // Llama's SwiGLU width: about 8/3 of the model width, rounded up to a multiple of 64.
        IntermediateSize = intermediateSize ?? (hiddenSize * 8 / 3 + 63) / 64 * 64,
        MaxPositionEmbeddings = maxPositions,
        NormEps = 1e-5,
        TieWordEmbeddings = tieWordEmbeddings,
    };

    public JsonObject ToJson() => ModelConfigJson.Write(this);

    public static ModelConfig FromJson(string json, string source = "config.json") => ModelConfigJson.Read(json, source);
}
