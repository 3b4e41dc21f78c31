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
