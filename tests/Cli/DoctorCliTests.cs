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
        // A forgetless process asks glibc for one arena first thing, so its compute thread finds the main one whatever
        // the core count (a test host, with up to eight arenas per core, may not: tests/FineTuning/NativeHeapTests.cs).
        if (Forgetless.FineTuning.NativeHeap.AllocatesFromMainArena() is not null)
            lines["allocator"].Should().Contain("tensor work on a thread in glibc's main arena");
        // Debian 12's libstdc++ lacks GLIBCXX_3.4.32, so the build must have marked it weak; a newer system may not need it.
        bool systemHasIt = File.Exists("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")
            && File.ReadAllText("/usr/lib/x86_64-linux-gnu/libstdc++.so.6").Contains("GLIBCXX_3.4.32", StringComparison.Ordinal);
        if (!systemHasIt) lines["native patch"].Should().Contain("applied (GLIBCXX_3.4.32 marked weak");
        lines["native patch"].Should().NotContain("not applied");
    }

    [Fact]
    public async Task With_a_pipeline_file_doctor_prints_the_finetune_estimate_as_on_the_configured_gpu()
    {
        using var dir = new TempDirectory();
        Directory.CreateDirectory(Path.Combine(dir.Path, "m"));
        File.WriteAllText(Path.Combine(dir.Path, "m", "config.json"),
            Forgetless.Model.ModelConfig.Llama(1000, 64, 2, 4, 2, intermediateSize: 128).ToJson().ToJsonString());
        File.WriteAllText(Path.Combine(dir.Path, "forgetless.json"), """
            {"run": {"baseModel": "m", "device": "cuda", "precision": "bf16"}, "prepare": {"seqLen": 32, "replayShare": 0, "taskSources": [{"path": "t.jsonl"}]}, "finetune": {"method": "lora", "tokensPerBatch": 64}}
            """);

        var result = await ForgetlessProcess.RunAsync(dir.Path, "doctor", "--set", "finetune.gradientCheckpointing=true");

        result.ExitCode.Should().Be(0, result.ToString());
        result.Stdout.Should().MatchRegex(@"estimate +finetune lora, 64 tokens per micro-batch, seqLen 32, BFloat16, gradient checkpointing on: \d+\.\d\d GB \(weights .*activations \(checkpointed\) .*\) \(as on a GPU: CUDA is not available here\)");
    }
}
