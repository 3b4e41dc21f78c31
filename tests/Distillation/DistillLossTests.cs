using Forgetless.Distill;
using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Tests.FineTuning;
using Forgetless.Tests.Peft;
using Forgetless.Training;
using KdLoss = Forgetless.Training.Distillation;
using static TorchSharp.torch;

namespace Forgetless.Tests.DistillationStage;

/// <summary>The distillation loss as the Distill stage uses it: through the top-k teacher pass and its cache rows.</summary>
[Collection(TorchSerial.Name)]
public sealed class DistillLossTests
{
    private static readonly KdDivergence[] Divergences = [KdDivergence.ForwardKl, KdDivergence.ReverseKl, KdDivergence.GeneralizedJsd];

    private static Tensor Logits(CausalLM model, long[] ids)
    {
        using var _ = no_grad();
        model.eval();
        return model.Forward(tensor(ids, [2, ids.Length / 2]));
    }

    /// <summary>
    /// The stated bound (docs/distill.md): with r the teacher's tail mass outside its top-k set K,
    /// 0 ≤ KL_full − KL_k = r·KL(p_tail/r ‖ q_tail/q_rest) ≤ r·log(p_(k)·q_rest / (r·min_{i∉K} q_i)),
    /// per token; here averaged over tokens of two tiny random Llamas (V = 64, k = 32, T = 2).
    /// </summary>
    [Fact]
    public void Top_k_forward_kl_is_a_lower_bound_of_the_full_kl_within_the_stated_bound()
    {
        using var teacher = ModelFactory.Create(FineTuneFixture.TinyConfig, 1);
        using var student = ModelFactory.Create(FineTuneFixture.TinyConfig, 2);
        var ids = Enumerable.Range(0, 32).Select(i => (long)(i * 7 % 60)).ToArray();
        using var scope = NewDisposeScope();
        var t = Logits(teacher, ids);
        var s = Logits(student, ids);
        var mask = ones(2, 16);
        const double T = 2;
        double full = KdLoss.ForwardKl(s, t, mask, T).item<float>();
        foreach (int k in new[] { 8, 32, 63 })
        {
            var (idx, lp, tail) = KdLoss.TeacherTopKWithTail(t, k, T);
            double approx = KdLoss.TopKLoss(s, idx, lp, tail, mask, new KdOptions { Temperature = T }).item<float>();

            // Exact gap and the a-priori bound, per token, computed from the full distributions.
            var logP = nn.functional.log_softmax(t.div(Scalars.Of(T)), -1);
            var logQ = nn.functional.log_softmax(s.div(Scalars.Of(T)), -1);
            var inTail = ones_like(logP).scatter(-1, idx, zeros_like(lp)).gt(Scalars.Zero);
            var r = tail;
            var qRest = logQ.exp().mul(inTail).sum(-1);
            var pTail = logP.exp().mul(inTail).div(r.unsqueeze(-1));
            var qTail = logQ.exp().mul(inTail).div(qRest.unsqueeze(-1));
            var tailKl = where(inTail, pTail.mul(pTail.clamp_min(Scalars.Of(1e-30)).log().sub(qTail.log())), zeros_like(pTail)).sum(-1);
            double gap = r.mul(tailKl).mean().item<float>() * T * T;
            var pk = lp.select(-1, k - 1).exp();
            var qMin = logQ.exp().masked_fill(inTail.logical_not(), Scalars.Two).min(-1).values;
            double bound = r.mul(pk.mul(qRest).div(r.mul(qMin)).log()).mean().item<float>() * T * T;

            approx.Should().BeLessThanOrEqualTo(full + 1e-5, $"k = {k}: top-k KL is a lower bound");
            (full - approx).Should().BeApproximately(gap, 2e-4, $"k = {k}: the gap is r·KL(tails)");
            (full - approx).Should().BeLessThanOrEqualTo(bound + 1e-4, $"k = {k}: the stated bound holds");
        }
        // k = V: exact.
        var (ai, al, at) = KdLoss.TeacherTopKWithTail(t, 64, T);
        ((double)KdLoss.TopKLoss(s, ai, al, at, mask, new KdOptions { Temperature = T }).item<float>()).Should().BeApproximately(full, 1e-4);
    }

    [Fact]
    public void Collapsing_onto_top_k_never_raises_reverse_kl_or_jsd_and_k_equal_v_is_exact()
    {
        using var teacher = ModelFactory.Create(FineTuneFixture.TinyConfig, 3);
        using var student = ModelFactory.Create(FineTuneFixture.TinyConfig, 4);
        using var scope = NewDisposeScope();
        var ids = Enumerable.Range(0, 24).Select(i => (long)(i * 5 % 61)).ToArray();
        var t = Logits(teacher, ids);
        var s = Logits(student, ids);
        var mask = ones(2, 12);
        foreach (var d in Divergences)
        {
            var options = new KdOptions { Divergence = d, Temperature = 1.5, Beta = 0.3 };
            double full = KdLoss.Loss(s, t, mask, options).item<float>();
            var (i16, l16, r16) = KdLoss.TeacherTopKWithTail(t, 16, options.Temperature);
            ((double)KdLoss.TopKLoss(s, i16, l16, r16, mask, options).item<float>()).Should().BeLessThanOrEqualTo(full + 1e-5, d.ToString());
            var (iv, lv, rv) = KdLoss.TeacherTopKWithTail(t, 64, options.Temperature);
            ((double)KdLoss.TopKLoss(s, iv, lv, rv, mask, options).item<float>()).Should().BeApproximately(full, 1e-4, d.ToString());
        }
    }

    [Fact]
    public void Through_the_teacher_pass_rows_d_is_zero_for_the_teacher_itself_for_every_divergence()
    {
        using var teacher = ModelFactory.Create(FineTuneFixture.TinyConfig, 5);
        var rows = Enumerable.Range(0, 3).Select(r => new PreparedRow(
            Enumerable.Range(0, 10).Select(i => (r * 3 + i * 11) % 60).ToArray(), [false, .. Enumerable.Repeat(true, 9)], 10, "replay")).ToList();
        var scored = TeacherPass.Score(teacher, rows.Select((row, i) => (i, row)).ToList(), k: 8, temperature: 2, batchRows: 2, CancellationToken.None);
        var targets = new CachedTeacherTargets(scored, rows, 8, 2);
        using var scope = NewDisposeScope();
        using var batch = TokenBatch.Of(rows);
        Tensor logits;
        using (no_grad()) logits = batch.Logits(teacher).narrow(1, 0, batch.Targets.shape[1]);
        foreach (var d in Divergences)
            ((double)targets.Loss(rows, logits, new KdOptions { Divergence = d, Temperature = 2 }).item<float>()).Should().BeApproximately(0, 1e-5, d.ToString());
        using var other = ModelFactory.Create(FineTuneFixture.TinyConfig, 6);
        Tensor otherLogits;
        using (no_grad()) otherLogits = batch.Logits(other).narrow(1, 0, batch.Targets.shape[1]);
        ((double)targets.Loss(rows, otherLogits, new KdOptions { Temperature = 2 }).item<float>()).Should().BeGreaterThan(1e-4);
    }

    /// <summary>
    /// A hand-computed case through the cache rows: V = 3, teacher p = (0.7, 0.2, 0.1) kept as top-2 + tail 0.1,
    /// student q = (0.5, 0.3, 0.2) at T = 2 (logits 2·log q). KL(p‖q) = 0.7 ln 1.4 + 0.2 ln(2/3) + 0.1 ln 0.5 = 0.0851207;
    /// with T² = 4: 0.3404828; without the scaling 0.0851207.
    /// </summary>
    [Fact]
    public void A_hand_computed_case_through_the_cached_rows_matches_and_applies_t_squared()
    {
        var row = new PreparedRow([1, 2], [false, true], 2, "replay");
        var cached = new TeacherTopKRow
        {
            Row = 0, Positions = [0], TopkIds = [0, 1], TopkLogprobs = [(float)Math.Log(0.7), (float)Math.Log(0.2)], TailMass = [0.1f],
        };
        var targets = new CachedTeacherTargets([cached], [row], k: 2, temperature: 2);
        using var scope = NewDisposeScope();
        var student = tensor(new[] { 2 * Math.Log(0.5), 2 * Math.Log(0.3), 2 * Math.Log(0.2) }.Select(v => (float)v).ToArray(), [1, 1, 3]);
        const double kl = 0.7 * 0.3364722366 + 0.2 * -0.4054651081 + 0.1 * -0.6931471806;
        ((double)targets.Loss([row], student, new KdOptions { Temperature = 2 }).item<float>()).Should().BeApproximately(4 * kl, 1e-5);
        ((double)targets.Loss([row], student, new KdOptions { Temperature = 2, ScaleByTemperatureSquared = false }).item<float>()).Should().BeApproximately(kl, 1e-6);
        // Reverse KL by hand: 0.5 ln(5/7) + 0.3 ln 1.5 + 0.2 ln 2.
        const double reverse = 0.5 * -0.3364722366 + 0.3 * 0.4054651081 + 0.2 * 0.6931471806;
        ((double)targets.Loss([row], student, new KdOptions { Temperature = 2, Divergence = KdDivergence.ReverseKl }).item<float>()).Should().BeApproximately(4 * reverse, 1e-5);
        var wrongT = () => targets.Loss([row], student, new KdOptions { Temperature = 1 });
        wrongT.Should().Throw<InvalidOperationException>().WithMessage("*temperature 2*");
    }
}
