using System.Runtime.CompilerServices;
using TorchSharp;

namespace Forgetless.Tests.Model;

/// <summary>
/// One torch thread per test process: xunit runs test classes in parallel on a 2-core machine, and
/// libtorch's own thread pool on top of that only oversubscribes the cores.
/// </summary>
internal static class TorchTestThreads
{
#pragma warning disable CA2255 // a module initializer is the one hook that runs before any test touches torch
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void UseOneTorchThread() => torch.set_num_threads(1);
}
