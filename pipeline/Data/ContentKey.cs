using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Forgetless.Data.Sources;

namespace Forgetless.Data;

/// <summary>
/// SHA-256 of a row's normalised content (lower case, whitespace runs collapsed, trimmed; prompt and
/// response kept apart). Its parts decide the train/validation split, identify duplicates and seed sampling,
/// so none of them depends on where the row sits in its file.
/// </summary>
internal readonly record struct ContentKey(ulong Split, ulong Dedup, ulong Sample)
{
    public static ContentKey Of(in SourceRecord record)
    {
        var builder = new StringBuilder();
        if (record.IsInstruction)
        {
            builder.Append("i\u0001");
            Normalise(record.Prompt!, builder);
            builder.Append('\u0001');
            Normalise(record.Response!, builder);
        }
        else
        {
            builder.Append("t\u0001");
            Normalise(record.Text!, builder);
        }
        var bytes = Encoding.UTF8.GetBytes(builder.ToString());
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(bytes, hash);
        return new ContentKey(
            BinaryPrimitives.ReadUInt64BigEndian(hash),
            BinaryPrimitives.ReadUInt64BigEndian(hash[8..]),
            BinaryPrimitives.ReadUInt64BigEndian(hash[16..]));
    }

    /// <summary>Whether the row belongs to validation: the first 64 bits of its hash as a fraction of 2^64.</summary>
    public bool IsValidation(double validationFraction) => Split < validationFraction * 18446744073709551616.0;

    /// <summary>Which of <see cref="ReplayMixPlan.Buckets"/> sampling buckets the row falls in for this seed.</summary>
    public int Bucket(int seed) => (int)(SplitMix(Sample ^ SplitMix((ulong)(uint)seed)) >> (64 - ReplayMixPlan.BucketBits));

    internal static void Normalise(string text, StringBuilder into)
    {
        var pendingSpace = false;
        var start = into.Length;
        foreach (var c in text)
        {
            if (char.IsWhiteSpace(c))
            {
                pendingSpace = into.Length > start;
                continue;
            }
            if (pendingSpace) into.Append(' ');
            pendingSpace = false;
            into.Append(char.ToLowerInvariant(c));
        }
    }

    internal static ulong SplitMix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }
}
