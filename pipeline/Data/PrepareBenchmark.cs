using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Forgetless.Model.Tokenizers;
using Microsoft.Extensions.Logging;

namespace Forgetless.Data;

/// <summary>
/// Throughput and memory of the prepare engine on a generated input (instruction JSON lines plus a plain-text
/// replay file), written into <c>workDirectory</c> and deleted afterwards. Not a test: run it by hand (see
/// docs/prepare.md) and record the numbers.
/// </summary>
public static class PrepareBenchmark
{
    /// <summary>Wall and CPU time of the engine alone (input generation excluded); MB are 10^6 bytes of input read.</summary>
    public sealed record Result(long InputBytes, long Rows, double Seconds, double CpuSeconds, double MegabytesPerSecond,
        double MegabytesPerCpuSecond, long PeakRssBytes, long TrainTokens, long OutputBytes, double ReplayShare);

    public static async Task<Result> RunAsync(ITokenizer tokenizer, string workDirectory, long taskBytes, ILogger? logger, CancellationToken cancellationToken)
    {
        var root = Path.Combine(workDirectory, "prepare-benchmark-" + Environment.ProcessId);
        Directory.CreateDirectory(root);
        try
        {
            var taskPath = Path.Combine(root, "task.jsonl");
            var replayPath = Path.Combine(root, "replay.txt");
            var suitePath = Path.Combine(root, "suite.jsonl");
            var rows = WriteInputs(taskPath, replayPath, suitePath, taskBytes);
            var inputBytes = new FileInfo(taskPath).Length + new FileInfo(replayPath).Length;
            var options = new PrepareOptions
            {
                TaskSources = [new DataSourceOptions { Path = taskPath, PromptField = "prompt", ResponseField = "response" }],
                ReplaySources = [new DataSourceOptions { Path = replayPath }],
                ReplayShare = 0.25,
                SeqLen = 1024,
                Decontaminate = new DecontaminationOptions { Suites = [suitePath] },
            };
            var output = Path.Combine(root, "out");
            var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
            var watch = Stopwatch.StartNew();
            var stats = await new PrepareEngine(options, tokenizer, "benchmark", logger: logger).RunAsync(root, output, Path.Combine(root, "work"), cancellationToken);
            watch.Stop();
            var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
            var outputBytes = Directory.EnumerateFiles(output).Sum(f => new FileInfo(f).Length);
            return new Result(inputBytes, rows, watch.Elapsed.TotalSeconds, cpu, inputBytes / 1e6 / watch.Elapsed.TotalSeconds, inputBytes / 1e6 / cpu, PeakRss(),
                stats.Train.Tokens, outputBytes, stats.AchievedReplayShare);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>VmHWM of this process (peak resident set), in bytes; 0 where /proc is missing.</summary>
    public static long PeakRss()
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status)) return 0;
        var line = File.ReadLines(status).FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0]) * 1024;
    }

    private static long WriteInputs(string taskPath, string replayPath, string suitePath, long taskBytes)
    {
        string[] words = ["river", "stone", "light", "north", "cable", "maple", "orbit", "quiet", "sand", "tide", "wolf", "ember",
            "garden", "signal", "copper", "winter", "harbor", "lantern", "meadow", "thunder", "velvet", "canyon", "pepper", "marble"];
        var random = new Random(42);
        string Sentence(int n)
        {
            var b = new StringBuilder();
            for (var i = 0; i < n; i++) b.Append(i == 0 ? "" : " ").Append(words[random.Next(words.Length)]);
            return b.ToString();
        }
        long rows = 0;
        using (var task = new StreamWriter(taskPath, false, new UTF8Encoding(false), 1 << 20))
        {
            while (task.BaseStream.Position < taskBytes)
            {
                task.WriteLine(JsonSerializer.Serialize(new Dictionary<string, string>
                {
                    ["prompt"] = $"Question {rows}: " + Sentence(random.Next(8, 30)) + "?\n",
                    ["response"] = Sentence(random.Next(20, 90)) + ".",
                }));
                rows++;
            }
        }
        using (var replay = new StreamWriter(replayPath, false, new UTF8Encoding(false), 1 << 20))
        {
            while (replay.BaseStream.Position < taskBytes / 5)
            {
                replay.WriteLine($"Old text {rows}: " + Sentence(random.Next(10, 120)) + ".");
                rows++;
            }
        }
        File.WriteAllLines(suitePath, Enumerable.Range(0, 200).Select(i =>
            JsonSerializer.Serialize(new Dictionary<string, string> { ["context"] = Sentence(40), ["target"] = Sentence(1) })));
        return rows;
    }
}
