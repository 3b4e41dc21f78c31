using Forgetless.Model;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// bitsandbytes' signed 8-bit dynamic quantization map (<c>create_dynamic_map(signed=True)</c>, Dettmers 2015) and its
/// block-wise quantizer (<c>quantize_blockwise</c>), which QLoRA's double quantization applies to the NF4 block
/// constants. The map: for exponent i = 0..6, the midpoints of <c>torch.linspace(0.1, 1, 2^i + 1)</c> (float32) scaled by
/// ±10^(i−6) — 127 positive and 127 negative values — plus 0 and 1, sorted (index 127 is 0, index 255 is 1).
/// </summary>
/// <remarks>
/// The map is built with torch's own f32 <c>linspace</c> and arithmetic, as bitsandbytes builds it, so its last bits
/// are those of the libtorch in use (2.10 here): torch versions differ there (PyTorch 1.13 gives 42 of the 256
/// entries one unit in the last place apart).
/// </remarks>
public static class DynamicMap
{
    private static readonly Lazy<float[]> Table = new(Build);

    /// <summary>The 256 sorted values, index = the stored byte.</summary>
    public static float[] Codes => Table.Value;

    private static float[] Build()
    {
        var data = new List<float>(256);
        double[] scales = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1];
        using var scope = NewDisposeScope();
        for (int i = 0; i < scales.Length; i++)
        {
            var boundaries = linspace(0.1, 1, (1 << i) + 1, ScalarType.Float32);
            long k = boundaries.shape[0] - 1;
            var means = boundaries.narrow(0, 0, k).add(boundaries.narrow(0, 1, k), Scalars.One).div(Scalars.Of(2.0));
            data.AddRange(means.mul(Scalars.Of(scales[i])).data<float>().ToArray());
            data.AddRange(means.mul(Scalars.Of(-scales[i])).data<float>().ToArray());
        }
        data.Add(0f);
        data.Add(1f);
        data.Sort();
        return data.ToArray();
    }

    /// <summary>
    /// bitsandbytes' <c>quantize_blockwise</c>: per block of <paramref name="blockSize"/> values, the f32 absmax s, and per
    /// value the index of the map entry nearest to value × (1/s) — found as bitsandbytes' CUDA kernel finds it
    /// (<see cref="Nearest"/>). A block of zeros stores s = 0 and index 127 (zero).
    /// </summary>
    public static (byte[] Codes, float[] Absmax) QuantizeBlockwise(float[] values, int blockSize)
    {
        var codes = new byte[values.Length];
        var absmax = new float[(values.Length + blockSize - 1) / blockSize];
        for (int b = 0; b < absmax.Length; b++)
        {
            int start = b * blockSize, end = Math.Min(values.Length, start + blockSize);
            float s = 0f;
            for (int i = start; i < end; i++) s = Math.Max(s, Math.Abs(values[i]));
            absmax[b] = s;
            float inverse = 1f / s;
            for (int i = start; i < end; i++) codes[i] = s == 0 ? (byte)127 : Nearest(values[i] * inverse);
        }
        return (codes, absmax);
    }

    /// <summary>
    /// The map entry nearest to <paramref name="x"/>, as bitsandbytes' <c>dQuantize</c> picks it: a binary search from the
    /// middle (steps 64, 32, …, 1) ends on a probe; the probe's neighbour on x's side wins when x is past their f32
    /// midpoint, so an exact tie goes to the probe.
    /// </summary>
    public static byte Nearest(float x)
    {
        var map = Codes;
        int pivot = 127, lowerPivot = 0, upperPivot = 255;
        float lower = -1f, upper = 1f, probe = map[pivot];
        for (int step = 64; step > 0; step >>= 1)
        {
            if (x > probe) { lowerPivot = pivot; lower = probe; pivot += step; }
            else { upperPivot = pivot; upper = probe; pivot -= step; }
            probe = map[pivot];
        }
        if (upperPivot == 255) upper = map[255];
        if (lowerPivot == 0) lower = map[0];
        if (x > probe) return (byte)(x > (upper + probe) * 0.5f ? upperPivot : pivot);
        return (byte)(x < (lower + probe) * 0.5f ? lowerPivot : pivot);
    }
}
