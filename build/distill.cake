// The distill stage: consolidate finetune's adapter toward the teacher (docs/distill.md). The default
// forgetless.json has it on, so evaluate and package take distill's adapter; a config with distill.enabled=false
// skips it in the pipeline, and this target still runs it for its own invocation (it turns it on).
//   dotnet cake --target=Distill --set=distill.divergence=generalizedJsd --set=distill.beta=0.5
Task("Distill")
    .Description("Consolidate the finetune adapter toward the teacher on replay rows (runs/distill; cached teacher pass in runs/.cache/teacher)")
    .IsDependentOn("FineTune")
    .Does(() => Forgetless("distill", new[] { "--set", "distill.enabled=true" }, forceable: true));
