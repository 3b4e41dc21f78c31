using FluentAssertions;
using Forgetless.FineTuning;

namespace Forgetless.Tests.FineTuning;

public sealed class MetricsLogTests
{
    [Fact]
    public void A_non_finite_number_is_left_out_of_its_line_instead_of_failing_the_run()
    {
        using var dir = new TempDirectory();
        var log = new MetricsLog(Path.Combine(dir.Path, MetricsLog.FileName));

        log.Append(new() { ["step"] = 0L, ["val_task_loss"] = double.NaN, ["heldout_loss"] = 5.25, ["kd"] = double.PositiveInfinity });

        File.ReadAllText(log.Path).Should().Be("{\"step\":0,\"heldout_loss\":5.25}\n");
        MetricsLog.Read(log.Path).Single().Should().ContainKeys("step", "heldout_loss").And.NotContainKey("val_task_loss");
    }
}
