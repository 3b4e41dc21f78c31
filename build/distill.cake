// The distill stage: consolidate finetune's adapter toward the teacher (docs/distill.md). It is off in the
// default forgetless.json (distill.enabled=false keeps the default run short); this target turns it on for its
// own invocation. To make evaluate and package take distill's adapter, set distill.enabled=true in the config
// (or pass --set=distill.enabled=true to those targets too).
//   dotnet cake --target=Distill --set=distill.divergence=generalizedJsd --set=distill.beta=0.5
Task("Distill")
    .Description("Consolidate the finetune adapter toward the teacher on replay rows (runs/distill; cached teacher pass in runs/.cache/teacher)")
    .IsDependentOn("FineTune")
    .Does(() => Forgetless("distill", new[] { "--set", "distill.enabled=true" }, forceable: true));
