using System.Buffers;
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
        var capacity = 3 + (record.IsInstruction ? record.Prompt!.Length + record.Response!.Length : record.Text!.Length);
        var chars = ArrayPool<char>.Shared.Rent(capacity);
        var bytes = ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetMaxByteCount(capacity));
        try
        {
            var length = 0;
            if (record.IsInstruction)
            {
                chars[length++] = 'i';
                chars[length++] = '\u0001';
                length = Normalise(record.Prompt!, chars, length);
                chars[length++] = '\u0001';
                length = Normalise(record.Response!, chars, length);
            }
            else
            {
                chars[length++] = 't';
                chars[length++] = '\u0001';
                length = Normalise(record.Text!, chars, length);
            }
            var byteCount = Encoding.UTF8.GetBytes(chars, 0, length, bytes, 0);
            Span<byte> hash = stackalloc byte[32];
            SHA256.HashData(bytes.AsSpan(0, byteCount), hash);
            return new ContentKey(
                BinaryPrimitives.ReadUInt64BigEndian(hash),
                BinaryPrimitives.ReadUInt64BigEndian(hash[8..]),
                BinaryPrimitives.ReadUInt64BigEndian(hash[16..]));
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    /// <summary>Whether the row belongs to validation: the first 64 bits of its hash as a fraction of 2^64.</summary>
    public bool IsValidation(double validationFraction) => Split < validationFraction * 18446744073709551616.0;

    /// <summary>Which of <see cref="ReplayMixPlan.Buckets"/> sampling buckets the row falls in for this seed.</summary>
    public int Bucket(int seed) => (int)(SplitMix(Sample ^ SplitMix((ulong)(uint)seed)) >> (64 - ReplayMixPlan.BucketBits));

    /// <summary>Appends <paramref name="text"/> lower-cased, whitespace runs as one space, trimmed; returns the new length.</summary>
    internal static int Normalise(string text, char[] into, int at)
    {
        var start = at;
        var pendingSpace = false;
        foreach (var c in text)
        {
            if (char.IsWhiteSpace(c))
            {
                pendingSpace = at > start;
                continue;
            }
            if (pendingSpace) into[at++] = ' ';
            pendingSpace = false;
            into[at++] = char.ToLowerInvariant(c);
        }
        return at;
    }

    internal static ulong SplitMix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }
}
