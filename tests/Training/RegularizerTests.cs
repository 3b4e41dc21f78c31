using Forgetless.Tests.Peft;
using Forgetless.Training;
using Forgetless.Training.Terms;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Tests.Training;

[Collection(TorchSerial.Name)]
public sealed class RegularizerTests
{
    [Fact]
    public void EWC_penalty_and_its_gradient_match_the_formula()
    {
        using var w = new Parameter(tensor(new[] { 1f, 2f, -1f }));
        var fisher = new Dictionary<string, Tensor> { ["w"] = tensor(new[] { 0.5f, 2f, 0f }) };
        var anchors = new Dictionary<string, Tensor> { ["w"] = tensor(new[] { 0f, 1f, 5f }) };
        using var ewc = new Ewc([("w", w)], fisher, anchors, lambda: 3);
        using var penalty = ewc.Penalty();
        // 3 · (0.5·1² + 2·1² + 0·6²) = 7.5
        penalty.item<float>().Should().BeApproximately(7.5f, 1e-6f);
        penalty.backward();
        // 2·λ·F·(θ − θ*) = [3, 12, 0]
        TensorAssert.Values(w.grad!).Should().Equal(3f, 12f, 0f);
    }

    [Fact]
    public void Diagonal_Fisher_of_a_one_parameter_logistic_model()
    {
        using var w = new Parameter(tensor(new[] { 0.5f }));
        (float x, float y)[] samples = [(1f, 1f), (2f, 0f)];
        var fisher = Ewc.DiagonalFisher([("w", w)], samples.Select(s => (Func<Tensor>)(() =>
        {
            var logit = w * s.x;
            var target = tensor(new[] { s.y });
            return nn.functional.binary_cross_entropy_with_logits(logit, target).neg(); // log-likelihood of the true label
        })));
        // d/dw log p(y|x) = (y − σ(wx))·x
        double Sig(double z) => 1 / (1 + Math.Exp(-z));
        var g1 = (1 - Sig(0.5)) * 1;
        var g2 = (0 - Sig(1.0)) * 2;
        fisher["w"].item<float>().Should().BeApproximately((float)((g1 * g1 + g2 * g2) / 2), 1e-6f); // 1.1402
        w.grad!.item<float>().Should().Be(0f);

        var online = Ewc.Online(fisher, new Dictionary<string, Tensor> { ["w"] = tensor(new[] { 1f }) }, gamma: 0.5);
        online["w"].item<float>().Should().BeApproximately((float)(0.5 * (g1 * g1 + g2 * g2) / 2 + 1), 1e-6f);
    }

    [Fact]
    public void L2SP_pulls_toward_the_anchor_or_zero()
    {
        using var w = new Parameter(tensor(new[] { 1f, 3f }));
        using var toAnchor = new L2Sp([("w", w)], new Dictionary<string, Tensor> { ["w"] = tensor(new[] { 1f, 1f }) }, 0.1);
        toAnchor.Penalty().item<float>().Should().BeApproximately(0.4f, 1e-6f);
        using var toZero = new L2Sp([("w", w)], null, 0.1);
        toZero.Penalty().item<float>().Should().BeApproximately(1.0f, 1e-6f);
    }

    [Fact]
    public void EWC_state_round_trips_through_safetensors()
    {
        var path = Path.Combine(Path.GetTempPath(), "forgetless-ewc-" + Guid.NewGuid().ToString("N") + ".safetensors");
        try
        {
            Ewc.Save(path, new Dictionary<string, Tensor> { ["a.weight"] = tensor(new[] { 1f, 2f }) },
                new Dictionary<string, Tensor> { ["a.weight"] = tensor(new[] { 3f, 4f }) });
            var (f, a) = Ewc.Load(path);
            TensorAssert.Values(f["a.weight"]).Should().Equal(1f, 2f);
            TensorAssert.Values(a["a.weight"]).Should().Equal(3f, 4f);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
