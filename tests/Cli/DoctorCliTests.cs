namespace Forgetless.Tests.Cli;

public sealed class DoctorCliTests
{
    [Fact]
    public async Task Doctor_prints_the_backend_devices_threads_memory_and_the_native_patch()
    {
        var result = await ForgetlessProcess.RunAsync(Path.GetTempPath(), "doctor");

        result.ExitCode.Should().Be(0, result.ToString());
        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .ToDictionary(l => l.Split(' ', 2)[0] + (l.StartsWith("native patch", StringComparison.Ordinal) ? " patch" : ""), l => l);
        lines["torchsharp"].Should().Contain("0.107.0");
        lines["libtorch"].Should().Contain("2.10.0").And.Contain("CPU-only build"); // the package this repository references
        lines["cuda"].Should().Contain("not in this build");
        lines["threads"].Should().MatchRegex($@"\d+ torch threads, {Environment.ProcessorCount} processors");
        lines["memory"].Should().MatchRegex(@"\d+\.\d\d GB total, \d+\.\d\d GB available");
        // Debian 12's libstdc++ lacks GLIBCXX_3.4.32, so the build must have marked it weak; a newer system may not need it.
        bool systemHasIt = File.Exists("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")
            && File.ReadAllText("/usr/lib/x86_64-linux-gnu/libstdc++.so.6").Contains("GLIBCXX_3.4.32", StringComparison.Ordinal);
        if (!systemHasIt) lines["native patch"].Should().Contain("applied (GLIBCXX_3.4.32 marked weak");
        lines["native patch"].Should().NotContain("not applied");
    }
}
