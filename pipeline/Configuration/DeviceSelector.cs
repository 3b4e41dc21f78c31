using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Forgetless.Configuration;

/// <summary>Maps the configured device to a torch device, falling back to CPU when CUDA is absent.</summary>
public static class DeviceSelector
{
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
