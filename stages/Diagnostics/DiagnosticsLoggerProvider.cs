using Microsoft.Extensions.Logging;

namespace Forgetless.Stages.Diagnostics;

/// <summary>
/// Sends the warnings the stages log to the diagnostics file (as <see cref="DiagnosticCodes.Warning"/>), and
/// remembers the last error logged. Gate verdicts are left out: a failed gate is reported once, as an error, from
/// the evaluate stage's results.json.
/// </summary>
public sealed class DiagnosticsLoggerProvider(DiagnosticsFile file) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Logger(file);

    public void Dispose()
    {
    }

    private sealed class Logger(DiagnosticsFile file) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            string message = formatter(state, exception);
            if (logLevel >= LogLevel.Error)
                file.ErrorLogged(message);
            else if (!IsGateVerdict(state))
                file.Warning(message);
        }

        /// <summary>The evaluate stage logs each verdict with a structured <c>Gate</c> value ("gate {Gate}: {Message}").</summary>
        private static bool IsGateVerdict<TState>(TState state) =>
            state is IReadOnlyList<KeyValuePair<string, object?>> values && values.Any(v => v.Key == "Gate");
    }
}
