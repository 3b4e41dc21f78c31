using System.Diagnostics;
using System.Globalization;
using Forgetless.FineTuning;
using Forgetless.Runs;
using Forgetless.Stages.Cli;
using Forgetless.Stages.Verbs;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.FineTune;

/// <summary>
/// `forgetless bench finetune [--steps N] [--output FILE]`: the machine's f32 matmul peak, then tokens/s, MFU,
/// trainable parameters and peak RSS (the whole process's, and while training) of every method on the base model's
/// shape and a larger one. Each case runs in its own child process so that its peak RSS is its own.
/// </summary>
public static class BenchVerb
{
    public static Verb Definition { get; } = new(
        "bench",
        "forgetless bench finetune [--steps N] [--output FILE.md]",
        "measure training throughput, MFU and memory of every fine-tuning method",
        Register);

    private static void Register(VerbContext context)
    {
        var cli = context.Cli;
        if (cli.Positional.Count != 1 || cli.Positional[0] != "finetune")
            throw new UsageException("bench: expected `forgetless bench finetune`");
        int steps = ScoreVerb.IntOption(cli, "steps", 2);
        string? output = cli.Option("output");
        string? oneCase = cli.Option("case");
        double? peak = cli.Option("peak") is { } p ? double.Parse(p, CultureInfo.InvariantCulture) : null;
        context.AddCommand(async (sp, ct) =>
        {
            if (oneCase is not null)
            {
                // A case has its process to itself: let its resident set follow its live tensors (see PeakMemory).
                PeakMemory.ReturnFreedBlocks();
                var parts = oneCase.Split('|');
                var placement = Forgetless.Configuration.DeviceSelector.Place(context.Run, sp.GetRequiredService<ILoggerFactory>().CreateLogger("forgetless"));
                Console.Out.WriteLine(FineTuneBenchmark.Measure(parts[0], parts[1], peak ?? FineTuneBenchmark.MatmulPeakGflops(), steps: steps, placement: placement).ToJson());
                return ExitCodes.Ok;
            }
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("forgetless");
            double measuredPeak = FineTuneBenchmark.MatmulPeakGflops();
            logger.LogInformation("bench: f32 matmul peak {Peak:F1} GFLOP/s", measuredPeak);
            var cases = new List<BenchmarkResult>();
            foreach (var model in FineTuneBenchmark.Models.Keys)
                foreach (var method in FineTuneBenchmark.Cases)
                {
                    ct.ThrowIfCancellationRequested();
                    var c = await RunChild(model, method, measuredPeak, steps, ct);
                    logger.LogInformation("bench: {Model} {Method}: {Tps:F0} tokens/s, MFU {Mfu:P1}", model, method, c.TokensPerSecond, c.Mfu);
                    cases.Add(c);
                }
            var table = FineTuneBenchmark.Table(measuredPeak, cases);
            Console.Out.Write(table);
            if (output is not null) AtomicFile.WriteAllText(output, table);
            return ExitCodes.Ok;
        });
    }

    private static async Task<BenchmarkResult> RunChild(string model, string method, double peak, int steps, CancellationToken ct)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in new[] { typeof(BenchVerb).Assembly.Location, "bench", "finetune", "--case", model + "|" + method,
                     "--peak", peak.ToString("R", CultureInfo.InvariantCulture), "--steps", steps.ToString(CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(a);
        using var child = Process.Start(start)!;
        var stdout = child.StandardOutput.ReadToEndAsync(ct);
        var stderr = child.StandardError.ReadToEndAsync(ct);
        await child.WaitForExitAsync(ct);
        var line = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault(l => l.StartsWith('{'));
        if (child.ExitCode != 0 || line is null)
            throw new InvalidOperationException($"bench case {model} / {method} failed (exit {child.ExitCode}): {await stderr}");
        return BenchmarkResult.FromJson(line);
    }
}
