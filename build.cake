// Forgetless build entry point: `dotnet cake --target=FineTune` (or ./build.sh --target=FineTune).
// The tasks live in build/*.cake, one file per concern; `dotnet cake --description` lists them.
#load "build/parameters.cake"
#load "build/solution.cake"
#load "build/pipeline.cake"
#load "build/finetune.cake"
#load "build/distill.cake"

RunTarget(Argument("target", "Build"));
