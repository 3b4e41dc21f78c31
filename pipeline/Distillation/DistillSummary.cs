using System.Diagnostics.CodeAnalysis;
using Forgetless.FineTuning;

namespace Forgetless.Distill;

/// <summary>The distill stage's summary.json: the training numbers plus the teacher pass and the KL to the teacher.</summary>
public sealed record DistillSummary : TrainingSummary
{
    [SetsRequiredMembers]
    public DistillSummary(TrainingSummary common) : base(common) { }

    /// <summary>The teacher's folder, or "base model".</summary>
    public string Teacher { get; init; } = "";
    public Training.KdDivergence Divergence { get; init; }
    public double Alpha { get; init; }
    public double Temperature { get; init; }
    /// <summary>Generalized JSD's β (null for the other divergences).</summary>
    public double? Beta { get; init; }
    public int TopK { get; init; }
    public string TeacherPassKey { get; init; } = "";
    public bool TeacherPassReused { get; init; }
    public int TeacherRows { get; init; }
    public long TeacherTokens { get; init; }
    public double TeacherPassSeconds { get; init; }
    public double TeacherTokensPerSecond { get; init; }
    public double TeacherMeanTailMass { get; init; }
    public int TaskRows { get; init; }
    public double? KlToTeacherHeldoutBefore { get; init; }
    public double? KlToTeacherHeldoutAfter { get; init; }
    public double? KlToTeacherValidationReplayBefore { get; init; }
    public double? KlToTeacherValidationReplayAfter { get; init; }
}
