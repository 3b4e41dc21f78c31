using Forgetless.FineTuning;
using Forgetless.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Tests.Model;

/// <summary>
/// What TemporaryTensors.HeldDuring holds while the work runs and what it leaves as it was afterwards, read from
/// TorchSharp's per-thread scope statistics (a tensor made inside a scope is one the scope references).
/// </summary>
public sealed class TemporaryTensorsTests
{
    private static ThreadDisposeScopeStatistics Counts => DisposeScopeManager.Statistics;

    /// <summary>Whether a tensor made now on this thread is made inside a DisposeScope.</summary>
    private static bool MadeInScope()
    {
        long before = Counts.CreatedInScopeCount;
        using var probe = ones(1);
        return Counts.CreatedInScopeCount == before + 1;
    }

    [Fact]
    public void A_temporary_is_referenced_during_the_work_and_nothing_is_disposed_or_held_after_it()
    {
        MadeInScope().Should().BeFalse("a test thread has no scope of its own");
        Tensor? temporary = null, disposed = null, inner = null;
        bool temporaryInScope = false;
        long detachedBefore = Counts.DetachedFromScopeCount;
        var returned = TemporaryTensors.HeldDuring(() =>
        {
            using var x = ones(4);
            long before = Counts.CreatedInScopeCount;
            temporary = x.mul(Scalars.Two);                              // left to the GC, as a chained call's receiver is
            temporaryInScope = Counts.CreatedInScopeCount == before + 1; // so the scope references it: no GC can finalize it mid-call
            disposed = x.add(x, Scalars.One);
            disposed.Dispose();                                          // leaves the scope as it goes
            using (NewDisposeScope())
                inner = x.neg().MoveToOuterDisposeScope();               // an inner scope's result moves out into the held one
            return x.sub(Scalars.One);
        });
        temporaryInScope.Should().BeTrue();
        Counts.DetachedFromScopeCount.Should().Be(detachedBefore + 3, "the temporary, the inner result and the returned tensor are let go of");
        MadeInScope().Should().BeFalse("the scope is gone");
        using (returned)
        {
            foreach (var t in new[] { temporary!, inner!, returned }) t.IsInvalid.Should().BeFalse("what the work did not dispose is not disposed");
            disposed!.IsInvalid.Should().BeTrue();
            returned.data<float>().ToArray().Should().Equal(0f, 0f, 0f, 0f);
        }
        temporary!.Dispose();
        inner!.Dispose();
    }

    [Fact]
    public void An_exception_leaves_the_work_s_tensors_as_they_were_and_no_scope_behind()
    {
        Tensor? leftBehind = null;
        FluentActions.Invoking(() => TemporaryTensors.HeldDuring<int>(() =>
        {
            leftBehind = ones(3);
            throw new InvalidDataException("tensor 'x': expected f32");
        })).Should().Throw<InvalidDataException>().WithMessage("tensor 'x': expected f32");
        leftBehind!.IsInvalid.Should().BeFalse();
        MadeInScope().Should().BeFalse();
        leftBehind.Dispose();
    }

    [Fact]
    public async Task The_compute_thread_runs_the_work_inside_such_a_scope() =>
        (await NativeHeap.RunInMainArena(MadeInScope)).Should().BeTrue();
}
