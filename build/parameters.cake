// Knobs that pass from the Cake command line to the pipeline, e.g.
//   dotnet cake --target=FineTune --method=qlora --device=cpu --force --set=finetune.lora.rank=16
var target = Argument("target", "Build");
var configuration = Argument("configuration", "Release");
var pipelineFile = Argument("config", "forgetless.json");
var force = HasArgument("force");
var method = Argument<string>("method", null);
var device = Argument<string>("device", null);
var settings = Arguments<string>("set", new string[0]);

var solution = "./Forgetless.sln";
var forgetlessDll = $"./stages/bin/{configuration}/net10.0/forgetless.dll";

// Every `--set section.key=value` plus the shortcuts above, as forgetless arguments.
IEnumerable<string> PipelineArguments()
{
    yield return "--config";
    yield return pipelineFile;
    if (method != null) { yield return "--set"; yield return "finetune.method=" + method; }
    if (device != null) { yield return "--set"; yield return "run.device=" + device; }
    foreach (var s in settings) { yield return "--set"; yield return s; }
}

// Runs the already-built forgetless executable; a non-zero exit fails the task with a CakeException
// carrying forgetless's own code, which build.cake makes the build's exit code.
void Forgetless(string verb, IEnumerable<string> extra = null, bool forceable = false)
{
    var args = new ProcessArgumentBuilder().Append(forgetlessDll).Append(verb);
    foreach (var a in PipelineArguments()) args.AppendQuoted(a);
    foreach (var a in extra ?? new string[0]) args.AppendQuoted(a);
    if (forceable && force) args.Append("--force");
    int code = StartProcess("dotnet", new ProcessSettings { Arguments = args });
    if (code != 0) throw new CakeException(code, $"forgetless {verb} exited with code {code}");
}
