using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Configuration;

/// <summary>Maps the configured device to a torch device, falling back to CPU when CUDA is absent.</summary>
public static class DeviceSelector
{
    /// <summary>
    /// The run's device and compute type. Half precision on the CPU falls back to f32 with a warning unless
    /// <c>run.forcePrecision</c> is set: libtorch's CPU kernels for bf16/f16 matmuls are a slow fallback.
    /// </summary>
    public static Model.Devices.Placement Place(RunOptions run, ILogger logger)
    {
        var device = Select(run.Device, logger);
        var type = Model.Devices.Placement.TypeOf(run.Precision);
        if (device.type == DeviceType.CPU && type != torch.ScalarType.Float32 && !run.ForcePrecision)
        {
            logger.LogWarning("run.precision = {Precision} on the CPU: libtorch's half-precision CPU kernels are 50–300× slower than f32; " +
                              "computing in fp32 (run.forcePrecision = true insists)", run.Precision.ToString().ToLowerInvariant());
            type = torch.ScalarType.Float32;
        }
        return new Model.Devices.Placement(device, type);
    }

    public static torch.Device Select(DeviceChoice choice, ILogger logger)
    {
        switch (choice)
        {
            case DeviceChoice.Cpu:
                return torch.CPU;
            case DeviceChoice.Cuda:
                if (!torch.cuda.is_available())
                    throw new ConfigException("run.device = cuda, but CUDA is not available: build with -p:TorchBackend=cuda on a machine with an NVIDIA driver, or use device auto|cpu");
                return torch.CUDA;
            default:
                if (torch.cuda.is_available()) return torch.CUDA;
                logger.LogInformation("device auto: CUDA is not available (libtorch CPU backend or no GPU); using CPU");
                return torch.CPU;
        }
    }
}
