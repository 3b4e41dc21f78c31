using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Model.Devices;

/// <summary>
/// The one way values leave the device for .NET code. Each read is a device-to-host copy (a synchronisation on a GPU),
/// so callers gather what they need into one tensor and read it once per step or batch, never per token.
/// </summary>
/// <remarks>
/// TorchSharp's <c>meta</c> device holds shapes without values: it is how tests prove that every tensor of a run lives
/// on the run's device (an operation that mixes devices throws there as it would on CUDA). A read from it returns zeros
/// of the right length, so the control flow around a read runs on; nothing computed on the meta device is a result.
/// </remarks>
public static class HostValues
{
    public static bool IsMeta(Tensor t) => t.device_type == DeviceType.META;

    public static float[] Floats(Tensor t) => Read<float>(t, ScalarType.Float32);

    public static double[] Doubles(Tensor t) => Read<double>(t, ScalarType.Float64);

    public static long[] Longs(Tensor t) => Read<long>(t, ScalarType.Int64);

    public static int[] Ints(Tensor t) => Read<int>(t, ScalarType.Int32);

    /// <summary>The raw bytes of a tensor in its own type (row-major), copied to the host.</summary>
    public static byte[] Bytes(Tensor t)
    {
        if (IsMeta(t)) return new byte[t.numel() * t.ElementSize];
        using var host = t.detach().cpu().contiguous();
        return host.bytes.ToArray();
    }

    /// <summary>A one-element tensor's value as a double (f32 tensors are widened exactly).</summary>
    public static double Scalar(Tensor t)
    {
        if (t.numel() != 1) throw new ArgumentException($"expected one value, got a tensor of shape [{string.Join(", ", t.shape)}]");
        return t.dtype == ScalarType.Float64 ? Doubles(t)[0] : Floats(t)[0];
    }

    /// <summary>Several one-element tensors read with one copy (stacked as f64 on the device first).</summary>
    public static double[] Scalars(IReadOnlyList<Tensor> values)
    {
        if (values.Count == 0) return [];
        using var scope = NewDisposeScope();
        return Doubles(stack(values.Select(v => v.detach().reshape(1).to(ScalarType.Float64)).ToArray()));
    }

    private static T[] Read<T>(Tensor t, ScalarType type) where T : unmanaged
    {
        if (IsMeta(t)) return new T[t.numel()];
        using var scope = NewDisposeScope();
        var host = t.detach().to(type).cpu().contiguous();
        return host.data<T>().ToArray();
    }
}
