using Forgetless.Configuration;

namespace Forgetless.Pretraining;

/// <summary>
/// The <c>pretrain</c> section: how the embedded base model is made from the general text. The
/// defaults fit about an hour on a 2-core CPU and a checkpoint under 25 MB. The context
/// (maxPositions) equals the training window: RoPE positions never seen in training extrapolate badly.
/// </summary>
public sealed class PretrainOptions : IValidatableOptions
{
    /// <summary>General text, one paragraph per line (gzip allowed); the model learns these facts and this English.</summary>
    public string Corpus { get; set; } = "data/corpora/pretrain.txt.gz";

    /// <summary>Held-out text for the validation loss printed while training.</summary>
    public string Heldout { get; set; } = "data/corpora/heldout.txt";

    /// <summary>Suites measured for the model card: held-out documents, the fact probe, the cloze items.</summary>
    public string HeldoutSuite { get; set; } = "data/corpora/heldout.jsonl";
    public string FactsSuite { get; set; } = "data/corpora/facts.jsonl";
    public string ClozeSuite { get; set; } = "data/corpora/cloze.jsonl";

    /// <summary>Folder with the tokenizer files (tokenizer.json and friends).</summary>
    public string Tokenizer { get; set; } = "data/tokenizer";

    /// <summary>Where the finished model folder is installed (Hugging Face layout).</summary>
    public string Output { get; set; } = "data/models/forgetless-base";

    public int Layers { get; set; } = 4;
    public int Hidden { get; set; } = 256;
    public int Heads { get; set; } = 4;
    public int KvHeads { get; set; } = 4;
    /// <summary>SwiGLU width; 0 picks Llama's rule (8/3 of hidden, rounded up to 64).</summary>
    public int Intermediate { get; set; }
    public int MaxPositions { get; set; } = 256;
    /// <summary>Tied input and output embeddings halve the vocabulary's share of the checkpoint.</summary>
    public bool TieEmbeddings { get; set; } = true;

    public int SeqLen { get; set; } = 256;
    public int Batch { get; set; } = 8;
    public int Steps { get; set; } = 3000;
    public int WarmupSteps { get; set; } = 60;
    public double LearningRate { get; set; } = 2e-3;
    public double MinLrRatio { get; set; } = 0.1;
    public double WeightDecay { get; set; } = 0.1;
    public double ClipNorm { get; set; } = 1.0;

    /// <summary>
    /// Torch compute threads. One: on a busy 2-core machine a second thread mostly waits for the first
    /// (measured here: 1 thread 4-5x faster under load), and the loss curve is reproducible per thread count.
    /// </summary>
    public int Threads { get; set; } = 1;

    [Configuration.DoesNotChangeResults] // logs only; the stage's results do not depend on it
    public int LogEvery { get; set; } = 10;
    public int EvalEvery { get; set; } = 250;
    /// <summary>Held-out windows scored at each evaluation.</summary>
    public int EvalWindows { get; set; } = 64;
    [Configuration.DoesNotChangeResults] // a resumed run ends with the bytes of an uninterrupted one
    public int CheckpointEvery { get; set; } = 25;

    public IEnumerable<string> Validate()
    {
        foreach (var (name, value) in new[] { ("layers", Layers), ("hidden", Hidden), ("heads", Heads), ("kvHeads", KvHeads),
                     ("seqLen", SeqLen), ("batch", Batch), ("steps", Steps), ("logEvery", LogEvery), ("evalEvery", EvalEvery),
                     ("evalWindows", EvalWindows), ("checkpointEvery", CheckpointEvery), ("threads", Threads), ("maxPositions", MaxPositions) })
            if (value <= 0) yield return $"{name} = {value}: must be a positive number";
        if (Heads > 0 && Hidden % Heads != 0) yield return $"hidden = {Hidden}: must be a multiple of heads ({Heads})";
        if (KvHeads > 0 && Heads % KvHeads != 0) yield return $"kvHeads = {KvHeads}: must divide heads ({Heads})";
        if (SeqLen > MaxPositions) yield return $"seqLen = {SeqLen}: must not exceed maxPositions ({MaxPositions})";
        if (LearningRate <= 0) yield return $"learningRate = {LearningRate}: must be greater than 0";
        if (MinLrRatio is < 0 or > 1) yield return $"minLrRatio = {MinLrRatio}: must be between 0 and 1";
        if (WarmupSteps < 0) yield return $"warmupSteps = {WarmupSteps}: must be 0 or more";
    }
}
