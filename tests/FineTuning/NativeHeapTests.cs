using FluentAssertions;
using Forgetless.FineTuning;

namespace Forgetless.Tests.FineTuning;

/// <summary>
/// Where the stages' compute threads allocate from. A test process has many glibc arenas (every new thread gets one
/// until there are eight per core), so a plain new thread lands outside the main arena; the stages' thread must not.
/// </summary>
[Collection(Alone.Name)]
public sealed class NativeHeapTests
{
    [Fact]
    public async Task Work_runs_on_a_thread_that_allocates_from_the_main_arena_where_plain_threads_do_not()
    {
        if (NativeHeap.AllocatesFromMainArena() is null) return; // not glibc: nothing to choose between

        // The probe can say no: threads started side by side (each keeping its arena taken) are given other arenas.
        using var release = new ManualResetEventSlim(false);
        var answers = new bool?[6];
        var threads = Enumerable.Range(0, answers.Length).Select(i => new Thread(() =>
        {
            answers[i] = NativeHeap.AllocatesFromMainArena();
            release.Wait();
        })).ToList();
        threads.ForEach(t => t.Start());
        while (answers.Any(a => a is null)) Thread.Sleep(1);
        release.Set();
        threads.ForEach(t => t.Join());
        answers.Should().Contain(false);

        // glibc makes new arenas up to eight per core before it reuses one; a forgetless process stops that at its
        // start (doctor's test checks the outcome there), a test host does not, so only where the cores are few do
        // the tries reach the main arena here.
        if (8 * Environment.ProcessorCount > 16) return;
        for (int i = 0; i < 10; i++)
            (await NativeHeap.RunInMainArena(NativeHeap.AllocatesFromMainArena)).Should().BeTrue($"run {i}");
    }

    [Fact]
    public async Task The_work_s_result_and_exceptions_reach_the_awaiter_as_they_were()
    {
        (await NativeHeap.RunInMainArena(() => 6 * 7)).Should().Be(42);

        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        await FluentActions.Awaiting(() => NativeHeap.RunInMainArena<int>(() => throw new OperationCanceledException(cancelled.Token)))
            .Should().ThrowAsync<OperationCanceledException>().Where(e => e.CancellationToken == cancelled.Token);
        await FluentActions.Awaiting(() => NativeHeap.RunInMainArena<int>(() => throw new InvalidDataException("tensor 'x': expected f32")))
            .Should().ThrowAsync<InvalidDataException>().WithMessage("tensor 'x': expected f32");
    }
}

/// <summary>
/// Run after the parallel tests, with nothing beside them: other threads allocating at the same time keep glibc's
/// main arena locked and move its round robin on, and then a few dozen new threads may all be given other arenas
/// (seen once in CI, on run 3 of 10).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class Alone
{
    public const string Name = "Forgetless native heap tests (alone)";
}
