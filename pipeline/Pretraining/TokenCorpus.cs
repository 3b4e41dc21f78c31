using System.IO.Compression;
using System.Runtime.InteropServices;
using Forgetless.Model.Tokenizers;
using Forgetless.Runs;

namespace Forgetless.Pretraining;

/// <summary>
/// A text file as one stream of token ids, paragraphs separated by the end-of-text token. Encoding
/// a few megabytes takes a while, so the ids are cached as a raw int32 file keyed by the hashes
/// of the text and the tokenizer.
/// </summary>
public sealed class TokenCorpus
{
    private TokenCorpus(int[] tokens) => Tokens = tokens;

    public int[] Tokens { get; }

    public static TokenCorpus Load(string textPath, ITokenizer tokenizer, string tokenizerDigest, string cacheDirectory)
    {
        string key = FileHashes.Of(FileHashes.Compute(textPath) + "\n" + tokenizerDigest)[..16];
        string cache = Path.Combine(cacheDirectory, $"tokens-{key}.i32");
        if (File.Exists(cache))
            return new TokenCorpus(MemoryMarshal.Cast<byte, int>(File.ReadAllBytes(cache)).ToArray());

        int separator = tokenizer.EosId ?? throw new UserInputException("the tokenizer has no end-of-text (eos) token to separate paragraphs");
        var ids = new List<int>();
        foreach (var line in ReadLines(textPath))
        {
            if (line.Length == 0) continue;
            ids.AddRange(tokenizer.Encode(line));
            ids.Add(separator);
        }
        var tokens = ids.ToArray();
        Directory.CreateDirectory(cacheDirectory);
        AtomicFile.WriteAllBytes(cache, MemoryMarshal.AsBytes(tokens.AsSpan()));
        return new TokenCorpus(tokens);
    }

    public static IEnumerable<string> ReadLines(string path)
    {
        using var file = File.OpenRead(path);
        using Stream stream = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : file;
        using var reader = new StreamReader(stream);
        while (reader.ReadLine() is { } line) yield return line;
    }
}
