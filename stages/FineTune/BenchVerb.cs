using System.Diagnostics;
using System.Globalization;
using Forgetless.Configuration;
using Forgetless.FineTuning;
using Forgetless.Runs;
using Forgetless.Stages.Cli;
using Forgetless.Stages.Verbs;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.FineTune;

/// <summary>
/// `forgetless bench finetune [--steps N] [--output FILE]`: the machine's f32 matmul peak, then tokens/s, MFU, the
/// matmul-only lower bound of each step at that peak, trainable parameters and peak RSS (the whole process's, and while
/// training) of every method on the base model's shape and a larger one; each case's time is its fastest of
/// <c>--rounds</c> (default 2) runs made one round after another. Each case runs in child processes of its
/// own: timed ones with the allocator as every run has it, one measuring peak RSS with freed blocks handed back to the
/// OS (<see cref="NativeHeap.ReturnFreedBlocks"/>), which makes peaks repeatable but costs every large allocation its
/// page faults again (measured: a large full step 0.8 s with glibc's default, 1.15 s with it), so it must not be timed.
/// `forgetless bench contention [--steps N] [--output FILE]`: a training step and a scoring batch alone, then beside one busy process (a child spinning one core), and the ratio.
/// </summary>
public static class BenchVerb
{
    public static Verb Definition { get; } = new(
        "bench",
        "forgetless bench finetune|contention|profile [--steps N] [--output FILE.md] [--rounds N] [--case \"MODEL|METHOD\" [--memory]] [--model NAME]",
        "measure training throughput, MFU and memory of every fine-tuning method; the slowdown beside a busy process; or where a full step's time goes",
        Register);

    private static void Register(VerbContext context)
    {
        var cli = context.Cli;
        if (cli.Positional.Count != 1 || cli.Positional[0] is not ("finetune" or "contention" or "profile" or "busy" or "scoring"))
            throw new UsageException("bench: expected `forgetless bench finetune`, `forgetless bench contention` or `forgetless bench profile`");
        string what = cli.Positional[0];
        int steps = ScoreVerb.IntOption(cli, "steps", 2);
        string? output = cli.Option("output");
        string? oneCase = cli.Option("case");
        bool memory = cli.Flag("memory");
        int rounds = ScoreVerb.IntOption(cli, "rounds", 2);
        // The pipeline file and overrides (Cake passes them to every verb): they place the cases (run.device), and every
        // child process gets them too.
        var pipeline = new List<string>();
        if (cli.Option("config") is { } configFile) pipeline.AddRange(["--config", configFile]);
        foreach (var setting in cli.Options("set")) pipeline.AddRange(["--set", setting]);
        double? peak = cli.Option("peak") is { } p ? double.Parse(p, CultureInfo.InvariantCulture) : null;
        string profiled = cli.Option("model") ?? "large 8L d512";
        if (what == "profile" && !FineTuneBenchmark.Models.ContainsKey(profiled))
            throw new UsageException($"bench profile: unknown --model '{profiled}'; models: {string.Join(", ", FineTuneBenchmark.Models.Keys)}");
        context.AddCommand(async (sp, ct) =>
        {
            if (what == "busy") return Spin(ct);
            TorchThreads.Apply(0);
            if (what == "scoring")
            {
                Console.Out.WriteLine((await NativeHeap.RunInMainArena(() => FineTuneBenchmark.MeasureScoring("base 4L d256"))).ToString("R", CultureInfo.InvariantCulture));
                return ExitCodes.Ok;
            }
            if (what == "contention") return await Contention(sp, steps, output, pipeline, ct);
            if (what == "profile")
            {
                double measured = peak ?? FineTuneBenchmark.MatmulPeakGflops();
                var profile = StepProfile.Table(profiled, measured, await NativeHeap.RunInMainArena(() => StepProfile.Measure(profiled, measured, Math.Max(steps, 4))));
                Console.Out.Write(profile);
                if (output is not null) AtomicFile.WriteAllText(output, profile);
                return ExitCodes.Ok;
            }
            if (oneCase is not null)
            {
                // Measuring memory: the case has its process to itself, so let the resident set follow its live tensors
                // (see PeakMemory). Timing: the allocator as a run has it.
                if (memory) NativeHeap.ReturnFreedBlocks();
                var parts = oneCase.Split('|');
                var placement = Forgetless.Configuration.DeviceSelector.Place(context.Run, sp.GetRequiredService<ILoggerFactory>().CreateLogger("forgetless"));
                var result = await NativeHeap.RunInMainArena(() => FineTuneBenchmark.Measure(parts[0], parts[1], peak ?? FineTuneBenchmark.MatmulPeakGflops(), steps: steps, placement: placement));
                Console.Out.WriteLine(result.ToJson());
                return ExitCodes.Ok;
            }
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("forgetless");
            double measuredPeak = FineTuneBenchmark.MatmulPeakGflops();
            logger.LogInformation("bench: f32 matmul peak {Peak:F1} GFLOP/s", measuredPeak);
            // Every case is timed once per round, the rounds one after another, and keeps its fastest: a disturbance of
            // the machine lasting half a minute (measured: three neighbouring cases 30-40% slow in one run) then costs a
            // case one of its rounds, not its number.
            var all = FineTuneBenchmark.Models.Keys.SelectMany(model => FineTuneBenchmark.Cases.Select(method => (model, method))).ToList();
            var fastest = new Dictionary<(string, string), BenchmarkResult>();
            for (int round = 1; round <= rounds; round++)
                foreach (var (model, method) in all)
                {
                    ct.ThrowIfCancellationRequested();
                    var c = await RunCase(model, method, measuredPeak, steps, memory: false, pipeline, ct);
                    logger.LogInformation("bench: round {Round}/{Rounds}, {Model} {Method}: {Tps:F0} tokens/s, MFU {Mfu:P1}", round, rounds, model, method, c.TokensPerSecond, c.Mfu);
                    if (!fastest.TryGetValue((model, method), out var best) || c.SecondsPerStep < best.SecondsPerStep) fastest[(model, method)] = c;
                }
            var cases = new List<BenchmarkResult>();
            foreach (var (model, method) in all)
            {
                ct.ThrowIfCancellationRequested();
                var measured = await RunCase(model, method, measuredPeak, MemorySteps, memory: true, pipeline, ct);
                cases.Add(fastest[(model, method)] with { PeakRssBytes = measured.PeakRssBytes, TrainingPeakRssBytes = measured.TrainingPeakRssBytes });
            }
            var table = FineTuneBenchmark.Table(measuredPeak, cases);
            Console.Out.Write(table);
            if (output is not null) AtomicFile.WriteAllText(output, table);
            return ExitCodes.Ok;
        });
    }

    /// <summary>One busy process: a thread that never waits, as another program's compute loop would be.</summary>
    private static int Spin(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested) Thread.SpinWait(1000);
        return ExitCodes.Ok;
    }

    private static async Task<int> Contention(IServiceProvider sp, int steps, string? output, IReadOnlyList<string> pipeline, CancellationToken ct)
    {
        var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("forgetless");
        double peak = FineTuneBenchmark.MatmulPeakGflops();
        async Task<(double Training, double Scoring)> Both() =>
            ((await RunCase("base 4L d256", "full", peak, steps, memory: false, pipeline, ct)).SecondsPerStep,
             double.Parse((await RunSelf(["bench", "scoring"], ct)).Trim().Split('\n')[^1], CultureInfo.InvariantCulture));
        var alone = await Both();
        (double Training, double Scoring) beside;
        using (var busy = Process.Start(Hosting.SelfProcess.StartInfo(["bench", "busy"], redirect: true))!)
        {
            try
            {
                await Task.Delay(500, ct);
                beside = await Both();
            }
            finally
            {
                busy.Kill();
                await busy.WaitForExitAsync(CancellationToken.None);
            }
        }
        string table = string.Join("\n",
        [
            $"{TorchSharp.torch.get_num_threads()} torch threads; each process's OpenMP wait as it decided at start (alone: {TorchThreads.Current}); f32 matmul peak {peak.ToString("F1", CultureInfo.InvariantCulture)} GFLOP/s.",
            "",
            "| work | alone s | beside one busy process s | ratio |",
            "|---|---:|---:|---:|",
            Row("training step (base 4L d256, full, 4 × 256 tokens)", alone.Training, beside.Training),
            Row("scoring batch (base 4L d256, 8 × 256 tokens, forward + log-softmax)", alone.Scoring, beside.Scoring),
        ]) + "\n";
        logger.LogInformation("bench: contention ratio {Training:F2} (training), {Scoring:F2} (scoring)", beside.Training / alone.Training, beside.Scoring / alone.Scoring);
        Console.Out.Write(table);
        if (output is not null) AtomicFile.WriteAllText(output, table);
        return ExitCodes.Ok;
    }

    private static string Row(string work, double alone, double beside) =>
        string.Create(CultureInfo.InvariantCulture, $"| {work} | {alone:F3} | {beside:F3} | {beside / alone:F2} |");

    private static async Task<string> RunSelf(IEnumerable<string> arguments, CancellationToken ct)
    {
        using var child = Process.Start(Hosting.SelfProcess.StartInfo(arguments, redirect: true))!;
        var stdout = child.StandardOutput.ReadToEndAsync(ct);
        var stderr = child.StandardError.ReadToEndAsync(ct);
        await child.WaitForExitAsync(ct);
        if (child.ExitCode != 0) throw new InvalidOperationException($"bench {string.Join(' ', arguments)} failed (exit {child.ExitCode}): {await stderr}");
        return await stdout;
    }

    /// <summary>Steps of a memory child: the first builds the optimizer state, the second is a step as every later one.</summary>
    private const int MemorySteps = 2;

    private static async Task<BenchmarkResult> RunCase(string model, string method, double peak, int steps, bool memory, IReadOnlyList<string> pipeline,
        CancellationToken ct)
    {
        var stdout = await RunSelf(["bench", "finetune", "--case", model + "|" + method, "--peak", peak.ToString("R", CultureInfo.InvariantCulture),
            "--steps", steps.ToString(CultureInfo.InvariantCulture), .. pipeline, .. memory ? ["--memory"] : Array.Empty<string>()], ct);
        var line = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault(l => l.StartsWith('{'))
                   ?? throw new InvalidOperationException($"bench case {model} / {method} printed no result");
        return BenchmarkResult.FromJson(line);
    }
}
