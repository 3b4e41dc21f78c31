using Forgetless.Model.Devices;
using Forgetless.Runs;

namespace Forgetless.Stages.Verbs.Doctor;

/// <summary>
/// `forgetless doctor`: what this machine offers a run — libtorch backend, devices, CUDA/cuDNN, threads, memory, the
/// native library patch — for a user to check a GPU setup (docs/gpu.md) before a long run. Reads no config; exit 0.
/// </summary>
public static class DoctorVerb
{
    public static Verb Definition { get; } = new(
        "doctor",
        "forgetless doctor",
        "print the libtorch backend, devices (CUDA, cuDNN), threads, memory and whether the native library patch was applied",
        Register);

    private static void Register(VerbContext context)
    {
        context.AddCommand((_, _) =>
        {
            foreach (var (name, value) in SystemReport.Lines()) Console.Out.WriteLine($"{name,-16} {value}");
            return Task.FromResult(ExitCodes.Ok);
        });
    }
}
