using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Forgetless.Model.Tokenizers;

/// <summary>
/// Reads an HF <c>tokenizer.json</c> whose model is byte-level BPE. Supported pieces: normalizer null/NFC;
/// pre_tokenizer ByteLevel, or a Sequence of Split (Isolated) and ByteLevel; merges as "a b" strings or
/// [a, b] pairs; added_tokens. Anything else (SentencePiece-style Metaspace, byte_fallback, WordPiece) is
/// refused with the name of the unsupported part.
/// </summary>
public static class TokenizerJsonReader
{
    public const string FileName = "tokenizer.json";

    public static ByteLevelBpeTokenizer Read(string path, Func<IReadOnlyList<AddedToken>, Func<string, int?>, SpecialTokenIds?>? specials = null)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{FileName}: expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{FileName}: not valid JSON: {e.Message}", e);
        }
        try
        {
            return Build(root, specials);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or KeyNotFoundException)
        {
            throw new InvalidDataException($"{FileName}: unexpected structure ({e.Message})", e);
        }
    }

    private static ByteLevelBpeTokenizer Build(JsonObject root, Func<IReadOnlyList<AddedToken>, Func<string, int?>, SpecialTokenIds?>? specials)
    {
        var model = root["model"] as JsonObject ?? throw new InvalidDataException($"{FileName}: no 'model'");
        var type = model["type"]?.GetValue<string>() ?? "BPE";
        if (type != "BPE")
            throw new NotSupportedException($"{FileName}: model type '{type}' is not supported; supported: BPE (byte-level)");
        if (model["byte_fallback"]?.GetValue<bool>() == true)
            throw new NotSupportedException($"{FileName}: BPE with byte_fallback (SentencePiece-style) is not supported; only byte-level BPE is");
        foreach (var key in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            if (model[key]?.GetValue<string>() is { Length: > 0 } v)
                throw new NotSupportedException($"{FileName}: BPE {key} '{v}' is not supported");

        var vocab = (model["vocab"] as JsonObject ?? throw new InvalidDataException($"{FileName}: model has no 'vocab' object"))
            .ToDictionary(p => p.Key, p => (int)p.Value!.GetValue<double>(), StringComparer.Ordinal);
        var merges = (model["merges"] as JsonArray ?? []).Select((m, i) => ParseMerge(m, i)).ToList();
        var added = (root["added_tokens"] as JsonArray ?? [])
            .Select(a => new AddedToken((int)a!["id"]!.GetValue<double>(), a["content"]!.GetValue<string>(), a["special"]?.GetValue<bool>() ?? false))
            .ToList();
        var preTokenizer = ReadPreTokenizer(root["pre_tokenizer"], ReadNormalizer(root["normalizer"]));
        var special = specials?.Invoke(added, t => added.FirstOrDefault(a => a.Content == t)?.Id ?? (vocab.TryGetValue(t, out var id) ? id : null));
        return new ByteLevelBpeTokenizer(vocab, merges, preTokenizer, added, special, model["ignore_merges"]?.GetValue<bool>() ?? false);
    }

    private static (string, string) ParseMerge(JsonNode? node, int index)
    {
        switch (node)
        {
            case JsonArray { Count: 2 } pair:
                return (pair[0]!.GetValue<string>(), pair[1]!.GetValue<string>());
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                var parts = v.GetValue<string>().Split(' ');
                if (parts.Length == 2) return (parts[0], parts[1]);
                break;
        }
        throw new InvalidDataException($"{FileName}: merges[{index}] should be \"a b\" or [\"a\", \"b\"], got {node?.ToJsonString()}");
    }

    private static bool ReadNormalizer(JsonNode? node) => node switch
    {
        null => false,
        JsonObject o when o["type"]?.GetValue<string>() == "NFC" => true,
        JsonObject o when o["type"]?.GetValue<string>() == "Sequence" && o["normalizers"] is JsonArray list =>
            list.Select(ReadNormalizer).Aggregate(false, (a, b) => a || b),
        _ => throw new NotSupportedException($"{FileName}: normalizer {node.ToJsonString()} is not supported; supported: none, NFC"),
    };

    private static PreTokenizer ReadPreTokenizer(JsonNode? node, bool nfc)
    {
        var steps = node switch
        {
            JsonObject o when o["type"]?.GetValue<string>() == "Sequence" => (o["pretokenizers"] as JsonArray ?? []).Select(s => (JsonObject)s!).ToList(),
            JsonObject o => [o],
            _ => throw new NotSupportedException($"{FileName}: no pre_tokenizer; byte-level BPE needs a ByteLevel pre-tokenizer"),
        };
        var patterns = new List<string>();
        var sawByteLevel = false;
        var addPrefixSpace = false;
        foreach (var step in steps)
        {
            var type = step["type"]?.GetValue<string>();
            switch (type)
            {
                case "ByteLevel":
                    sawByteLevel = true;
                    addPrefixSpace = step["add_prefix_space"]?.GetValue<bool>() ?? false;
                    if (step["use_regex"]?.GetValue<bool>() ?? true) patterns.Add(PreTokenizer.Gpt2Pattern);
                    break;
                case "Split":
                    var behavior = step["behavior"]?.GetValue<string>();
                    if (behavior != "Isolated" || step["invert"]?.GetValue<bool>() == true)
                        throw new NotSupportedException($"{FileName}: Split pre-tokenizer with behavior '{behavior}' is not supported; supported: Isolated");
                    var pattern = step["pattern"] as JsonObject;
                    patterns.Add(pattern?["Regex"]?.GetValue<string>()
                        ?? (pattern?["String"]?.GetValue<string>() is { } s ? Regex.Escape(s)
                            : throw new InvalidDataException($"{FileName}: Split pre-tokenizer has no pattern")));
                    break;
                default:
                    throw new NotSupportedException($"{FileName}: pre_tokenizer '{type}' is not supported; supported: ByteLevel, Split, Sequence of them");
            }
        }
        if (!sawByteLevel)
            throw new NotSupportedException($"{FileName}: pre_tokenizer has no ByteLevel step; only byte-level BPE tokenizers are supported");
        return new PreTokenizer(patterns, addPrefixSpace, nfc);
    }
}
