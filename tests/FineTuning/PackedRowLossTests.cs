using Forgetless.FineTuning;
using Forgetless.Model;
using static TorchSharp.torch;

namespace Forgetless.Tests.FineTuning;

/// <summary>
/// Packed rows do not attend across documents: the loss of a packed row (as training computes it, from
/// <see cref="TokenBatch"/>) is the sum of the losses of its documents scored alone, each from its own first token.
/// </summary>
public sealed class PackedRowLossTests
{
    private const int Eos = 28;

    /// <summary>Σ −log p(doc[t] | doc[..t]) over t ≥ 1 where the mask is set, from a plain forward of the document alone.</summary>
    private static (double Sum, int Targets) AloneLoss(CausalLM model, int[] doc, bool[] mask)
    {
        using var _ = no_grad();
        using var ids = tensor(doc.Select(t => (long)t).ToArray(), [1, doc.Length]);
        using var logits = model.Forward(ids);
        var v = (int)logits.shape[2];
        var flat = logits.contiguous().data<float>().ToArray();
        double sum = 0;
        int targets = 0;
        for (int t = 1; t < doc.Length; t++)
        {
            if (!mask[t]) continue;
            var row = flat.AsSpan((t - 1) * v, v);
            double max = double.NegativeInfinity;
            foreach (var x in row) max = Math.Max(max, x);
            double z = 0;
            foreach (var x in row) z += Math.Exp(x - max);
            sum += -(row[doc[t]] - max - Math.Log(z));
            targets++;
        }
        return (sum, targets);
    }

    [Fact]
    public void The_loss_of_a_packed_row_is_the_sum_of_its_documents_losses_alone()
    {
        using var model = ModelFactory.Create(FineTuneFixture.TinyConfig, seed: 11);
        // A plain text (loss on every token and its eos) and an instruction (loss on the response and eos only),
        // packed into one row of 14 with two padding tokens, as prepare writes them.
        int[] text = [4, 2, 9, 7, 1, Eos];
        bool[] textMask = [true, true, true, true, true, true];
        int[] instruction = [3, 8, 5, 6, 10, 12, Eos];
        bool[] instructionMask = [false, false, false, true, true, true, true];
        int[] ids = [.. text, .. instruction, Eos, Eos];
        bool[] mask = [.. textMask, .. instructionMask, false, false];
        int[] segments = [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 0, 0];
        segments = segments[..ids.Length];
        var packed = new PreparedRow(ids, mask, text.Length + instruction.Length, "replay", segments);

        using var batch = TokenBatch.Of([packed]);
        double packedLoss;
        using (no_grad())
        {
            using var logits = batch.Logits(model);
            using var nll = LossProbe.TokenNll(logits, batch.Targets);
            using var sum = nll.mul(batch.TargetMask).sum();
            packedLoss = sum.item<float>();
        }

        var a = AloneLoss(model, text, textMask);
        var b = AloneLoss(model, instruction, instructionMask);
        batch.TargetTokens.Should().Be(a.Targets + b.Targets, "the first token of the second document is no target: nothing of its own precedes it");
        packedLoss.Should().BeApproximately(a.Sum + b.Sum, 1e-4);
    }
}
