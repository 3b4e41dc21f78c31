using System.Runtime.CompilerServices;

namespace Forgetless.Tests;

internal static class TestSetup
{
    /// <summary>
    /// xunit runs test classes in parallel on this 2-core machine; one libtorch thread per test
    /// keeps them from oversubscribing the cores (results do not depend on the thread count).
    /// </summary>
    [ModuleInitializer]
    internal static void OneTorchThread()
    {
        // As the executable does first thing: libtorch's OpenMP runtime reads its environment once, when it loads.
        Forgetless.Configuration.TorchThreads.PrepareEnvironment();
        TorchSharp.torch.set_num_threads(1);
    }
}
