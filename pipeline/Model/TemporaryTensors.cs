using TorchSharp;

namespace Forgetless.Model;

/// <summary>
/// Keeps the tensors a piece of work makes outside a DisposeScope of its own from being finalized while it runs.
/// </summary>
/// <remarks>
/// Why: TorchSharp's Tensor finalizer frees the native tensor, and a temporary nothing references — the receiver of a
/// chained call, <c>x.mul(y).neg()</c> — can be finalized by a garbage collection another thread starts while
/// libtorch still reads it: the process dies with SIGSEGV (<c>build/scalar-race --tensor</c>; the Scalar side of the
/// same race is analyzer FL0001's). A DisposeScope on the thread references every tensor made there, so none of them
/// is finalized mid-call. Measured on the default pipeline's compute thread, every tensor a step makes is already made
/// inside a scope; the 300–1,000 made outside one are the setup's, which this covers.
/// </remarks>
public static class TemporaryTensors
{
    /// <summary>
    /// Runs <paramref name="work"/> inside a DisposeScope and, when it returns or throws, lets go of what the scope
    /// still holds without disposing it: a tensor the work disposed has left the scope already, and one it left to the
    /// garbage collector (or returned, or keeps in a model) is detached, as if no scope had been there.
    /// </summary>
    public static T HeldDuring<T>(Func<T> work)
    {
        var scope = torch.NewDisposeScope();
        try
        {
            return work();
        }
        finally
        {
            scope.Detach(scope.DisposablesView);
            scope.Dispose();
        }
    }
}
