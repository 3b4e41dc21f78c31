using System.Globalization;
using TorchSharp;

namespace Forgetless.Runs;

/// <summary>
/// A stage's metrics also written as TensorBoard event files (<c>run.tensorboard</c>), through TorchSharp's
/// SummaryWriter: <c>tensorboard --logdir runs/</c> shows every stage's curves. Each invocation writes its own folder
/// <c>ROOT/tensorboard/STAGE/yyyyMMdd-HHmmss</c>, so a resumed or repeated run is a second curve, not a garbled one.
/// These are logs, like <c>logs/</c>: written as the run goes, not part of a stage's outputs or fingerprint.
/// </summary>
public sealed class TensorboardLog
{
    private readonly Lazy<TorchSharp.Modules.SummaryWriter> writer;

    public TensorboardLog(string folder)
    {
        Folder = folder;
        writer = new(() => torch.utils.tensorboard.SummaryWriter(folder));
    }

    public string Folder { get; }

    /// <summary>The folder for one invocation of <paramref name="stage"/> under <paramref name="runRoot"/>.</summary>
    public static TensorboardLog Under(string runRoot, string stage) =>
        new(Path.Combine(runRoot, "tensorboard", stage, DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)));

    /// <summary>Every finite number of <paramref name="entry"/> (but the step itself) as a scalar <c>GROUP/KEY</c> at <paramref name="step"/>.</summary>
    public void Write(string group, long step, IReadOnlyDictionary<string, object?> entry)
    {
        foreach (var (key, value) in entry)
        {
            if (key == "step") continue;
            double? number = value switch
            {
                double d => d, float f => f, long l => l, int i => i, decimal m => (double)m, _ => null,
            };
            if (number is { } n && double.IsFinite(n)) writer.Value.add_scalar($"{group}/{key}", (float)n, checked((int)step));
        }
    }
}
