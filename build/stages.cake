// One target per pipeline stage, created from the stage list of the executable (StageRegistry.All, read
// through `forgetless stages`): a stage added there gets its target here with no edit, named after the
// stage and described by its summary. Each target runs its stage's verb, which first brings every stale
// upstream stage up to date (like `dvc repro`), so a target depends only on Build and never reruns work
// whose inputs did not change; --force reruns just the target's own stage.
//   dotnet cake --target=FineTune --method=qlora --set=finetune.lora.r=16 --set=finetune.regularizers=[ewc,kd]
//   dotnet cake --target=Distill --set=distill.divergence=generalizedJsd --set=distill.beta=0.5

// What Cake adds to a stage it knows: the target's name and description, and arguments only that target passes.
sealed record StageTarget(string Name, string Description, Func<BuildParameters, IEnumerable<string>> Arguments = null);

var stageTargets = new Dictionary<string, StageTarget>
{
    ["prepare"] = new("Prepare", "Mix task and replay data into tokenized, packed Parquet (runs/prepare)"),
    ["finetune"] = new("FineTune", "Fine-tune the base model with the configured method and regularizers (runs/finetune)"),
    // Distill is on in the default forgetless.json; a config with distill.enabled=false leaves it out of the
    // pipeline, and this target still runs it for its own invocation (it turns it on).
    ["distill"] = new("Distill", "Consolidate the finetune adapter toward the teacher on replay rows (runs/distill; cached teacher pass in runs/.cache/teacher)",
        p => new[] { "--set", "distill.enabled=true" }),
    ["evaluate"] = new("Evaluate", "Score base vs candidate adapter on the suites, write reports, judge the release gates (exit 4 when one fails); --adapter=DIR evaluates a given adapter folder",
        p => p.Adapter != null ? new[] { "--adapter", MakeAbsolute(Directory(p.Adapter)).FullPath } : null),
    ["package"] = new("Package", "Package the gated adapter (runs/package: PEFT folder, provenance, SHA256SUMS, deterministic archive); refuses with exit 4 when a release gate failed"),
};

foreach (var (stage, summary) in PipelineStages(BuildParameters.From(Context)))
{
    var target = stageTargets.GetValueOrDefault(stage) ?? new StageTarget(char.ToUpperInvariant(stage[0]) + stage[1..], summary);
    Task(target.Name)
        .Description(target.Description)
        .IsDependentOn("Build")
        .Does<BuildParameters>((context, p) => Forgetless(p, stage, target.Arguments?.Invoke(p), forceable: true));
}
