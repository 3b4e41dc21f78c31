using System.Text.Json;
using System.Text.Json.Nodes;

namespace Forgetless.Model.Tokenizers;

/// <summary>
/// Loads the tokenizer of an HF model folder: <c>tokenizer.json</c> if present, else <c>vocab.json</c> +
/// <c>merges.txt</c>. Special tokens (bos, eos, pad) come from <c>tokenizer_config.json</c>, then
/// <c>special_tokens_map.json</c>; a GPT-2 style vocabulary without either uses <c>&lt;|endoftext|&gt;</c>
/// for bos and eos, as HF's GPT2Tokenizer does by default.
/// </summary>
public static class TokenizerLoader
{
    public const string ConfigFile = "tokenizer_config.json";
    public const string SpecialTokensMapFile = "special_tokens_map.json";
    public const string AddedTokensFile = "added_tokens.json";

    public static bool HasTokenizer(string directory) =>
        File.Exists(Path.Combine(directory, TokenizerJsonReader.FileName))
        || (File.Exists(Path.Combine(directory, VocabMergesReader.VocabFile)) && File.Exists(Path.Combine(directory, VocabMergesReader.MergesFile)));

    public static ByteLevelBpeTokenizer Load(string directory)
    {
        var configs = new[] { ConfigFile, SpecialTokensMapFile }
            .Select(f => (Name: f, Path: Path.Combine(directory, f)))
            .Where(f => File.Exists(f.Path))
            .Select(f => (f.Name, Json: ParseObject(f.Path, f.Name)))
            .ToList();
        SpecialTokenIds? Specials(IReadOnlyList<AddedToken> added, Func<string, int?> idOf) => ResolveSpecials(configs, idOf);

        var tokenizerJson = Path.Combine(directory, TokenizerJsonReader.FileName);
        if (File.Exists(tokenizerJson)) return TokenizerJsonReader.Read(tokenizerJson, Specials);
        if (!HasTokenizer(directory))
            throw new FileNotFoundException(
                $"{directory}: no tokenizer ({TokenizerJsonReader.FileName}, or {VocabMergesReader.VocabFile} + {VocabMergesReader.MergesFile})");
        return VocabMergesReader.Read(directory, ReadAddedTokens(directory, configs), Specials);
    }

    private static List<AddedToken> ReadAddedTokens(string directory, List<(string Name, JsonObject Json)> configs)
    {
        var added = new Dictionary<int, AddedToken>();
        var addedPath = Path.Combine(directory, AddedTokensFile);
        if (File.Exists(addedPath))
            foreach (var (content, id) in ParseObject(addedPath, AddedTokensFile))
                added[(int)id!.GetValue<double>()] = new AddedToken((int)id.GetValue<double>(), content, Special: false);
        foreach (var (_, json) in configs)
            if (json["added_tokens_decoder"] is JsonObject decoder)
                foreach (var (id, token) in decoder)
                    added[int.Parse(id, System.Globalization.CultureInfo.InvariantCulture)] =
                        new AddedToken(int.Parse(id, System.Globalization.CultureInfo.InvariantCulture), token!["content"]!.GetValue<string>(),
                            token["special"]?.GetValue<bool>() ?? false);
        return added.Values.OrderBy(a => a.Id).ToList();
    }

    private static SpecialTokenIds ResolveSpecials(List<(string Name, JsonObject Json)> configs, Func<string, int?> idOf)
    {
        int? Resolve(string key)
        {
            foreach (var (name, json) in configs)
            {
                var content = json[key] switch
                {
                    JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
                    JsonObject o => o["content"]?.GetValue<string>(),
                    _ => null,
                };
                if (content is null) continue;
                return idOf(content) ?? throw new InvalidDataException($"{name}: {key} '{content}' is not in the tokenizer's vocabulary");
            }
            return null;
        }
        var endOfText = configs.Count == 0 ? idOf("<|endoftext|>") : null;
        return new SpecialTokenIds(Resolve("bos_token") ?? endOfText, Resolve("eos_token") ?? endOfText, Resolve("pad_token"));
    }

    private static JsonObject ParseObject(string path, string name)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{name}: expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{name}: not valid JSON: {e.Message}", e);
        }
    }
}
