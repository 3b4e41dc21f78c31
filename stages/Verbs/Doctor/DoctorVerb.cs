using System.Globalization;
using Forgetless.Configuration;
using Forgetless.Data;
using Forgetless.FineTuning;
using Forgetless.Model.Devices;
using Forgetless.Runs;
using Microsoft.Extensions.Logging.Abstractions;

namespace Forgetless.Stages.Verbs.Doctor;

/// <summary>
/// `forgetless doctor [--config FILE] [--set …]`: what this machine offers a run — libtorch backend, devices, CUDA/cuDNN,
/// threads, memory, the native library patch — and, when there is a pipeline file, the peak memory its finetune
/// would need, so that a user can check a GPU setup (docs/gpu.md) before a long run. Loads no model; exit 0.
/// </summary>
public static class DoctorVerb
{
    public static Verb Definition { get; } = new(
        "doctor",
        "forgetless doctor [--config FILE] [--set section.key=value]",
        "print the libtorch backend, devices (CUDA, cuDNN), threads, memory, whether the native library patch was applied, and the configured finetune's memory estimate",
        Register);

    private static void Register(VerbContext context)
    {
        string configFile = context.Cli.Option("config") ?? PipelineConfig.DefaultFileName;
        _ = context.Cli.Options("set"); // read when the pipeline file is
        context.AddCommand(async (_, _) =>
        {
            foreach (var (name, value) in SystemReport.Lines()) Console.Out.WriteLine($"{name,-16} {value}");
            Console.Out.WriteLine($"{"allocator",-16} {await ComputeThreadHeap()}");
            if (File.Exists(configFile)) Console.Out.WriteLine($"{"estimate",-16} {Estimate(context)}");
            return ExitCodes.Ok;
        });
    }

    /// <summary>Where the stages' tensor work allocates (<see cref="NativeHeap.RunInMainArena{T}"/>), asked on that very thread.</summary>
    private static async Task<string> ComputeThreadHeap() => await NativeHeap.RunInMainArena(NativeHeap.AllocatesFromMainArena) switch
    {
        true => "tensor work on a thread in glibc's main arena (freed blocks kept for the next step)",
        false => "tensor work outside glibc's main arena: its freed heaps go back to the OS at once, so steps fault their tensors in again (set MALLOC_ARENA_MAX=1)",
        null => "not glibc: the C library's own allocator",
    };

    /// <summary>The finetune stage's estimate for the pipeline file; on a machine without the configured GPU, as it would be there.</summary>
    private static string Estimate(VerbContext context)
    {
        var run = context.Run;
        var options = context.Config.Section<FineTuneOptions>("finetune");
        int seqLen = context.Config.Section<PrepareOptions>("prepare").SeqLen;
        string note = "";
        Placement placement;
        try
        {
            placement = DeviceSelector.Place(run, NullLogger.Instance);
        }
        catch (ConfigException)
        {
            // libtorch cannot name a CUDA device without CUDA; the estimate needs only the compute type.
            placement = new Placement(TorchSharp.torch.META, Placement.TypeOf(run.Precision));
            note = " (as on a GPU: CUDA is not available here)";
        }
        var estimate = MemoryCheck.Estimate(options, context.Config.ResolvePath(run.BaseModel), placement, seqLen);
        return string.Create(CultureInfo.InvariantCulture,
            $"finetune {options.Method}, {options.TokensPerBatch} tokens per micro-batch, seqLen {seqLen}, {placement.ComputeType}, gradient checkpointing {(options.GradientCheckpointing ? "on" : "off")}: {estimate}{note}");
    }
}
