using Forgetless.Model;
using Forgetless.Tests.Peft;
using Forgetless.Training.Terms;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Tests.Training;

/// <summary>Synaptic intelligence against hand-computed path integrals and Zenke et al.'s path theorem.</summary>
[Collection(TorchSerial.Name)]
public sealed class SiTests
{
    /// <summary>Puts <paramref name="gradient"/> into w.grad through a loss whose gradient it is.</summary>
    private static void SetGradient(Parameter w, float[] gradient)
    {
        w.grad?.zero_();
        using var g = tensor(gradient);
        using var loss = w.mul(g).sum();
        loss.backward();
    }

    private static void Move(Parameter w, float[] by)
    {
        using var _ = no_grad();
        using var d = tensor(by);
        w.add_(d, Scalars.One);
    }

    [Fact]
    public void The_path_integral_is_minus_gradient_times_update_and_consolidates_to_omega_over_delta_squared_plus_xi()
    {
        using var w = new Parameter(tensor(new[] { 1f, -2f }));
        using var si = new Si([("w", w)], importance: null, c: 1, xi: 0.5);
        si.StepLoss().Should().BeNull("without an earlier importance there is no penalty");

        SetGradient(w, [2f, -1f]);
        si.AfterBatchGradients();
        Move(w, [-0.5f, 0.25f]);
        si.AfterOptimizerStep();   // ω = −g·Δ = [1, 0.25]
        SetGradient(w, [1f, 1f]);
        si.AfterBatchGradients();
        Move(w, [-0.25f, 0.5f]);
        si.AfterOptimizerStep();   // ω += [0.25, −0.5] → [1.25, −0.25]
        TensorAssert.Values(si.PathIntegral["w"]).Should().Equal(1.25f, -0.25f);

        // Δ = [−0.75, 0.75], Δ² + ξ = 1.0625: Ω = relu([1.25, −0.25] / 1.0625) = [1.1764706, 0]
        using var dir = new TempDirectory();
        si.WriteArtifacts(dir.Path);
        var (importance, anchors) = Si.Load(Path.Combine(dir.Path, Si.StateFile));
        TensorAssert.Values(importance["w"]).Should().Equal((float)(1.25 / 1.0625), 0f);
        TensorAssert.Values(anchors["w"]).Should().Equal(0.25f, -1.25f);
    }

    [Fact]
    public void The_penalty_is_c_times_importance_times_squared_distance_and_its_gradient_two_c_omega_delta()
    {
        using var w = new Parameter(tensor(new[] { 1f, -2f }));
        using var si = new Si([("w", w)], new Dictionary<string, Tensor> { ["w"] = tensor(new[] { 2f, 0.5f }) }, c: 3, xi: 1e-3);
        Move(w, [1f, 2f]);
        w.grad?.zero_();
        var value = si.StepLoss()!.Value;
        // 3 · (2·1² + 0.5·2²) = 12
        value.Reported.item<float>().Should().BeApproximately(12, 1e-5f);
        value.Loss.backward();
        // 2·c·Ω·(θ − θ̃) = [12, 6]
        TensorAssert.Values(w.grad!).Should().Equal(12f, 6f);
    }

    [Fact]
    public void Along_a_gradient_descent_path_the_importances_add_up_to_the_fall_of_the_loss()
    {
        // Zenke et al. 2017, eq. 2–3: Σ_k ω_k = L(θ_start) − L(θ_end) for a path of small steps.
        // L(θ) = ½ Σ h_k θ_k², h = [1, 4, 0.5], θ_start = [1, −1, 2]; SGD with lr 0.01 for 100 steps.
        using var w = new Parameter(tensor(new[] { 1f, -1f, 2f }));
        using var h = tensor(new[] { 1f, 4f, 0.5f });
        double Loss() { using var l = w.detach().Squared().mul(h).sum().mul(Scalars.Half); return l.item<float>(); }
        using var si = new Si([("w", w)], importance: null, c: 1, xi: 1e-3);
        double start = Loss();
        for (int i = 0; i < 100; i++)
        {
            w.grad?.zero_();
            using (var l = w.Squared().mul(h).sum().mul(Scalars.Half)) l.backward();
            si.AfterBatchGradients();
            using (no_grad()) w.sub_(w.grad!.mul(Scalars.Of(0.01)));
            si.AfterOptimizerStep();
        }
        double fall = start - Loss();
        double sum = TensorAssert.Values(si.PathIntegral["w"]).Sum(v => (double)v);
        sum.Should().BeApproximately(fall, 0.03 * fall, "the path integral is first order in the step size");
        TensorAssert.Values(si.PathIntegral["w"]).Should().OnlyContain(v => v > 0, "every coordinate moved downhill");
    }

    [Fact]
    public void Checkpoint_state_restores_the_path_integral()
    {
        using var w = new Parameter(tensor(new[] { 1f, -2f }));
        using var si = new Si([("w", w)], importance: null, c: 1, xi: 0.5);
        SetGradient(w, [2f, -1f]);
        si.AfterBatchGradients();
        Move(w, [-0.5f, 0.25f]);
        si.AfterOptimizerStep();
        var saved = si.CheckpointState().ToDictionary(kv => kv.Key, kv => kv.Value.clone());

        using var other = new Si([("w", w)], importance: null, c: 1, xi: 0.5);
        other.RestoreCheckpointState(saved);
        TensorAssert.Values(other.PathIntegral["w"]).Should().Equal(1f, 0.25f);
        var wrong = () => other.RestoreCheckpointState(new Dictionary<string, Tensor>());
        wrong.Should().Throw<InvalidDataException>().WithMessage("*SI path integral*'w'*");
    }
}
