using Forgetless.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Training;

public enum KdDivergence { ForwardKl, ReverseKl, GeneralizedJsd }

/// <summary>Options of a distillation loss; shared by the FineTune <c>kd</c> regularizer and the Distill stage.</summary>
public sealed record KdOptions
{
    public KdDivergence Divergence { get; init; } = KdDivergence.ForwardKl;
    /// <summary>Softmax temperature T applied to both student and teacher logits.</summary>
    public double Temperature { get; init; } = 1.0;
    /// <summary>Generalized JSD interpolation (TRL GKD): 0 → KL(teacher‖student), 1 → KL(student‖teacher).</summary>
    public double Beta { get; init; } = 0.5;
    /// <summary>Multiply by T² (Hinton et al. 2015) so gradients keep their scale as T grows. TRL's GKD does not; set false to match it.</summary>
    public bool ScaleByTemperatureSquared { get; init; } = true;
}

/// <summary>
/// Knowledge-distillation divergences between per-token distributions, reduced as the sum over unmasked tokens
/// divided by the number of unmasked tokens (TRL's "batchmean" over tokens). Logits are [..., V]; the mask has the
/// leading shape. p = softmax(teacher/T) and q = softmax(student/T).
/// <list type="bullet">
/// <item>Forward KL: KL(p‖q) = Σ p (log p − log q). (torchtune's "forward KL" −Σ p log q differs by the teacher
/// entropy, a constant for the student; ours is 0 for identical distributions.)</item>
/// <item>Reverse KL: KL(q‖p) (MiniLLM).</item>
/// <item>Generalized JSD, TRL GKD semantics: M = β·p + (1−β)·q; JSD_β = β·KL(p‖M) + (1−β)·KL(q‖M) for 0 &lt; β &lt; 1;
/// TRL defines the endpoints as β = 0 → KL(p‖q) (forward) and β = 1 → KL(q‖p) (reverse), and so do we. (The
/// interior formula itself tends to 0 at both ends; the endpoint cases are a definition, not a limit.)</item>
/// </list>
/// </summary>
public static class Distillation
{
    // The large finite stand-in for −inf (float, as the logits) and the floor of a tail's mass; held (Scalars.cs says why).
    private static readonly Scalar HugeNegative = (-1e30f).ToScalar(), TinyMass = 1e-30.ToScalar();

    public static Tensor Loss(Tensor studentLogits, Tensor teacherLogits, Tensor mask, KdOptions options)
    {
        using var scope = NewDisposeScope();
        var t = options.Temperature;
        if (t <= 0) throw new ArgumentException("Temperature must be positive.");
        using var temperature = t.ToScalar();
        var logQ = nn.functional.log_softmax(studentLogits.div(temperature), -1);
        var logP = nn.functional.log_softmax(teacherLogits.detach().div(temperature), -1);
        var perToken = options.Divergence switch
        {
            KdDivergence.ForwardKl => Kl(logP, logQ),
            KdDivergence.ReverseKl => Kl(logQ, logP),
            KdDivergence.GeneralizedJsd => Gjsd(logP, logQ, options.Beta),
            _ => throw new ArgumentOutOfRangeException(nameof(options)),
        };
        return Reduce(perToken, mask, options).MoveToOuterDisposeScope();
    }

    public static Tensor ForwardKl(Tensor student, Tensor teacher, Tensor mask, double temperature = 1) =>
        Loss(student, teacher, mask, new KdOptions { Divergence = KdDivergence.ForwardKl, Temperature = temperature });

    public static Tensor ReverseKl(Tensor student, Tensor teacher, Tensor mask, double temperature = 1) =>
        Loss(student, teacher, mask, new KdOptions { Divergence = KdDivergence.ReverseKl, Temperature = temperature });

    public static Tensor GeneralizedJsd(Tensor student, Tensor teacher, Tensor mask, double beta, double temperature = 1) =>
        Loss(student, teacher, mask, new KdOptions { Divergence = KdDivergence.GeneralizedJsd, Beta = beta, Temperature = temperature });

    /// <summary>KL(a‖b) per token from log-probabilities, summed over the last dimension.</summary>
    private static Tensor Kl(Tensor logA, Tensor logB) => logA.exp().mul(logA.sub(logB)).sum(-1);

    private static Tensor Gjsd(Tensor logP, Tensor logQ, double beta)
    {
        if (beta is < 0 or > 1) throw new ArgumentException($"beta must be in [0, 1], got {beta}.");
        if (beta == 0) return Kl(logP, logQ);
        if (beta == 1) return Kl(logQ, logP);
        using Scalar logBeta = Math.Log(beta), logRest = Math.Log(1 - beta), betaScalar = beta, rest = 1 - beta;
        var logM = logsumexp(stack(new[] { logP.add(logBeta, Scalars.One), logQ.add(logRest, Scalars.One) }), 0);
        return Kl(logP, logM).mul(betaScalar).add(Kl(logQ, logM).mul(rest), Scalars.One);
    }

    private static Tensor Reduce(Tensor perToken, Tensor mask, KdOptions options)
    {
        var m = mask.to(ScalarType.Float32);
        var loss = perToken.mul(m).sum().div(m.sum().clamp_min(Scalars.One));
        if (!options.ScaleByTemperatureSquared) return loss;
        using var temperatureSquared = (options.Temperature * options.Temperature).ToScalar();
        return loss.mul(temperatureSquared);
    }

    /// <summary>The teacher's top-k at temperature T: indices [..., k] and log-probabilities log softmax(teacher/T) [..., k].</summary>
    public static (Tensor indices, Tensor logProbs) TeacherTopK(Tensor teacherLogits, int k, double temperature = 1)
    {
        using var scope = NewDisposeScope();
        using var t = temperature.ToScalar();
        var logP = nn.functional.log_softmax(teacherLogits.detach().div(t), -1);
        var (values, indices) = logP.topk(k, -1);
        return (indices.MoveToOuterDisposeScope(), values.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Forward KL when the teacher is kept only as its top-k log-probabilities at temperature T (e.g. cached from a
    /// large teacher). The rest of the teacher's mass, r = 1 − Σ_k p_k, is one bucket matched against the student's
    /// mass outside the same k tokens:
    /// KL_k = Σ_{i∈K} p_i log(p_i/q_i) + r log(r/q_rest).
    /// Merging outcomes never increases KL (log-sum inequality), and the gap is exact:
    /// KL_full − KL_k = r · KL(p_tail/r ‖ q_tail/q_rest) ≥ 0, the tails' conditional divergence weighted by the
    /// teacher's tail mass. So the approximation is a lower bound that is tight when r → 0 or when student and teacher
    /// agree on the shape of the tail. Multiplied by T² per <see cref="KdOptions.ScaleByTemperatureSquared"/>.
    /// </summary>
    public static Tensor TopKForwardKl(Tensor studentLogits, Tensor teacherTopIndices, Tensor teacherTopLogProbs, Tensor mask,
        double temperature = 1, bool scaleByTemperatureSquared = true) =>
        TopKLoss(studentLogits, teacherTopIndices, teacherTopLogProbs, null, mask,
            new KdOptions { Divergence = KdDivergence.ForwardKl, Temperature = temperature, ScaleByTemperatureSquared = scaleByTemperatureSquared });

    /// <summary>
    /// Any divergence of <see cref="Loss"/> against a teacher kept as its top-k log-probabilities at temperature T
    /// plus the tail mass r (the Distill stage's cached teacher). Both distributions are collapsed onto the same k + 1
    /// outcomes — the teacher's k tokens and one bucket for everything else — and the divergence is taken between the
    /// collapsed distributions. Collapsing never increases an f-divergence (data processing), so for forward KL,
    /// reverse KL and JSD_β alike the result is a lower bound of the full-vocabulary value, exact when k = V; for
    /// forward KL the gap is r · KL(p_tail/r ‖ q_tail/q_rest) (see <see cref="TopKForwardKl"/>).
    /// <paramref name="teacherTailMass"/> [...] is r as the teacher computed it (more exact than 1 − Σ p_k in float);
    /// null derives it from the top-k. Reduced and T²-scaled like <see cref="Loss"/>.
    /// </summary>
    public static Tensor TopKLoss(Tensor studentLogits, Tensor teacherTopIndices, Tensor teacherTopLogProbs, Tensor? teacherTailMass,
        Tensor mask, KdOptions options)
    {
        using var scope = NewDisposeScope();
        var t = options.Temperature;
        if (t <= 0) throw new ArgumentException("Temperature must be positive.");
        using var temperature = t.ToScalar();
        var scaled = studentLogits.div(temperature);
        var logZ = scaled.logsumexp(-1);
        var logQk = scaled.gather(-1, teacherTopIndices).sub(logZ.unsqueeze(-1));
        var logPk = teacherTopLogProbs.detach().to(ScalarType.Float32);
        var r = (teacherTailMass?.detach().to(ScalarType.Float32) ?? logPk.exp().sum(-1).neg().add(Scalars.One, Scalars.One)).clamp_min(Scalars.Zero);
        // log q_rest as a log-sum-exp over the logits outside the top-k (no 1 − Σ cancellation when the student is sure);
        // a large finite fill instead of −inf keeps values and gradients finite when k = V (then both tails are empty).
        var isTop = zeros_like(scaled).scatter(-1, teacherTopIndices, ones_like(teacherTopIndices, ScalarType.Float32)).gt(Scalars.Zero);
        var logQRest = scaled.masked_fill(isTop, HugeNegative).logsumexp(-1).sub(logZ).clamp_min(HugeNegative);
        var hasTail = isTop.logical_not().any(-1);
        // An empty tail on either side is an outcome of probability 0 for both: it contributes nothing.
        var logPRest = where(hasTail, r.clamp_min(TinyMass).log(), full_like(r, HugeNegative));
        logQRest = where(hasTail, logQRest, full_like(logQRest, HugeNegative));
        var logP = cat([logPk, logPRest.unsqueeze(-1)], -1);
        var logQ = cat([logQk, logQRest.unsqueeze(-1)], -1);
        var perToken = options.Divergence switch
        {
            KdDivergence.ForwardKl => Kl(logP, logQ),
            KdDivergence.ReverseKl => Kl(logQ, logP),
            KdDivergence.GeneralizedJsd => Gjsd(logP, logQ, options.Beta),
            _ => throw new ArgumentOutOfRangeException(nameof(options)),
        };
        return Reduce(perToken, mask, options).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The teacher's top-k at temperature T and the tail mass r = Σ_{i∉K} p_i = 1 − Σ_{i∈K} p_i, summed in double:
    /// indices [..., k], log-probabilities [..., k], r [...].
    /// </summary>
    public static (Tensor indices, Tensor logProbs, Tensor tailMass) TeacherTopKWithTail(Tensor teacherLogits, int k, double temperature = 1)
    {
        using var scope = NewDisposeScope();
        using var t = temperature.ToScalar();
        var logP = nn.functional.log_softmax(teacherLogits.detach().div(t), -1);
        var (values, indices) = logP.topk(k, -1);
        // 1 − Σ p_k in double: no full-vocabulary pass beyond the softmax and top-k, and the cancellation error
        // (~1e-16) is far below the float32 the tail is kept in.
        var tail = k >= logP.shape[^1] ? zeros_like(values.select(-1, 0))
            : values.to(ScalarType.Float64).exp().sum(-1).neg().add(Scalars.One, Scalars.One).clamp_min(Scalars.Zero).to(ScalarType.Float32);
        return (indices.MoveToOuterDisposeScope(), values.MoveToOuterDisposeScope(), tail.MoveToOuterDisposeScope());
    }
}
