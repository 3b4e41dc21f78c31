using System.Text.Json;
using Forgetless.Data.Sources;

namespace Forgetless.Data;

/// <summary>
/// Finds training rows that share an n-gram of words with an evaluation item (GPT-3 style, 13 words by
/// default). Words are runs of letters and digits, lower-cased, so the check does not depend on the
/// tokenizer. Memory: one 64-bit hash per distinct n-gram of the suites. Strings shorter than n words
/// cannot match and are not checked.
/// </summary>
internal sealed class Decontaminator
{
    private const ulong Multiplier = 0x9E3779B97F4A7C15UL; // odd, so the rolling hash stays invertible
    private readonly HashSet<ulong> ngrams = [];
    private readonly int n;
    private readonly ulong dropFactor;

    public Decontaminator(int n)
    {
        this.n = n;
        dropFactor = 1;
        for (var i = 0; i < n - 1; i++) dropFactor *= Multiplier;
    }

    public int NgramCount => ngrams.Count;

    public bool IsEmpty => ngrams.Count == 0;

    /// <summary>Adds every string (at any depth) of every item of a JSON-lines suite.</summary>
    public void AddSuite(string path, CancellationToken cancellationToken)
    {
        using var reader = new Utf8LineReader(path);
        while (reader.TryReadLine(out var bytes))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (JsonLinesSource.IsBlank(bytes.Span)) continue;
            if (!Utf8LineReader.TryDecode(bytes.Span, out _, out var utf8Error))
                throw new DataFormatException(path, reader.LineNumber, "evaluation suite: " + utf8Error);
            try
            {
                using var document = JsonDocument.Parse(bytes);
                if (document.RootElement.ValueKind != JsonValueKind.Object)
                    throw new DataFormatException(path, reader.LineNumber, $"evaluation suite item is a JSON {JsonLinesSource.Describe(document.RootElement.ValueKind)}; expected a JSON object.");
                AddStrings(document.RootElement);
            }
            catch (JsonException ex)
            {
                throw new DataFormatException(path, reader.LineNumber, "evaluation suite: bad JSON; expected one JSON object per line.", ex);
            }
        }
    }

    public void AddText(string text) => ForEachNgram(text, h => { ngrams.Add(h); return false; });

    /// <summary>True when the record shares an n-gram with a suite item.</summary>
    public bool IsContaminated(in SourceRecord record)
    {
        if (ngrams.Count == 0) return false;
        if (record.IsInstruction)
            return ForEachNgram(record.Prompt! + "\n" + record.Response!, ngrams.Contains);
        return ForEachNgram(record.Text!, ngrams.Contains);
    }

    private void AddStrings(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String: AddText(element.GetString()!); break;
            case JsonValueKind.Array: foreach (var e in element.EnumerateArray()) AddStrings(e); break;
            case JsonValueKind.Object: foreach (var p in element.EnumerateObject()) AddStrings(p.Value); break;
        }
    }

    /// <summary>Rolling hash over the word hashes of each window of n words; stops when <paramref name="visit"/> returns true.</summary>
    private bool ForEachNgram(string text, Func<ulong, bool> visit)
    {
        Span<ulong> window = n <= 64 ? stackalloc ulong[n] : new ulong[n];
        var words = 0;
        ulong rolling = 0;
        var i = 0;
        while (i < text.Length)
        {
            if (!char.IsLetterOrDigit(text[i])) { i++; continue; }
            var word = 0xCBF29CE484222325UL;
            while (i < text.Length && char.IsLetterOrDigit(text[i]))
            {
                word = (word ^ char.ToLowerInvariant(text[i])) * 0x100000001B3UL;
                i++;
            }
            word = ContentKey.SplitMix(word);
            var slot = words % n;
            if (words >= n) rolling -= window[slot] * dropFactor;
            rolling = rolling * Multiplier + word;
            window[slot] = word;
            words++;
            if (words >= n && visit(rolling)) return true;
        }
        return false;
    }
}
