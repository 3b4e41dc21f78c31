using System.Text.Json;

namespace Forgetless.Model.Tokenizers;

/// <summary>The original GPT-2 tokenizer files: <c>vocab.json</c> ({token: id}) and <c>merges.txt</c> ("a b" per line).</summary>
public static class VocabMergesReader
{
    public const string VocabFile = "vocab.json";
    public const string MergesFile = "merges.txt";

    public static ByteLevelBpeTokenizer Read(string directory, IReadOnlyList<AddedToken> addedTokens,
        Func<IReadOnlyList<AddedToken>, Func<string, int?>, SpecialTokenIds?>? specials = null)
    {
        Dictionary<string, int> vocab;
        try
        {
            vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(directory, VocabFile)))
                ?? throw new InvalidDataException($"{VocabFile}: empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{VocabFile}: expected {{\"token\": id, ...}} ({e.Message})", e);
        }
        var merges = new List<(string, string)>();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(Path.Combine(directory, MergesFile)))
        {
            lineNumber++;
            if (line.StartsWith("#version", StringComparison.Ordinal) || line.Length == 0) continue;
            var parts = line.Split(' ');
            if (parts.Length != 2) throw new InvalidDataException($"{MergesFile}:{lineNumber}: expected two symbols separated by one space, got '{line}'");
            merges.Add((parts[0], parts[1]));
        }
        // Added tokens that are not in vocab.json extend it (added_tokens.json / tokenizer_config.json).
        var added = addedTokens.ToList();
        var special = specials?.Invoke(added, t => added.FirstOrDefault(a => a.Content == t)?.Id ?? (vocab.TryGetValue(t, out var id) ? id : null));
        return new ByteLevelBpeTokenizer(vocab, merges, PreTokenizer.Gpt2, added, special);
    }
}
