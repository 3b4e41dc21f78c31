using System.Diagnostics;
using System.Globalization;

namespace Forgetless.Progress;

/// <summary>
/// Progress of a long loop with rate and ETA. On a terminal it redraws one line in place; when
/// output is redirected (CI, log files) it prints a plain line every few seconds instead, so logs
/// stay readable. Thread-compatible, not thread-safe: report from the loop's thread.
/// </summary>
public sealed class ProgressBar : IDisposable
{
    private readonly string label;
    private readonly string unit;
    private readonly TextWriter output;
    private readonly bool interactive;
    private readonly TimeSpan plainInterval;
    private readonly Stopwatch clock = Stopwatch.StartNew();
    private readonly long startDone;
    private TimeSpan? lastDraw;
    private long done;
    private string detail = "";

    public ProgressBar(string label, long total, string unit = "it", long alreadyDone = 0, TextWriter? output = null,
        bool? interactive = null, TimeSpan? plainInterval = null)
    {
        this.label = label;
        this.unit = unit;
        Total = total;
        done = startDone = alreadyDone;
        this.output = output ?? Console.Error;
        this.interactive = interactive ?? (!Console.IsErrorRedirected && Environment.GetEnvironmentVariable("CI") is null);
        this.plainInterval = plainInterval ?? TimeSpan.FromSeconds(10);
    }

    public long Total { get; }
    public long Done => done;

    /// <summary>Units per second since this bar started (resumed work is not counted as speed).</summary>
    public double Rate => clock.Elapsed.TotalSeconds > 0 ? (done - startDone) / clock.Elapsed.TotalSeconds : 0;

    public void Report(long doneNow, string? detailNow = null)
    {
        done = doneNow;
        if (detailNow is not null) detail = detailNow;
        var now = clock.Elapsed;
        bool due = lastDraw is not { } last || (interactive ? now - last > TimeSpan.FromMilliseconds(200) : now - last >= plainInterval);
        if (due || done >= Total) Draw(now);
    }

    public void Advance(long by = 1, string? detailNow = null) => Report(done + by, detailNow);

    public string Line()
    {
        double fraction = Total > 0 ? Math.Clamp((double)done / Total, 0, 1) : 0;
        double rate = Rate;
        string eta = rate > 0 && done < Total ? Format(TimeSpan.FromSeconds((Total - done) / rate)) : "--:--";
        string text = string.Create(CultureInfo.InvariantCulture,
            $"{label} {fraction * 100,5:F1}% {done}/{Total} {unit} · {Human(rate)} {unit}/s · elapsed {Format(clock.Elapsed)} · ETA {eta}");
        return detail.Length > 0 ? text + " · " + detail : text;
    }

    private void Draw(TimeSpan now)
    {
        lastDraw = now;
        if (interactive)
        {
            const int width = 20;
            int filled = Total > 0 ? (int)Math.Round(width * Math.Clamp((double)done / Total, 0, 1)) : 0;
            output.Write("\r\u001b[2K[" + new string('#', filled) + new string('.', width - filled) + "] " + Line());
        }
        else
        {
            output.WriteLine(Line());
        }
        output.Flush();
    }

    public void Dispose()
    {
        if (interactive) output.WriteLine();
        else if (lastDraw is null || done < Total) output.WriteLine(Line());
        output.Flush();
    }

    private static string Human(double value) =>
        value >= 1e6 ? (value / 1e6).ToString("F2", CultureInfo.InvariantCulture) + "M"
        : value >= 1e4 ? (value / 1e3).ToString("F1", CultureInfo.InvariantCulture) + "k"
        : value.ToString(value >= 100 ? "F0" : "F2", CultureInfo.InvariantCulture);

    private static string Format(TimeSpan t) =>
        t.TotalHours >= 1 ? $"{(int)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}" : $"{t.Minutes:00}:{t.Seconds:00}";
}
