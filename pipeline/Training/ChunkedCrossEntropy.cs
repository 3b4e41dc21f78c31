using Forgetless.Model;
using Forgetless.Model.Devices;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Training;

/// <summary>
/// The weighted next-token cross-entropy Σᵢ wᵢ·(logsumexp(hᵢ·Wᵀ) − hᵢ·W[yᵢ]) computed a few rows at a time, so that
/// the logits [N, V] of the whole micro-batch never exist (the approach of Liger Kernel's fused linear cross-entropy):
/// at a real vocabulary (Qwen2.5's 151,936) the logits of 256 tokens, their softmax and their gradient are 0.47 GB,
/// more than the NF4 weights of a 0.5B model. Each chunk's gradient is formed as soon as its logits are, since
/// d loss/d logits = wᵢ·(softmax − onehot(yᵢ)) needs nothing from later chunks: grad h = that · W, grad W = thatᵀ · h
/// (when W trains). Backward then only scales what forward kept ([N, D], plus [V, D] when W trains) by the incoming
/// gradient — the same multiplications as the unfused path, none twice. The weights w must be known in forward:
/// they are the task term's per-token weights (mask × row weight / the step's target tokens).
/// </summary>
public static class ChunkedCrossEntropy
{
    /// <summary>Logit bytes (f32) one chunk may hold; the chunk's softmax and gradient are the same size again.</summary>
    public const long ChunkBytes = 32L << 20;

    /// <summary>Under <see cref="ChunkedLoss.Auto"/>, chunk when a micro-batch's whole logits would take more than this (f32).</summary>
    public const long AutoAboveBytes = 128L << 20;

    /// <summary>
    /// Whether the task loss goes by chunks: never when a term reads the whole logits or the head is more than a bare
    /// matrix; under auto when the logits of <paramref name="tokens"/> over <paramref name="vocab"/> exceed
    /// <see cref="AutoAboveBytes"/> — real vocabularies (Qwen2.5's 151,936 at 256 tokens: 155 MB), not the embedded
    /// default's 8,192, whose path and numbers stay as they were — or when the head is stored in another type than the
    /// activations (<paramref name="headWidens"/>: qlora's 16-bit table), which unchunked autograd would keep a whole
    /// widened copy of, whatever the batch.
    /// </summary>
    public static bool Applies(ChunkedLoss setting, long tokens, long vocab, bool termsReadLogits, bool bareHead, bool headWidens = false) =>
        setting != ChunkedLoss.Off && !termsReadLogits && bareHead
        && (setting == ChunkedLoss.On || headWidens || 4 * tokens * vocab > AutoAboveBytes);

    /// <summary>Rows per chunk for a vocabulary of <paramref name="vocab"/>: as many as fit <see cref="ChunkBytes"/>, at least one.</summary>
    public static long RowsPerChunk(long vocab) => MixedPrecision.F32RowsWithin(ChunkBytes, vocab);

    /// <summary>
    /// The weighted loss (a scalar in the graph: gradients reach <paramref name="hidden"/>, and <paramref name="head"/>
    /// when it requires grad) and, detached, Σ mask·nll (the unweighted sum the task term reports).
    /// </summary>
    /// <param name="hidden">Final hidden states [N, D] of the scored positions.</param>
    /// <param name="head">The output projection [V, D] (a tied embedding or lm_head's weight; no bias).</param>
    /// <param name="targets">Next-token ids [N] int64.</param>
    /// <param name="weights">Per-token loss weights [N] f32.</param>
    /// <param name="mask">Per-token 0/1 [N] f32 for the reported sum.</param>
    /// <param name="rowsPerChunk">Rows per chunk (tests); by default <see cref="RowsPerChunk"/> of the vocabulary.</param>
    /// <param name="headSliceRows">Head rows widened at a time when its type differs (tests); by default <see cref="MixedPrecision.SliceBytes"/> worth.</param>
    public static (Tensor Loss, Tensor MaskedNllSum) Of(Tensor hidden, Tensor head, Tensor targets, Tensor weights, Tensor mask, long? rowsPerChunk = null,
        long? headSliceRows = null)
    {
        var reported = new Reported { Rows = rowsPerChunk ?? RowsPerChunk(head.shape[0]), SliceRows = headSliceRows ?? MixedPrecision.SliceRows(head) };
        var loss = Function.apply(hidden, head, targets, weights, mask, reported);
        return (loss, reported.MaskedNllSum!);
    }

    /// <summary>
    /// Per-token negative log-likelihood [N] of <paramref name="targets"/> [N] under hidden · headᵀ, without gradients
    /// and without the whole logits: the probes' loss (validation, held-out) at a real vocabulary.
    /// </summary>
    public static Tensor TokenNll(Tensor hidden, Tensor head, Tensor targets, long? rowsPerChunk = null, long? headSliceRows = null)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        long n = hidden.shape[0], rows = rowsPerChunk ?? RowsPerChunk(head.shape[0]), slice = headSliceRows ?? MixedPrecision.SliceRows(head);
        var nll = empty(n, ScalarType.Float32, hidden.device);
        for (long start = 0; start < n; start += rows)
        {
            using var chunk = NewDisposeScope();
            long count = Math.Min(rows, n - start);
            nll.narrow(0, start, count).copy_(Chunk(hidden.narrow(0, start, count), head, targets.narrow(0, start, count).unsqueeze(1), slice).Nll);
        }
        return nll.MoveToOuterDisposeScope();
    }

    /// <summary>One chunk's logits [c, V] (f32), their log Σ exp [c, 1] and the targets' nll [c].</summary>
    private static (Tensor Logits, Tensor Lse, Tensor Nll) Chunk(Tensor h, Tensor head, Tensor targets, long sliceRows)
    {
        var logits = Project(h, head, sliceRows);
        var lse = LogSumExp(logits);
        return (logits, lse, lse.sub(logits.gather(1, targets)).squeeze(1));
    }

    /// <summary>h · headᵀ → [c, V] f32; a head of another type than the activations widened a slice at a time (no autograd here).</summary>
    private static Tensor Project(Tensor h, Tensor head, long slice) => MixedPrecision.As(MixedPrecision.Linear(h, head, slice), ScalarType.Float32);

    /// <summary>d · head → [c, D] in <paramref name="type"/> for d [c, V] f32, a head of another type widened a slice at a time.</summary>
    private static Tensor BackProject(Tensor d, Tensor head, ScalarType type, long slice)
    {
        if (head.dtype == type) return MixedPrecision.As(d, type).matmul(head);
        long vocab = head.shape[0];
        var result = zeros(new[] { d.shape[0], head.shape[1] }, type, d.device);
        for (long start = 0; start < vocab; start += slice)
        {
            long count = Math.Min(slice, vocab - start);
            using var w = head.narrow(0, start, count).to(type);
            using var part = MixedPrecision.As(d.narrow(1, start, count), type).matmul(w);
            result.add_(part, Scalars.One);
        }
        return result;
    }

    /// <summary>
    /// log Σ exp over each row [c, V] → [c, 1], as libtorch computes it (the row's max taken out first); written out because
    /// libtorch's logsumexp has no meta-device kernel, which the placement tests run on.
    /// </summary>
    private static Tensor LogSumExp(Tensor logits)
    {
        var max = logits.amax(new long[] { 1 }, keepdim: true);
        return logits.sub(max).exp_().sum(1, keepdim: true).log_().add_(max, Scalars.One);
    }

    /// <summary>What travels beside the tensors: the chunk size in; the reported sum out; the gradients kept from forward to backward.</summary>
    private sealed class Reported
    {
        public long Rows;
        public long SliceRows;
        public Tensor? MaskedNllSum;
        public Tensor? GradHidden;
        public Tensor? GradHead;
    }

    private sealed class Function : autograd.SingleTensorFunction<Function>
    {
        public override string Name => nameof(ChunkedCrossEntropy);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (hidden, head, targets, weights, mask, reported) =
                ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3], (Tensor)vars[4], (Reported)vars[5]);
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            long n = hidden.shape[0], rows = reported.Rows;
            var gradHidden = zeros_like(hidden);
            var gradHead = head.requires_grad ? zeros(head.shape, ScalarType.Float32, head.device) : null;
            var loss = zeros(1, ScalarType.Float32, hidden.device);
            var maskedSum = zeros(1, ScalarType.Float32, hidden.device);
            for (long start = 0; start < n; start += rows)
            {
                using var chunk = NewDisposeScope();
                long count = Math.Min(rows, n - start);
                var h = hidden.narrow(0, start, count);
                var y = targets.narrow(0, start, count).unsqueeze(1);
                var w = weights.narrow(0, start, count);
                var (logits, lse, nll) = Chunk(h, head, y, reported.SliceRows);
                loss.add_(nll.mul(w).sum(), Scalars.One);
                maskedSum.add_(nll.mul(mask.narrow(0, start, count)).sum(), Scalars.One);
                // d loss / d logits = w · (softmax − onehot(y)), in place over the chunk's logits.
                var dLogits = logits.sub_(lse).exp_();
                dLogits.scatter_add_(1, y, full(new[] { count, 1L }, Scalars.MinusOne, ScalarType.Float32, hidden.device));
                dLogits.mul_(w.unsqueeze(1));
                gradHidden.narrow(0, start, count).copy_(BackProject(dLogits, head, hidden.dtype, reported.SliceRows)); // [c, V]·[V, D]
                if (gradHead is not null) gradHead.add_(dLogits.t().matmul(MixedPrecision.As(h, ScalarType.Float32)), Scalars.One); // [V, c]·[c, D]
            }
            // Kept in a plain object: TorchSharp's context wants tensors through save_for_backward, which would version-check them.
            reported.GradHidden = gradHidden.MoveToOuterDisposeScope();
            reported.GradHead = gradHead?.MoveToOuterDisposeScope();
            ctx.save_data("kept", reported);
            ctx.set_materialize_grads(false);
            reported.MaskedNllSum = maskedSum.squeeze().MoveToOuterDisposeScope();
            return loss.squeeze().MoveToOuterDisposeScope();
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
        {
            var kept = (Reported)ctx.get_data("kept");
            var (gradHidden, gradHead) = (kept.GradHidden!, kept.GradHead);
            kept.GradHidden = kept.GradHead = null;
            // Backward runs once per graph: what forward kept is freed here, not whenever the GC gets to it.
            using var keptHidden = gradHidden;
            using var keptHead = gradHead;
            if (grad is null || grad.IsInvalid) return [null!, null!, null!, null!, null!, null!];
            using var scope = NewDisposeScope();
            var dHidden = gradHidden.mul(MixedPrecision.As(grad, gradHidden.dtype)).MoveToOuterDisposeScope();
            Tensor? dHead = gradHead?.mul(MixedPrecision.As(grad, ScalarType.Float32)).MoveToOuterDisposeScope();
            return [dHidden, dHead is null ? null! : dHead, null!, null!, null!, null!];
        }
    }
}

/// <summary><c>finetune.chunkedLoss</c>: project to the vocabulary a few positions at a time (<see cref="ChunkedCrossEntropy"/>).</summary>
public enum ChunkedLoss { Auto, On, Off }
