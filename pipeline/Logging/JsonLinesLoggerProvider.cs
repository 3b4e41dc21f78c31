using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;

namespace Forgetless.Logging;

/// <summary>
/// Writes every log entry as one JSON object per line to a file of this run, so a CI system or a
/// later script can read what happened without scraping the console.
/// </summary>
public sealed class JsonLinesLoggerProvider : ILoggerProvider
{
    // A NaN or infinite value (a loss with no rows to average, say) is written as the string "NaN" / "Infinity":
    // JSON has no literal for them, and a log line must never stop the run it describes.
    private static readonly JsonSerializerOptions Json = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    private readonly StreamWriter writer;
    private readonly Lock gate = new();
    private readonly ConcurrentDictionary<string, Logger> loggers = new();

    public JsonLinesLoggerProvider(string path)
    {
        Path = path;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
    }

    public string Path { get; }

    public ILogger CreateLogger(string categoryName) => loggers.GetOrAdd(categoryName, name => new Logger(this, name));

    private void Write(string category, LogLevel level, EventId eventId, string message, Exception? exception,
        IReadOnlyList<KeyValuePair<string, object?>>? state)
    {
        var entry = new Dictionary<string, object?>
        {
            ["time"] = DateTimeOffset.UtcNow.ToString("O"),
            ["level"] = level.ToString(),
            ["category"] = category,
            ["message"] = message,
        };
        if (eventId.Id != 0) entry["eventId"] = eventId.Id;
        if (state is not null)
            foreach (var (key, value) in state)
                if (key != "{OriginalFormat}") entry[key] = value is IFormattable or string or bool or null ? value : value.ToString();
        if (exception is not null) entry["exception"] = exception.ToString();
        string line = JsonSerializer.Serialize(entry, Json);
        lock (gate) writer.WriteLine(line);
    }

    public void Dispose()
    {
        lock (gate) writer.Dispose();
    }

    private sealed class Logger(JsonLinesLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            owner.Write(category, logLevel, eventId, formatter(state, exception), exception,
                state as IReadOnlyList<KeyValuePair<string, object?>>);
        }
    }
}
