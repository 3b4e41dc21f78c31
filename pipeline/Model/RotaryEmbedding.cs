using static TorchSharp.torch;

namespace Forgetless.Model;

/// <summary>
/// Rotary position embedding (RoPE) as in HF Llama: the head dimension is split into two halves that
/// are rotated by position * inv_freq. Frequencies are computed once in double precision, including
/// <c>linear</c> and <c>llama3</c> rope scaling.
/// </summary>
internal sealed class RotaryEmbedding
{
    private readonly float[] invFreq;

    public RotaryEmbedding(ModelConfig config)
    {
        invFreq = InverseFrequencies(config.HeadDim, config.RopeTheta, config.RopeScaling)
            .Select(f => (float)f).ToArray();
    }

    public static double[] InverseFrequencies(int headDim, double theta, RopeScaling? scaling)
    {
        var inv = Enumerable.Range(0, headDim / 2).Select(i => 1.0 / Math.Pow(theta, 2.0 * i / headDim)).ToArray();
        return scaling switch
        {
            null => inv,
            { Type: "linear" } s => inv.Select(f => f / s.Factor).ToArray(),
            { Type: "llama3" } s => inv.Select(f => Llama3(f, s)).ToArray(),
            var s => throw new NotSupportedException($"rope_scaling type '{s.Type}' is not supported"),
        };
    }

    /// <summary>Llama 3.1: long wavelengths slowed by factor, short ones kept, a smooth blend between.</summary>
    private static double Llama3(double f, RopeScaling s)
    {
        var lowFreqWavelen = s.OriginalMaxPositionEmbeddings / s.LowFreqFactor;
        var highFreqWavelen = s.OriginalMaxPositionEmbeddings / s.HighFreqFactor;
        var wavelen = 2 * Math.PI / f;
        if (wavelen < highFreqWavelen) return f;
        if (wavelen > lowFreqWavelen) return f / s.Factor;
        var smooth = (s.OriginalMaxPositionEmbeddings / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
        return (1 - smooth) * f / s.Factor + smooth * f;
    }

    /// <summary>cos and sin [B, 1, T, D] for positions [B, T], on their device, computed in f32 and returned in <paramref name="type"/>.</summary>
    public (Tensor Cos, Tensor Sin) At(Tensor positions, ScalarType type = ScalarType.Float32)
    {
        var freqs = positions.to(ScalarType.Float32).unsqueeze(-1) * tensor(invFreq, device: positions.device);
        var angles = cat([freqs, freqs], -1).unsqueeze(1);
        return type == ScalarType.Float32 ? (angles.cos(), angles.sin()) : (angles.cos().to(type), angles.sin().to(type));
    }

    /// <summary>x: [B, H, T, D].</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        var half = x.shape[3] / 2;
        var rotated = cat([-x.narrow(3, half, half), x.narrow(3, 0, half)], 3);
        return (x * cos).add(rotated * sin, Scalars.One);
    }
}
