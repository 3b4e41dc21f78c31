// The finetune stage and its benchmark. FineTune depends on Prepare where the pipeline defines it;
// the forgetless verb itself also brings a stale prepare stage up to date first (like `dvc repro`).
//   dotnet cake --target=FineTune --method=qlora --set=finetune.lora.r=16 --set=finetune.regularizers=[ewc,kd]
Task("FineTune")
    .Description("Fine-tune the base model with the configured method and regularizers (runs/finetune)")
    .IsDependentOn(Tasks.Any(t => t.Name == "Prepare") ? "Prepare" : "Build")
    .Does(() => Forgetless("finetune", forceable: true));

Task("Benchmark")
    .Description("Measure tokens/s, MFU and memory of every fine-tuning method (writes docs/benchmarks/finetune.table.md)")
    .IsDependentOn("Build")
    .Does(() => Forgetless("bench", new[] { "finetune", "--steps", Argument("steps", 6).ToString(), "--output", "docs/benchmarks/finetune.table.md" }));
