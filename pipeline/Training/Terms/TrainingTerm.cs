using Forgetless.FineTuning;
using static TorchSharp.torch;

namespace Forgetless.Training.Terms;

/// <summary>
/// One named term of the training objective: the task cross-entropy, a distillation term, a penalty (EWC, L2-SP, SI)
/// — whatever the <see cref="Trainer"/> adds to the loss. The Trainer sums the terms' losses, logs each under its
/// <see cref="Name"/> and calls the hooks; it knows no term by type (torchtune's <c>_loss_step</c> in spirit). A term
/// owns its configuration, its state (a Fisher, an importance), the part of that state a resumable checkpoint needs
/// (so a resumed run ends with the same bytes), and what it leaves beside the adapter for a later run.
/// <para>
/// Order of one step: every micro-batch's <see cref="BatchLoss"/> values are summed and back-propagated; then
/// <see cref="AfterBatchGradients"/>; then the <see cref="StepLoss"/> values (penalties on the parameters) are summed
/// and back-propagated; gradients are clipped, the optimizer steps, and <see cref="AfterOptimizerStep"/> runs.
/// </para>
/// </summary>
public abstract class TrainingTerm : IDisposable
{
    /// <summary>The key the term is logged under in metrics.jsonl (<c>ewc</c>, <c>kd</c>, …); unique in a run.</summary>
    public abstract string Name { get; }

    /// <summary>
    /// The share of the replay rows' cross-entropy this term takes over: FineTune's kd with weight w trains replay rows
    /// on (1 − w)·CE + w·KD, so it claims w and the task term weighs replay rows by 1 − w.
    /// </summary>
    public virtual double ReplayCrossEntropyShare => 0;

    /// <summary>
    /// Whether <see cref="BatchLoss"/> reads the whole <see cref="TermBatch.Logits"/> [B, W, V]. When no term does, the
    /// Trainer hands the task loss the hidden states instead and the full logits are never made (a large share of the
    /// memory at a real vocabulary). True unless a term says otherwise, so a new term that reads them is never wrong.
    /// </summary>
    public virtual bool ReadsLogits => true;

    /// <summary>
    /// This term's loss on one micro-batch, scaled so that the sum over a step's micro-batches is the step's term, or
    /// null where it does not apply (e.g. no replay rows in the batch).
    /// </summary>
    public virtual TermValue? BatchLoss(TermBatch batch) => null;

    /// <summary>Gradients of the step's batch losses are in the parameters' <c>grad</c>, penalties not yet added.</summary>
    public virtual void AfterBatchGradients() { }

    /// <summary>Once per step: a loss on the parameters alone (a penalty), or null.</summary>
    public virtual TermValue? StepLoss() => null;

    /// <summary>The optimizer has updated the parameters; their gradients are still there.</summary>
    public virtual void AfterOptimizerStep() { }

    /// <summary>The state a resumable checkpoint must carry for this term (stored as <c>term/NAME/KEY</c>); empty for stateless terms.</summary>
    public virtual IReadOnlyDictionary<string, Tensor> CheckpointState() => new Dictionary<string, Tensor>();

    /// <summary>Continues from <see cref="CheckpointState"/> as saved; the tensors belong to the caller.</summary>
    public virtual void RestoreCheckpointState(IReadOnlyDictionary<string, Tensor> state) { }

    /// <summary>End of the run: files this term leaves beside the adapter for a later run (e.g. EWC's Fisher).</summary>
    public virtual void WriteArtifacts(string adapterFolder) { }

    public virtual void Dispose() { }
}

/// <summary>
/// A term's contribution: <paramref name="Loss"/> is back-propagated (a scalar attached to the graph), and
/// <paramref name="Reported"/> is the value logged for the step (summed over micro-batches), e.g. the unweighted mean —
/// a one-element tensor on the device, which the Trainer reads with every other value of the step in one copy, then
/// divides by <paramref name="Divisor"/> on the host.
/// </summary>
public readonly record struct TermValue(Tensor Loss, Tensor Reported, double Divisor = 1);

/// <summary>One micro-batch as the terms see it.</summary>
public sealed class TermBatch
{
    public required IReadOnlyList<PreparedRow> Rows { get; init; }
    public required TokenBatch Tokens { get; init; }
    private Tensor? logits;
    private readonly Func<Tensor>? logitsSource;

    /// <summary>Logits [B, W, V] of the model in training for <see cref="Tokens"/> (made on first use when the Trainer gave <see cref="Hidden"/>).</summary>
    public Tensor Logits
    {
        get => logits ??= logitsSource?.Invoke() ?? throw new InvalidOperationException("the batch has neither logits nor a way to make them");
        init => logits = value;
    }

    /// <summary>Makes <see cref="Logits"/> on first use (from <see cref="Hidden"/>).</summary>
    public Func<Tensor> LogitsSource { init => logitsSource = value; }

    /// <summary>
    /// The final hidden states [B, W, D], set when no term needs the whole logits and the output projection is the bare
    /// matrix <see cref="OutputWeight"/>: the task loss then projects a few positions at a time (<see cref="ChunkedCrossEntropy"/>).
    /// </summary>
    public Tensor? Hidden { get; init; }

    /// <summary>The output projection [V, D] beside <see cref="Hidden"/>.</summary>
    public Tensor? OutputWeight { get; init; }

    /// <summary>Whether the whole logits exist (some term asked for them): the task loss then reads them too.</summary>
    public bool HasLogits => logits is not null;
    /// <summary>Scored target tokens of the whole step (every micro-batch): the denominator of token means.</summary>
    public required double StepTargetTokens { get; init; }
    /// <summary>Micro-batches in the step: a per-batch mean divided by this sums to the step's mean.</summary>
    public required int MicroBatches { get; init; }

    /// <summary>Whether any row stands for old abilities (read from the rows, not the device).</summary>
    public bool HasReplay => Rows.Any(r => r.IsReplay);

    /// <summary>Indices [R] of the replay rows in the batch, on the batch's device (found on the host: no device read).</summary>
    public Tensor ReplayIndices() => Tokens.ReplayIndices();
}
