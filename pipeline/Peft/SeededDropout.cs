using Forgetless.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// Inverted dropout drawing from its own seeded generator instead of torch's process-wide one, so adapter training
/// is reproducible whatever else the process samples (other threads, evaluation, data code).
/// Keeps a value when u &lt; 1 − p for u ~ U[0, 1) and scales kept values by 1/(1 − p), like torch's dropout.
/// </summary>
public sealed class SeededDropout : nn.Module<Tensor, Tensor>, IOwnsGenerator
{
    private readonly double p;
    private readonly Scalar keepProbability; // 1 − p, held for every forward (Scalars.cs says why)
    private readonly ulong seed;

    public Generator Generator { get; private set; }

    public SeededDropout(double p, ulong seed) : base(nameof(SeededDropout))
    {
        if (p is < 0 or >= 1) throw new ArgumentException($"Dropout probability must be in [0, 1), got {p}.");
        this.p = p;
        keepProbability = (1 - p).ToScalar();
        this.seed = seed;
        Generator = new Generator(seed);
    }

    /// <summary>A CUDA tensor needs a CUDA generator: a fresh one with the same seed (call before the first draw).</summary>
    public void PlaceGeneratorOn(Device device)
    {
        if (Generator.device.type == device.type || device.type == DeviceType.META) return;
        Generator.Dispose();
        Generator = new Generator(seed, device);
    }

    public override Tensor forward(Tensor x)
    {
        if (!training || p == 0) return x.alias();
        using var scope = NewDisposeScope();
        var keep = rand(x.shape, ScalarType.Float32, x.device, generator: Generator).lt(keepProbability);
        return x.mul(keep.to(x.dtype)).div(keepProbability).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) Generator.Dispose();
        base.Dispose(disposing);
    }
}
