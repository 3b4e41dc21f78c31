using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json.Serialization;
using Forgetless.Peft;

namespace Forgetless.FineTuning;

/// <summary>
/// summary.json of a stage that trains (finetune, distill), written in snake_case (<see cref="Runs.OutputJson"/>).
/// Losses are nats per target token, rounded to 5 decimals; a loss that could not be measured (no validation rows)
/// is null.
/// </summary>
public record TrainingSummary
{
    public const string FileName = "summary.json";

    public required string Method { get; init; }
    public required long Steps { get; init; }
    public required long Tokens { get; init; }
    public required long ResumedFromStep { get; init; }
    public required double? ValidationTaskLossBefore { get; init; }
    public required double? ValidationTaskLossAfter { get; init; }
    public required double? HeldoutLossBefore { get; init; }
    public required double? HeldoutLossAfter { get; init; }
    public required long TrainableParameters { get; init; }
    public required long PeakRssBytes { get; init; }
    public required double TrainSeconds { get; init; }
    public required double WallSeconds { get; init; }

    /// <summary>A loss as recorded: rounded to 5 decimals, or null when it is not a number.</summary>
    public static double? Loss(double value) => double.IsFinite(value) ? Math.Round(value, 5) : null;

    /// <summary>The fields every training stage records, from the trainer's result.</summary>
    public static TrainingSummary Of(TrainingResult result, TunedModel tuned, Stopwatch stageClock) => new()
    {
        Method = tuned.Method.Name,
        Steps = result.Steps,
        Tokens = result.Tokens,
        ResumedFromStep = result.ResumedFromStep,
        ValidationTaskLossBefore = Loss(result.ValidationLossBefore),
        ValidationTaskLossAfter = Loss(result.ValidationLossAfter),
        HeldoutLossBefore = Loss(result.HeldoutLossBefore),
        HeldoutLossAfter = Loss(result.HeldoutLossAfter),
        TrainableParameters = tuned.TrainableParameters,
        PeakRssBytes = Process.GetCurrentProcess().PeakWorkingSet64,
        TrainSeconds = Math.Round(result.WallSeconds, 1),
        WallSeconds = Math.Round(stageClock.Elapsed.TotalSeconds, 1),
    };
}

/// <summary>The finetune stage's summary.json.</summary>
public sealed record FineTuneSummary : TrainingSummary
{
    [SetsRequiredMembers]
    public FineTuneSummary(TrainingSummary common) : base(common) { }

    public IReadOnlyList<string> Regularizers { get; init; } = [];
    public string StopReason { get; init; } = "";
    public double? BestValidationTaskLoss { get; init; }
    /// <summary>The best held-out task accuracy of the evaluations (finetune.targetAccuracy's metric); left out when not measured.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? BestHeldoutTaskAccuracy { get; init; }
    public long BestStep { get; init; }
    public long TotalParameters { get; init; }
    /// <summary>Seconds the base model took to load (and, for qlora, to quantize).</summary>
    public double LoadSeconds { get; init; }
    /// <summary>The peak memory estimated before loading (<see cref="MemoryEstimate"/>), to set beside <see cref="TrainingSummary.PeakRssBytes"/>.</summary>
    public long EstimatedPeakBytes { get; init; }
    /// <summary>What the method reports about itself (<see cref="PeftMethod.Facts"/>, e.g. qlora's NF4 bytes).</summary>
    [JsonExtensionData]
    public Dictionary<string, object?> MethodFacts { get; init; } = [];
}
