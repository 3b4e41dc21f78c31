using static Forgetless.Tests.Data.PrepareFixture;

namespace Forgetless.Tests.Data;

public sealed class SplitTests
{
    [Fact]
    public async Task Adding_rows_does_not_move_existing_rows_between_train_and_validation()
    {
        using var f = new PrepareFixture();
        var original = Enumerable.Range(0, 120).Select(i => $"row number {i}").ToList();
        var options = Options(Source(f.WriteLines("a.txt", original)));
        options.ValidationFraction = 0.3;
        var (_, first) = await f.RunAsync(options, "first");
        var validationBefore = (await ReadValidationAsync(first)).SelectMany(r => r.Text).ToHashSet();

        var grown = original.Take(60).Concat(Enumerable.Range(0, 80).Select(i => $"new row {i}")).Concat(original.Skip(60)).ToList();
        options.TaskSources = [Source(f.WriteLines("b.txt", grown))];
        options.Seed = 99;
        var (_, second) = await f.RunAsync(options, "second");
        var validationAfter = (await ReadValidationAsync(second)).SelectMany(r => r.Text).ToHashSet();
        var trainAfter = (await ReadTrainAsync(second)).SelectMany(r => r.Text).ToHashSet();

        validationBefore.Count.Should().BeInRange(20, 55);
        foreach (var row in original)
            (validationAfter.Contains(row) ? "validation" : trainAfter.Contains(row) ? "train" : "missing")
                .Should().Be(validationBefore.Contains(row) ? "validation" : "train", row);
    }
}
