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
    public void EWC_penalty_and_its_gradient_are_on_the_paper_s_scale()
    {
        using var w = new Parameter(tensor(new[] { 1f, 2f, -1f }));
        var fisher = new Dictionary<string, Tensor> { ["w"] = tensor(new[] { 0.5f, 2f, 0f }) };
        var anchors = new Dictionary<string, Tensor> { ["w"] = tensor(new[] { 0f, 1f, 5f }) };
        using var ewc = new Ewc([("w", w)], fisher, anchors, lambda: 3);
        using var penalty = ewc.Penalty();
        // Kirkpatrick et al.: λ/2 · Σ F (θ − θ*)² = 3/2 · (0.5·1² + 2·1² + 0·6²) = 3.75
        penalty.item<float>().Should().BeApproximately(3.75f, 1e-6f);
        penalty.backward();
        // λ·F·(θ − θ*) = [1.5, 6, 0]
        TensorAssert.Values(w.grad!).Should().Equal(1.5f, 6f, 0f);
    }

    [Fact]
    public void Online_EWC_decays_the_old_Fisher_and_adds_the_new_one()
    {
        var old = new Dictionary<string, Tensor> { ["a"] = tensor(new[] { 2f, 4f }), ["gone"] = tensor(new[] { 8f }) };
        var fresh = new Dictionary<string, Tensor> { ["a"] = tensor(new[] { 1f, 0.5f }), ["new"] = tensor(new[] { 3f }) };
        var online = Ewc.Online(old, fresh, gamma: 0.25);
        // γ·F_old + F_new per name; a name on one side only keeps that side (the other counts as 0).
        TensorAssert.Values(online["a"]).Should().Equal(0.25f * 2 + 1, 0.25f * 4 + 0.5f);
        TensorAssert.Values(online["gone"]).Should().Equal(2f);
        TensorAssert.Values(online["new"]).Should().Equal(3f);
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
