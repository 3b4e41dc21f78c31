using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// A tensor stored as 4-bit NormalFloat (QLoRA, Dettmers et al. 2023).
/// Layout: the row-major values are cut into blocks of <see cref="Nf4.BlockSize"/>; each value is divided by its
/// block's absmax and replaced by the index of the nearest code (ties go to the lower code), two indices per
/// byte, first value in the high nibble.
/// Double quantization of the per-block absmax values a_j: subtract their mean μ, cut into groups of
/// <see cref="Nf4.ConstantBlockSize"/>; each group stores one f32 scale c = max|a_j − μ| and one int8
/// q_j = round(127·(a_j − μ)/c) per block; a_j ≈ μ + q_j·c/127, so |error| ≤ c/254 (half a step) plus f32 rounding.
/// Without double quantization the absmax values are kept as f32 and dequantized values equal code × absmax exactly.
/// </summary>
public sealed class Nf4Tensor
{
    public required long[] Shape { get; init; }
    /// <summary>Two 4-bit code indices per byte; length ceil(n/2).</summary>
    public required byte[] Packed { get; init; }
    /// <summary>Per-block absmax in f32 (null when double-quantized).</summary>
    public float[]? Absmax { get; init; }
    /// <summary>Double quantization: int8 per block, a scale per group of 256 blocks, and the mean.</summary>
    public sbyte[]? AbsmaxQuantized { get; init; }
    public float[]? AbsmaxScales { get; init; }
    public float AbsmaxMean { get; init; }

    public long Count => Shape.Aggregate(1L, (a, b) => a * b);
    public int Blocks => (int)((Count + Nf4.BlockSize - 1) / Nf4.BlockSize);
    public bool DoubleQuantized => AbsmaxQuantized is not null;

    /// <summary>Bytes held: packed codes plus the quantization constants.</summary>
    public long StorageBytes => Packed.LongLength
        + (DoubleQuantized ? AbsmaxQuantized!.LongLength + 4L * AbsmaxScales!.LongLength + 4 : 4L * Absmax!.LongLength);

    /// <summary>The absmax of block <paramref name="block"/> as used by dequantization.</summary>
    public float BlockAbsmax(int block)
    {
        if (!DoubleQuantized) return Absmax![block];
        var scale = AbsmaxScales![block / Nf4.ConstantBlockSize];
        return AbsmaxMean + AbsmaxQuantized![block] * (scale / 127f);
    }
}

public static class Nf4
{
    public const int BlockSize = 64;
    public const int ConstantBlockSize = 256;

    /// <summary>The NF4 code book (bitsandbytes), index 0..15.</summary>
    public static readonly float[] Codes =
    [
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    ];

    private static readonly float[] Midpoints = Enumerable.Range(0, 15).Select(i => (Codes[i] + Codes[i + 1]) / 2f).ToArray();

    /// <summary>Index of the nearest code to <paramref name="v"/> in [-1, 1]; ties go to the lower code.</summary>
    public static int NearestCode(float v)
    {
        int lo = 0, hi = 15; // number of midpoints strictly below v
        while (lo < hi)
        {
            var mid = (lo + hi) / 2;
            if (Midpoints[mid] < v) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    public static Nf4Tensor Quantize(Tensor weight, bool doubleQuant = true)
    {
        if (weight.dtype != ScalarType.Float32) throw new ArgumentException($"NF4 quantizes f32 tensors, got {weight.dtype}.");
        using var flat = weight.detach().contiguous().reshape(-1);
        var values = flat.data<float>().ToArray();
        var n = values.Length;
        var blocks = (n + BlockSize - 1) / BlockSize;
        var absmax = new float[blocks];
        var packed = new byte[(n + 1) / 2];
        for (var b = 0; b < blocks; b++)
        {
            int start = b * BlockSize, end = Math.Min(n, start + BlockSize);
            var m = 0f;
            for (var i = start; i < end; i++) m = Math.Max(m, Math.Abs(values[i]));
            absmax[b] = m;
            for (var i = start; i < end; i++)
            {
                var code = m == 0 ? 7 : NearestCode(values[i] / m);
                if ((i & 1) == 0) packed[i >> 1] |= (byte)(code << 4);
                else packed[i >> 1] |= (byte)code;
            }
        }
        if (!doubleQuant)
            return new Nf4Tensor { Shape = weight.shape, Packed = packed, Absmax = absmax };

        var mean = (float)absmax.Select(a => (double)a).Average();
        var groups = (blocks + ConstantBlockSize - 1) / ConstantBlockSize;
        var scales = new float[groups];
        var q = new sbyte[blocks];
        for (var g = 0; g < groups; g++)
        {
            int start = g * ConstantBlockSize, end = Math.Min(blocks, start + ConstantBlockSize);
            var c = 0f;
            for (var j = start; j < end; j++) c = Math.Max(c, Math.Abs(absmax[j] - mean));
            scales[g] = c;
            for (var j = start; j < end; j++)
                q[j] = c == 0 ? (sbyte)0 : (sbyte)Math.Clamp(Math.Round(127.0 * (absmax[j] - mean) / c, MidpointRounding.ToEven), -127, 127);
        }
        return new Nf4Tensor { Shape = weight.shape, Packed = packed, AbsmaxQuantized = q, AbsmaxScales = scales, AbsmaxMean = mean };
    }

    /// <summary>The f32 tensor the codes stand for: code × (dequantized) absmax.</summary>
    public static Tensor Dequantize(Nf4Tensor t)
    {
        var n = (int)t.Count;
        var values = new float[n];
        var blocks = t.Blocks;
        for (var b = 0; b < blocks; b++)
        {
            var m = t.BlockAbsmax(b);
            int start = b * BlockSize, end = Math.Min(n, start + BlockSize);
            for (var i = start; i < end; i++)
            {
                var packed = t.Packed[i >> 1];
                var code = (i & 1) == 0 ? packed >> 4 : packed & 0x0F;
                values[i] = Codes[code] * m;
            }
        }
        return tensor(values, t.Shape);
    }
}
