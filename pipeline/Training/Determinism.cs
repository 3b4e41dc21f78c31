using System.Text.Json;
using static TorchSharp.torch;

namespace Forgetless.Training;

/// <summary>Captures and restores torch's default CPU generator (dropout and any unseeded sampling draw from it).</summary>
public static class TorchRng
{
    public static void Seed(long seed) => random.manual_seed(seed);

    /// <summary>The generator state as bytes (torch.get_rng_state()).</summary>
    public static byte[] Capture()
    {
        using var state = random.get_rng_state();
        return state.data<byte>().ToArray();
    }

    public static void Restore(byte[] state)
    {
        using var t = tensor(state, ScalarType.Byte);
        random.set_rng_state(t);
    }

    /// <summary>The state of a given generator as bytes.</summary>
    public static byte[] Capture(Generator generator)
    {
        using var state = generator.get_state();
        return state.data<byte>().ToArray();
    }

    public static void Restore(Generator generator, byte[] state)
    {
        using var t = tensor(state, ScalarType.Byte);
        generator.set_state(t);
    }
}

/// <summary>Where a <see cref="SeededSampler"/> stands: enough to continue the same order.</summary>
public sealed record SamplerState(int Count, long Seed, int Epoch, int Position)
{
    public string ToJson() => JsonSerializer.Serialize(this);
    public static SamplerState FromJson(string json) => JsonSerializer.Deserialize<SamplerState>(json)
        ?? throw new FormatException("Empty sampler state.");
}

/// <summary>
/// A seeded shuffle of 0..Count−1, reshuffled each epoch. The order depends only on (seed, epoch): a Fisher–Yates
/// shuffle driven by SplitMix64, independent of torch and of System.Random's implementation. Save
/// <see cref="State"/> and continue with <see cref="Restore"/>.
/// </summary>
public sealed class SeededSampler
{
    private int[] order;

    public int Count { get; }
    public long Seed { get; }
    public int Epoch { get; private set; }
    public int Position { get; private set; }

    public SeededSampler(int count, long seed) : this(new SamplerState(count, seed, 0, 0)) { }

    private SeededSampler(SamplerState s)
    {
        if (s.Count <= 0) throw new ArgumentException("The sampler needs at least one item.");
        if (s.Position < 0 || s.Position > s.Count || s.Epoch < 0) throw new ArgumentException($"Bad sampler state {s}.");
        Count = s.Count;
        Seed = s.Seed;
        Epoch = s.Epoch;
        Position = s.Position;
        order = Permutation(Count, Seed, Epoch);
    }

    public static SeededSampler Restore(SamplerState state) => new(state);

    public SamplerState State => new(Count, Seed, Epoch, Position);

    public int Next()
    {
        if (Position == Count)
        {
            Epoch++;
            Position = 0;
            order = Permutation(Count, Seed, Epoch);
        }
        return order[Position++];
    }

    public int[] NextBatch(int size)
    {
        var batch = new int[size];
        for (var i = 0; i < size; i++) batch[i] = Next();
        return batch;
    }

    public static int[] Permutation(int count, long seed, int epoch)
    {
        var state = (ulong)seed * 0x9E3779B97F4A7C15UL ^ ((ulong)epoch + 1) * 0xD1B54A32D192ED03UL;
        ulong NextU64()
        {
            state += 0x9E3779B97F4A7C15UL;
            var z = state;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
        var a = Enumerable.Range(0, count).ToArray();
        for (var i = count - 1; i > 0; i--)
        {
            var j = (int)(NextU64() % (ulong)(i + 1));
            (a[i], a[j]) = (a[j], a[i]);
        }
        return a;
    }
}
