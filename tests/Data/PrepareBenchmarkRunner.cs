using Forgetless.Data;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Forgetless.Tests.Data;

/// <summary>
/// Runs <see cref="PrepareBenchmark"/> on a 500 MB input. Skipped unless FORGETLESS_BENCH=1:
/// <c>FORGETLESS_BENCH=1 dotnet test --filter FullyQualifiedName~PrepareBenchmarkRunner --logger "console;verbosity=detailed"</c>.
/// </summary>
public sealed class PrepareBenchmarkRunner(ITestOutputHelper output)
{
    [BenchmarkFact]
    public async Task Prepare_throughput_and_peak_memory_on_500_MB_of_jsonl()
    {
        var megabytes = int.TryParse(Environment.GetEnvironmentVariable("FORGETLESS_BENCH_MB"), out var mb) ? mb : 500;
        var result = await PrepareBenchmark.RunAsync(new CharTokenizer(), Path.GetTempPath(), megabytes * 1_000_000L, new ConsoleLogger(), CancellationToken.None);
        output.WriteLine(result.ToString());
        Console.WriteLine(result);
        result.ReplayShare.Should().BeApproximately(0.25, 0.01);
    }

    private sealed class ConsoleLogger : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Console.WriteLine($"{DateTime.UtcNow:HH:mm:ss.f} {formatter(state, exception)}");
    }

    private sealed class BenchmarkFactAttribute : FactAttribute
    {
        public BenchmarkFactAttribute()
        {
            if (Environment.GetEnvironmentVariable("FORGETLESS_BENCH") != "1")
                Skip = "benchmark; set FORGETLESS_BENCH=1 to run";
        }
    }
}
