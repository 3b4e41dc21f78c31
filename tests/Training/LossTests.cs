using Forgetless.Model;
using Forgetless.Tests.Peft;
using Forgetless.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Tests.Training;

[Collection(TorchSerial.Name)]
public sealed class LossTests
{
    [Fact]
    public void Cross_entropy_is_the_mean_over_unmasked_tokens()
    {
        using var logits = zeros(1, 3, 4);
        using var targets = tensor(new long[] { 1, -100, 2 }).reshape(1, 3);
        using var mask = TokenLosses.MaskFromLabels(targets);
        using var loss = TokenLosses.CrossEntropy(logits, targets, mask);
        loss.item<float>().Should().BeApproximately((float)Math.Log(4), 1e-6f);

        using var g = new Generator(1);
        using var random = randn(new long[] { 2, 5, 7 }, generator: g);
        using var labels = randint(0, 7, new long[] { 2, 5 }, generator: g);
        labels[0, 1] = tensor(-100L);
        labels[1, 4] = tensor(-100L);
        using var m = TokenLosses.MaskFromLabels(labels);
        using var ours = TokenLosses.CrossEntropy(random, labels, m);
        using var reference = nn.functional.cross_entropy(random.reshape(10, 7), labels.reshape(10), ignore_index: -100);
        ours.item<float>().Should().BeApproximately(reference.item<float>(), 1e-5f);
        using var none = TokenLosses.CrossEntropy(random, labels, zeros(2, 5));
        none.item<float>().Should().Be(0f);
    }

    private static (Tensor student, Tensor teacher, Tensor mask) TwoTokens()
    {
        // Token 0: teacher p = [0.25, 0.75], student q = [0.5, 0.5]. Token 1 is masked and holds garbage.
        var teacher = tensor(new[] { 0f, (float)Math.Log(3), 50f, -50f }).reshape(1, 2, 2);
        var student = tensor(new[] { 0f, 0f, -50f, 50f }).reshape(1, 2, 2);
        var mask = tensor(new[] { 1f, 0f }).reshape(1, 2);
        return (student, teacher, mask);
    }

    private static double Kl(double[] a, double[] b) => a.Zip(b).Sum(x => x.First * Math.Log(x.First / x.Second));

    [Fact]
    public void Divergences_match_hand_computed_values()
    {
        var (s, t, m) = TwoTokens();
        double[] p = [0.25, 0.75], q = [0.5, 0.5], mix = [0.375, 0.625];
        Distillation.ForwardKl(s, t, m).item<float>().Should().BeApproximately((float)Kl(p, q), 1e-6f);   // 0.1308
        Distillation.ReverseKl(s, t, m).item<float>().Should().BeApproximately((float)Kl(q, p), 1e-6f);   // 0.1438
        Distillation.GeneralizedJsd(s, t, m, 0.5).item<float>()
            .Should().BeApproximately((float)(0.5 * Kl(p, mix) + 0.5 * Kl(q, mix)), 1e-6f);              // 0.0338
        double[] mix2 = [0.2 * 0.25 + 0.8 * 0.5, 0.2 * 0.75 + 0.8 * 0.5];
        Distillation.GeneralizedJsd(s, t, m, 0.2).item<float>()
            .Should().BeApproximately((float)(0.2 * Kl(p, mix2) + 0.8 * Kl(q, mix2)), 1e-6f);
        Distillation.GeneralizedJsd(s, t, m, 0).item<float>().Should().BeApproximately((float)Kl(p, q), 1e-6f);
        Distillation.GeneralizedJsd(s, t, m, 1).item<float>().Should().BeApproximately((float)Kl(q, p), 1e-6f);
    }

    [Theory]
    [InlineData(KdDivergence.ForwardKl)]
    [InlineData(KdDivergence.ReverseKl)]
    [InlineData(KdDivergence.GeneralizedJsd)]
    public void Identical_distributions_give_zero_and_T_squared_is_applied(KdDivergence kind)
    {
        using var g = new Generator(5);
        using var logits = randn(new long[] { 2, 3, 9 }, generator: g);
        using var other = randn(new long[] { 2, 3, 9 }, generator: g);
        using var mask = ones(2, 3);
        var o = new KdOptions { Divergence = kind, Temperature = 2 };
        Distillation.Loss(logits, logits, mask, o).item<float>().Should().BeApproximately(0f, 1e-6f);
        // Logits doubled at T = 2 are the T = 1 distributions; the loss is then T² = 4 times the T = 1 loss.
        using var scaledS = logits.mul(Scalars.Two);
        using var scaledT = other.mul(Scalars.Two);
        var atT2 = Distillation.Loss(scaledS, scaledT, mask, o).item<float>();
        var atT1 = Distillation.Loss(logits, other, mask, o with { Temperature = 1 }).item<float>();
        atT1.Should().BeGreaterThan(0);
        atT2.Should().BeApproximately(4 * atT1, 1e-5f);
        Distillation.Loss(scaledS, scaledT, mask, o with { ScaleByTemperatureSquared = false }).item<float>().Should().BeApproximately(atT1, 1e-6f);
    }

    [Fact]
    public void The_gradient_reaches_the_student_only()
    {
        using var s = randn(new long[] { 1, 2, 5 }).requires_grad_();
        using var t = randn(new long[] { 1, 2, 5 }).requires_grad_();
        using var loss = Distillation.GeneralizedJsd(s, t, ones(1, 2), 0.3);
        loss.backward();
        s.grad.Should().NotBeNull();
        t.grad.Should().BeNull();
    }

    [Fact]
    public void TopK_KL_is_a_lower_bound_with_the_stated_gap()
    {
        using var g = new Generator(9);
        const int V = 50, K = 8;
        using var teacher = randn(new long[] { 3, 4, V }, generator: g).mul(Scalars.Of(2.5));
        using var student = randn(new long[] { 3, 4, V }, generator: g);
        using var mask = ones(3, 4);
        const double T = 1.5;
        var (idx, lp) = Distillation.TeacherTopK(teacher, K, T);
        using var _i = idx;
        using var _l = lp;
        var full = Distillation.ForwardKl(student, teacher, mask, T).item<float>();
        var topk = Distillation.TopKForwardKl(student, idx, lp, mask, T).item<float>();
        topk.Should().BeLessThanOrEqualTo(full + 1e-5f);

        // Gap = mean over tokens of r · KL(p_tail/r ‖ q_tail/q_rest), times T², computed here in double.
        using var p = nn.functional.softmax(teacher.div(Scalars.Of(T)), -1);
        using var q = nn.functional.softmax(student.div(Scalars.Of(T)), -1);
        var pv = p.data<float>().ToArray();
        var qv = q.data<float>().ToArray();
        var iv = idx.data<long>().ToArray();
        double gap = 0;
        for (var tok = 0; tok < 12; tok++)
        {
            var top = iv.Skip(tok * K).Take(K).ToHashSet();
            var tail = Enumerable.Range(0, V).Where(i => !top.Contains(i)).ToList();
            double r = tail.Sum(i => (double)pv[tok * V + i]), qr = tail.Sum(i => (double)qv[tok * V + i]);
            gap += tail.Sum(i => pv[tok * V + i] * Math.Log(pv[tok * V + i] / r / (qv[tok * V + i] / qr)));
        }
        gap = gap / 12 * T * T;
        ((double)full - topk).Should().BeApproximately(gap, 2e-4);

        // Keeping every token leaves no tail: the two agree.
        var (allIdx, allLp) = Distillation.TeacherTopK(teacher, V, T);
        using var s = student.detach().clone().requires_grad_();
        using var all = Distillation.TopKForwardKl(s, allIdx, allLp, mask, T);
        all.item<float>().Should().BeApproximately(full, 1e-4f);
        all.backward();
        Forgetless.Training.Gradients.IsFinite(s.grad!).Should().BeTrue();
    }
}
