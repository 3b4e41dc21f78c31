// Forgetless build entry point: `dotnet cake --target=FineTune` (or ./build.sh --target=FineTune).
// The tasks live in build/*.cake, one file per concern; `dotnet cake --description` lists them.
#load "build/parameters.cake"
#load "build/forgetless.cake"
#load "build/solution.cake"
#load "build/stages.cake"
#load "build/pipeline.cake"
#load "build/packages.cake"

Setup<BuildParameters>(context => BuildParameters.From(context));

// A failed task's CakeException reaches Cake wrapped in a CakeReportException, and cake.tool 7.0.0 exits
// with the outer exception's code, which is always 1. Measured: a task throwing new CakeException(4, ...)
// exits 1; the same exception rethrown here, outside RunTarget, exits 4. So the build exits with
// forgetless's own code: 4 a release gate failed, 2 usage or configuration, 3 stale, 130 cancelled.
try
{
    RunTarget(Argument("target", "Build"));
}
catch (CakeReportException e) when (e.InnerException is CakeException failure)
{
    throw new CakeException(failure.ExitCode, failure.Message, e);
}
