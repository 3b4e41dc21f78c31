using System.Text.Json;
using FluentAssertions;
using Forgetless.Logging;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Forgetless.Tests.Logging;

public class JsonLinesLoggerTests
{
    [Fact]
    public void A_non_finite_value_is_written_as_a_named_string_and_the_line_stays_valid_json()
    {
        using var dir = new TempDirectory();
        string path = dir.File("log.jsonl");
        using (var provider = new JsonLinesLoggerProvider(path))
        {
            var logger = provider.CreateLogger("test");
            // A trainer with nothing to validate on logs NaN losses; this used to throw out of the logger and fail the run.
            logger.LogInformation("before training — validation task loss {Val:F4}, held-out loss {Heldout:F4}", double.NaN, double.PositiveInfinity);
            logger.LogInformation("step {Step}: loss {Loss}", 3, 1.5);
        }
        var lines = File.ReadAllLines(path);
        lines.Should().HaveCount(2);
        using var first = JsonDocument.Parse(lines[0]);
        first.RootElement.GetProperty("Val").GetString().Should().Be("NaN");
        first.RootElement.GetProperty("Heldout").GetString().Should().Be("Infinity");
        using var second = JsonDocument.Parse(lines[1]);
        second.RootElement.GetProperty("Loss").GetDouble().Should().Be(1.5);
        second.RootElement.GetProperty("Step").GetInt32().Should().Be(3);
    }
}
