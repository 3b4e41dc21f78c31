namespace Forgetless.Configuration;

/// <summary>
/// Marks an option that cannot change what a stage produces — how often it logs or checkpoints — so that it is left
/// out of the canonical JSON the run store fingerprints (<see cref="PipelineConfig.Canonical"/>): changing it does not
/// make the stage stale and does not retrain. Only for keys that are truly result-neutral: a resumed run ends with the
/// bytes of an uninterrupted one, so the checkpoint interval qualifies; the evaluation interval (best-weights keeping,
/// early stopping) does not.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class DoesNotChangeResultsAttribute : Attribute;
