using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// A tensor stored as 4-bit NormalFloat (QLoRA, Dettmers et al. 2023) exactly as bitsandbytes' <c>quantize_4bit</c>
/// (quant_type nf4, blocksize 64) stores it.
/// Layout: the row-major values are cut into blocks of <see cref="Nf4.BlockSize"/>; each value is multiplied by the
/// f32 reciprocal of its block's absmax and replaced by the index of the nearest code (<see cref="Nf4.Thresholds"/>;
/// a value on a threshold goes to the lower code), two indices per byte, first value in the high nibble.
/// Double quantization (bitsandbytes' <c>compress_statistics</c>): the offset μ = mean of the per-block absmax values
/// is subtracted, and the differences are quantized by bitsandbytes' <c>quantize_blockwise</c> in groups of
/// <see cref="Nf4.ConstantBlockSize"/>: each group keeps its own f32 absmax s, each block one byte indexing the signed
/// 8-bit dynamic map (<see cref="DynamicMap"/>); a block's absmax is then code[q]·s + μ.
/// Without double quantization the absmax values are kept as f32 and dequantized values equal code × absmax exactly.
/// </summary>
public sealed class Nf4Tensor
{
    public required long[] Shape { get; init; }
    /// <summary>Two 4-bit code indices per byte; length ceil(n/2).</summary>
    public required byte[] Packed { get; init; }
    /// <summary>Per-block absmax in f32 (null when double-quantized).</summary>
    public float[]? Absmax { get; init; }
    /// <summary>Double quantization: per block, the index into <see cref="DynamicMap"/> of its (absmax − offset) / group scale.</summary>
    public byte[]? AbsmaxCodes { get; init; }
    /// <summary>Double quantization: per group of 256 blocks, the absmax of their (absmax − offset) (bitsandbytes' state2.absmax).</summary>
    public float[]? AbsmaxScales { get; init; }
    /// <summary>Double quantization: the mean of the block absmax values (bitsandbytes' offset).</summary>
    public float AbsmaxOffset { get; init; }

    public long Count => Shape.Aggregate(1L, (a, b) => a * b);
    public int Blocks => (int)((Count + Nf4.BlockSize - 1) / Nf4.BlockSize);
    public bool DoubleQuantized => AbsmaxCodes is not null;

    /// <summary>Bytes held: packed codes plus the quantization constants (the shared 256-entry map not counted).</summary>
    public long StorageBytes => Packed.LongLength
        + (DoubleQuantized ? AbsmaxCodes!.LongLength + 4L * AbsmaxScales!.LongLength + 4 : 4L * Absmax!.LongLength);

    /// <summary>The absmax of block <paramref name="block"/> as dequantization uses it (f32 arithmetic, as bitsandbytes).</summary>
    public float BlockAbsmax(int block) => DoubleQuantized
        ? DynamicMap.Codes[AbsmaxCodes![block]] * AbsmaxScales![block / Nf4.ConstantBlockSize] + AbsmaxOffset
        : Absmax![block];
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

    /// <summary>
    /// The boundaries between neighbouring codes as bitsandbytes' CUDA kernel (<c>dQuantizeNF4</c>) compares them: the
    /// midpoints, written as f32 literals. Four of them (after codes 0, 8, 12 and 14) are one unit in the last place
    /// away from the f32 midpoint (c_i + c_{i+1})/2 that bitsandbytes' CPU fallback (<c>torch.bucketize</c>) uses, so
    /// the two backends disagree for a value exactly there; these are the CUDA ones, QLoRA's reference.
    /// </summary>
    public static readonly float[] Thresholds =
    [
        -0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f, -0.23460740596055984f,
        -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f, 0.1202552504837513f, 0.2035212516784668f,
        0.2920137718319893f, 0.3893125355243683f, 0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f,
    ];

    /// <summary>Index of the code for <paramref name="v"/> in [-1, 1]: the number of thresholds strictly below it (v above a threshold goes up).</summary>
    public static int NearestCode(float v)
    {
        int lo = 0, hi = 15; // number of thresholds strictly below v
        while (lo < hi)
        {
            var mid = (lo + hi) / 2;
            if (Thresholds[mid] < v) lo = mid + 1; else hi = mid;
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
            // bitsandbytes multiplies by the f32 reciprocal (not a division: the last bit can differ).
            var inverse = 1f / m;
            for (var i = start; i < end; i++)
            {
                var code = m == 0 ? 7 : NearestCode(values[i] * inverse);
                if ((i & 1) == 0) packed[i >> 1] |= (byte)(code << 4);
                else packed[i >> 1] |= (byte)code;
            }
        }
        if (!doubleQuant)
            return new Nf4Tensor { Shape = weight.shape, Packed = packed, Absmax = absmax };

        // The offset is torch's f32 mean, as bitsandbytes takes it (_absmax.mean()).
        float offset;
        using (var a = tensor(absmax)) using (var mean = a.mean()) offset = mean.item<float>();
        var centred = absmax.Select(a => a - offset).ToArray();
        var (codes, scales) = DynamicMap.QuantizeBlockwise(centred, ConstantBlockSize);
        return new Nf4Tensor { Shape = weight.shape, Packed = packed, AbsmaxCodes = codes, AbsmaxScales = scales, AbsmaxOffset = offset };
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
