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
        // Test classes share the cores with each other: the forgetless processes tests start wait passively (they
        // inherit this; the executable would otherwise spin briefly whenever it found the cores idle at its start).
        if (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is null) Environment.SetEnvironmentVariable("OMP_WAIT_POLICY", "PASSIVE");
        // As the executable does first thing: libtorch's OpenMP runtime reads its environment once, when it loads.
        Forgetless.Configuration.TorchThreads.PrepareEnvironment();
        TorchSharp.torch.set_num_threads(1);
    }
}
