using Forgetless.Model;
using FluentAssertions;
using Forgetless.FineTuning;
using static TorchSharp.torch;

namespace Forgetless.Tests.FineTuning;

/// <summary>
/// The task loss's per-token NLL against libtorch's own formula on the cut logits (log_softmax of logits[:, :S], then
/// the targets' entries): the same bits for the values and for the gradient of the logits.
/// </summary>
public sealed class TokenNllTests
{
    [Theory]
    [InlineData(3, 17, 50, 16)]  // the trainer's case: one position fewer than the logits
    [InlineData(1, 5, 7, 4)]
    [InlineData(2, 9, 8192, 8)]  // a real vocabulary
    [InlineData(2, 9, 33, 6)]    // targets three shorter
    [InlineData(2, 6, 11, 6)]    // as many as the logits
    public void Values_and_gradients_equal_the_cut_logits_formula_bit_for_bit(int batch, int positions, int vocab, int scored)
    {
        using var scope = NewDisposeScope();
        var generator = new TorchSharp.torch.Generator(7);
        var logits = randn([batch, positions, vocab], generator: generator).mul(Scalars.Of(4)).requires_grad_();
        var targets = randint(vocab, [batch, scored], generator: generator, dtype: ScalarType.Int64);
        var weights = rand([batch, scored], generator: generator);

        var expected = nn.functional.log_softmax(logits.narrow(1, 0, scored), -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1).neg();
        expected.mul(weights).sum().backward();
        var expectedGrad = logits.grad!.clone();
        logits.grad = null;

        var actual = LossProbe.TokenNll(logits, targets);
        actual.mul(weights).sum().backward();

        actual.shape.Should().Equal([batch, scored]);
        actual.equal(expected).all().item<bool>().Should().BeTrue("every per-token value is the same float");
        logits.grad!.equal(expectedGrad).all().item<bool>().Should().BeTrue("every gradient is the same float");
    }

    [Fact]
    public void Targets_longer_than_the_logits_are_refused()
    {
        using var logits = zeros(1, 3, 5);
        using var targets = zeros(1, 4, ScalarType.Int64);
        FluentActions.Invoking(() => LossProbe.TokenNll(logits, targets)).Should().Throw<ArgumentException>().WithMessage("*longer than the logits*");
    }
}
