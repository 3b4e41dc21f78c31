using Forgetless.Model.Safetensors;
using Forgetless.Pretraining;
using Forgetless.Runs;
using Forgetless.Tokenization;
using Microsoft.Extensions.Logging.Abstractions;

namespace Forgetless.Tests.Pretraining;

public sealed class PretrainerTests : IDisposable
{
    private readonly TempDirectory dir = new();

    public void Dispose() => dir.Dispose();

    private PretrainOptions Options()
    {
        var lines = Enumerable.Range(0, 60).Select(i => $"The cat number {i} sat on the mat and looked at dog {i % 7}.").ToList();
        string corpus = dir.File("corpus.txt", string.Join("\n", lines));
        string heldout = dir.File("heldout.txt", string.Join("\n", lines.Take(10).Select(l => l.Replace("cat", "bird"))));
        string tokenizer = Path.Combine(dir.Path, "tokenizer");
        if (!Directory.Exists(tokenizer))
        {
            var model = BpeTrainer.Train(BpeTrainer.CountWords(lines), new BpeTrainerOptions { VocabSize = 300, SpecialTokens = [TokenizerFiles.EndOfText] });
            TokenizerFiles.Write(model, tokenizer);
        }
        return new PretrainOptions
        {
            Corpus = corpus, Heldout = heldout, Tokenizer = tokenizer,
            Layers = 1, Hidden = 16, Heads = 2, KvHeads = 1, MaxPositions = 32, SeqLen = 16, Batch = 2,
            Steps = 6, WarmupSteps = 2, LogEvery = 1, EvalEvery = 3, EvalWindows = 2, CheckpointEvery = 2,
        };
    }

    private (byte[] Weights, string Metrics) Train(PretrainOptions options, string work, Action<long>? afterStep = null)
    {
        Directory.CreateDirectory(work);
        var result = new Pretrainer(options, seed: 7, p => p, NullLogger.Instance) { AfterStep = afterStep }.Run(work, CancellationToken.None);
        string file = Path.Combine(work, "model.safetensors");
        SafetensorsWriter.Write(file, result.Model.CheckpointTensors());
        return (File.ReadAllBytes(file), File.ReadAllText(Path.Combine(work, Pretrainer.MetricsFile)));
    }

    [Fact]
    public void The_same_seed_and_inputs_give_the_same_loss_curve_and_weights()
    {
        var options = Options();
        var a = Train(options, Path.Combine(dir.Path, "a"));
        var b = Train(options, Path.Combine(dir.Path, "b"));

        b.Metrics.Should().Be(a.Metrics);
        b.Weights.Should().Equal(a.Weights);
        a.Metrics.Split('\n', StringSplitOptions.RemoveEmptyEntries).Should().HaveCount(6);
    }

    [Fact]
    public void An_interrupted_run_resumes_to_the_same_weights_and_curve()
    {
        var options = Options();
        var whole = Train(options, Path.Combine(dir.Path, "whole"));

        string work = Path.Combine(dir.Path, "interrupted");
        var stop = () => Train(options, work, step => { if (step == 3) throw new OperationCanceledException("killed"); });
        stop.Should().Throw<OperationCanceledException>();
        File.Exists(Path.Combine(work, "checkpoint.safetensors")).Should().BeTrue("a checkpoint was written at step 2");
        var resumed = Train(options, work);

        resumed.Weights.Should().Equal(whole.Weights);
        resumed.Metrics.Should().Be(whole.Metrics);
    }

    [Fact]
    public void The_bigram_baseline_prefers_seen_pairs()
    {
        var bigram = new BigramBaseline([1, 2, 1, 2, 1, 2, 3], vocabSize: 5);
        double seen = bigram.Nll([[2, 1, 2]], start: 1, alpha: 1);
        double unseen = bigram.Nll([[3, 3, 3]], start: 1, alpha: 1);
        seen.Should().BeLessThan(unseen);
        bigram.Best([[2, 1, 2]], 1).Nll.Should().BeLessThanOrEqualTo(seen);
    }
}
