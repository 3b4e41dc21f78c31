using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Training;

/// <summary>
/// Dynamic loss scaling for f16 activations (torch.cuda.amp.GradScaler's rule and defaults): the loss is multiplied by
/// a scale S before backward so that small gradients do not underflow f16, gradients are divided by S before clipping,
/// and a step whose gradients overflowed is skipped with S halved; after <see cref="GrowthInterval"/> good steps in a row
/// S doubles. bf16 and f32 need none of this (<see cref="Disabled"/>: S = 1, nothing skipped).
/// </summary>
public sealed class LossScaler
{
    public const double InitialScale = 65536;
    public const int GrowthInterval = 2000;

    private LossScaler(bool enabled, double scale, int goodSteps)
    {
        Enabled = enabled;
        Scale = scale;
        GoodSteps = goodSteps;
    }

    public static LossScaler Disabled => new(false, 1, 0);

    public static LossScaler ForF16() => new(true, InitialScale, 0);

    public bool Enabled { get; }
    public double Scale { get; private set; }
    public int GoodSteps { get; private set; }

    /// <summary>The loss to back-propagate: <paramref name="loss"/> × S when scaling, else <paramref name="loss"/> itself.</summary>
    public Tensor Scaled(Tensor loss)
    {
        if (!Enabled) return loss;
        using var scale = Scale.ToScalar(); // held for the call (Forgetless.Model.Scalars)
        return loss.mul(scale);
    }

    /// <summary>After a step's gradients were read: true when the optimizer may step (gradients finite).</summary>
    public bool Update(bool gradientsFinite)
    {
        if (!Enabled) return gradientsFinite;
        if (!gradientsFinite)
        {
            Scale /= 2;
            GoodSteps = 0;
            return false;
        }
        if (++GoodSteps >= GrowthInterval)
        {
            Scale *= 2;
            GoodSteps = 0;
        }
        return true;
    }

    public IEnumerable<KeyValuePair<string, string>> ToMetadata() => Enabled
        ? [new("finetune.loss_scale", Scale.ToString("R", CultureInfo.InvariantCulture)), new("finetune.loss_scale_good_steps", GoodSteps.ToString(CultureInfo.InvariantCulture))]
        : [];

    public void Restore(IReadOnlyDictionary<string, string> metadata)
    {
        if (!Enabled) return;
        if (metadata.TryGetValue("finetune.loss_scale", out var s)) Scale = double.Parse(s, CultureInfo.InvariantCulture);
        if (metadata.TryGetValue("finetune.loss_scale_good_steps", out var g)) GoodSteps = int.Parse(g, CultureInfo.InvariantCulture);
    }
}
