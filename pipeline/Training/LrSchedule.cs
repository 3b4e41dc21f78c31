namespace Forgetless.Training;

/// <summary>
/// Linear warm-up then cosine decay to <see cref="MinRatio"/> of the peak, as a factor of the base learning rate
/// (transformers' cosine_with_min_lr): step &lt; warmup → step/warmup (so step 0 has factor 0);
/// afterwards min + (1 − min)·½(1 + cos(π·progress)), progress = (step − warmup)/(total − warmup), clamped to 1.
/// </summary>
public sealed record WarmupCosineSchedule(int WarmupSteps, int TotalSteps, double MinRatio = 0.0)
{
    public double Factor(long step)
    {
        if (WarmupSteps < 0 || TotalSteps <= 0 || MinRatio is < 0 or > 1)
            throw new ArgumentException($"Bad schedule {this}.");
        if (step < WarmupSteps) return (double)step / WarmupSteps;
        var span = Math.Max(1, TotalSteps - WarmupSteps);
        var progress = Math.Min(1.0, (double)(step - WarmupSteps) / span);
        return MinRatio + (1 - MinRatio) * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }
}
