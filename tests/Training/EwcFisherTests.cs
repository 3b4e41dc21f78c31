using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Peft;
using Forgetless.Tests.FineTuning;
using Forgetless.Tests.Peft;
using Forgetless.Training.Terms;
using static TorchSharp.torch;

namespace Forgetless.Tests.Training;

/// <summary>
/// EWC's Fisher per token against references that share nothing with it but the model: a fresh forward pass and a
/// gradient for every single token (empirical), and the exact expectation over every label of the vocabulary (sampled).
/// </summary>
[Collection(TorchSerial.Name)]
public sealed class EwcFisherTests
{
    private static List<PreparedRow> Rows(int count, int length) => Enumerable.Range(0, count).Select(i => new PreparedRow(
        Enumerable.Range(0, length).Select(t => (5 * i + 3 * t + 1) % 29).ToArray(),
        Enumerable.Range(0, length).Select(t => t >= 2).ToArray(), length, "replay")).ToList();

    /// <summary>Σ over the trainable tensors of the squared gradient of log p(label) at position t of a row, from its own forward pass.</summary>
    private static Dictionary<string, double[]> SquaredGradient(TunedModel tuned, PreparedRow row, int t, Func<Tensor, long> label)
    {
        using var scope = NewDisposeScope();
        var ids = tensor(row.InputIds.Take(row.Length).Select(x => (long)x).ToArray(), [1, row.Length]);
        var logProbs = nn.functional.log_softmax(tuned.Model.Forward(ids)[0, t], -1);
        var parameters = tuned.Trainable.Select(p => (Tensor)p.parameter).ToList();
        var grads = TorchSharp.torch.autograd.grad([logProbs[label(logProbs)]], parameters);
        return tuned.Trainable.Select((p, i) => (p.name, grads[i].Squared().data<float>().Select(v => (double)v).ToArray()))
            .ToDictionary(x => x.name, x => x.Item2);
    }

    private static TunedModel Tuned(FineTuneFixture f)
    {
        var tuned = f.Options("finetune.method=lora").Apply(ModelFolder.LoadModel(f.ModelDirectory), seed: 3);
        using (no_grad())
        using (var g = new Generator(2))
            foreach (var (_, p) in tuned.Trainable) p.add_(randn(p.shape, generator: g).mul(Scalars.Of(0.3)), Scalars.One); // lora_B ≠ 0: every tensor gets a gradient
        tuned.Model.eval();
        return tuned;
    }

    [Fact]
    public void The_empirical_Fisher_is_the_mean_over_tokens_of_each_token_s_squared_gradient()
    {
        using var f = new FineTuneFixture();
        using var tuned = Tuned(f);
        var rows = Rows(3, 9); // positions 1..7 predict the scored tokens 2..8: 7 per row, all taken
        var fisher = Ewc.ComputeFisher(tuned, rows, FisherLabels.Empirical, tokensPerRow: 100, seed: 1);

        var expected = tuned.Trainable.ToDictionary(p => p.name, p => new double[p.parameter.numel()]);
        int samples = 0;
        foreach (var row in rows)
            for (int t = 1; t < row.Length - 1; t++)
            {
                var next = row.InputIds[t + 1];
                foreach (var (name, g2) in SquaredGradient(tuned, row, t, _ => next))
                    for (int i = 0; i < g2.Length; i++) expected[name][i] += g2[i];
                samples++;
            }
        samples.Should().Be(21);
        foreach (var (name, sum) in expected)
        {
            var got = TensorAssert.Values(fisher[name]);
            var want = sum.Select(v => v / samples).ToArray();
            var scale = want.Max();
            scale.Should().BeGreaterThan(0, name);
            for (int i = 0; i < want.Length; i++) Math.Abs(got[i] - want[i]).Should().BeLessThan(1e-4 * scale + 1e-12, $"{name}[{i}]");
        }
    }

    [Fact]
    public void The_sampled_Fisher_estimates_the_expectation_over_the_model_s_own_labels()
    {
        using var f = new FineTuneFixture();
        using var tuned = Tuned(f);
        var rows = Rows(2, 5); // 3 scored positions per row

        // Exact Fisher information per token: Σ_y p(y | context) · (∇ log p(y | context))², over all 64 labels.
        double exactTrace = 0;
        int positions = 0;
        foreach (var row in rows)
            for (int t = 1; t < row.Length - 1; t++)
            {
                float[] p;
                using (no_grad())
                using (var ids = tensor(row.InputIds.Take(row.Length).Select(x => (long)x).ToArray(), [1, row.Length]))
                using (var logits = tuned.Model.Forward(ids))
                using (var probs = nn.functional.softmax(logits[0, t], -1))
                    p = probs.data<float>().ToArray();
                for (int y = 0; y < p.Length; y++)
                    exactTrace += p[y] * SquaredGradient(tuned, row, t, _ => y).Values.Sum(g => g.Sum());
                positions++;
            }
        exactTrace /= positions;

        // The estimate draws one label per token; 160 copies of the rows give 960 independent draws.
        var copies = Enumerable.Repeat(rows, 160).SelectMany(r => r).ToList();
        var sampled = Ewc.ComputeFisher(tuned, copies, FisherLabels.Sampled, tokensPerRow: 100, seed: 5);
        double sampledTrace = sampled.Values.Sum(v => v.sum().item<float>());
        sampledTrace.Should().BeApproximately(exactTrace, 0.05 * exactTrace); // measured 0.3% off

        var empirical = Ewc.ComputeFisher(tuned, rows, FisherLabels.Empirical, tokensPerRow: 100, seed: 5);
        double empiricalTrace = empirical.Values.Sum(v => v.sum().item<float>());
        Math.Abs(empiricalTrace - exactTrace).Should().BeGreaterThan(0.2 * exactTrace, "the data's labels are not the model's");
    }

    [Fact]
    public void Only_the_drawn_positions_count_and_the_draw_is_seeded()
    {
        using var f = new FineTuneFixture();
        using var tuned = Tuned(f);
        var rows = Rows(2, 20);
        var a = Ewc.ComputeFisher(tuned, rows, FisherLabels.Sampled, tokensPerRow: 4, seed: 9);
        var b = Ewc.ComputeFisher(tuned, rows, FisherLabels.Sampled, tokensPerRow: 4, seed: 9);
        var c = Ewc.ComputeFisher(tuned, rows, FisherLabels.Sampled, tokensPerRow: 4, seed: 10);
        foreach (var name in a.Keys)
        {
            TensorAssert.Values(a[name]).Should().Equal(TensorAssert.Values(b[name]), name);
        }
        a.Keys.Any(n => !TensorAssert.Values(a[n]).SequenceEqual(TensorAssert.Values(c[n]))).Should().BeTrue();
    }
}
