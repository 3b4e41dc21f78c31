using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Forgetless.Tokenization;

/// <summary>
/// Writes a <see cref="BpeModel"/> as the files a Hugging Face tokenizer folder holds:
/// tokenizer.json (the fast-tokenizer format), vocab.json + merges.txt (the GPT-2 slow format),
/// tokenizer_config.json and special_tokens_map.json.
/// </summary>
public static class TokenizerFiles
{
    public const string EndOfText = "<|endoftext|>";

    private static readonly JsonWriterOptions Indented = new()
    {
        Indented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        NewLine = "\n",
    };

    /// <summary>Writes the five files into <paramref name="directory"/> (each to a temp file, then moved).</summary>
    public static IReadOnlyList<string> Write(BpeModel model, string directory)
    {
        Directory.CreateDirectory(directory);
        var written = new List<string>
        {
            WriteFile(directory, "tokenizer.json", w => WriteTokenizerJson(model, w)),
            WriteFile(directory, "vocab.json", w => WriteVocab(model, w)),
            WriteText(directory, "merges.txt", MergesText(model)),
            WriteFile(directory, "tokenizer_config.json", w => WriteConfig(model, w)),
            WriteFile(directory, "special_tokens_map.json", WriteSpecialMap),
        };
        return written;
    }

    /// <summary>Reads back vocab.json + merges.txt as written by <see cref="Write"/>.</summary>
    public static BpeModel Read(string directory)
    {
        using var vocabDoc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(directory, "vocab.json")));
        var pairs = vocabDoc.RootElement.EnumerateObject().Select(p => (p.Name, Id: p.Value.GetInt32())).OrderBy(p => p.Id).ToArray();
        for (var i = 0; i < pairs.Length; i++)
        {
            if (pairs[i].Id != i) throw new FormatException($"vocab.json: ids are not 0..{pairs.Length - 1} (missing {i}).");
        }
        var merges = new List<(string, string)>();
        foreach (var line in File.ReadAllLines(Path.Combine(directory, "merges.txt")))
        {
            if (line.StartsWith("#version", StringComparison.Ordinal) || line.Length == 0) continue;
            var parts = line.Split(' ');
            if (parts.Length != 2) throw new FormatException($"merges.txt: '{line}' is not 'left right'.");
            merges.Add((parts[0], parts[1]));
        }
        var tokens = pairs.Select(p => p.Name).ToArray();
        var specials = tokens.Where(t => t.StartsWith("<|", StringComparison.Ordinal) && t.EndsWith("|>", StringComparison.Ordinal)).ToArray();
        return new BpeModel(tokens, merges, specials);
    }

    private static void WriteTokenizerJson(BpeModel model, Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("version", "1.0");
        w.WriteNull("truncation");
        w.WriteNull("padding");
        w.WriteStartArray("added_tokens");
        foreach (var s in model.SpecialTokens)
        {
            w.WriteStartObject();
            w.WriteNumber("id", model.TokenIds[s]);
            w.WriteString("content", s);
            w.WriteBoolean("single_word", false);
            w.WriteBoolean("lstrip", false);
            w.WriteBoolean("rstrip", false);
            w.WriteBoolean("normalized", false);
            w.WriteBoolean("special", true);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteNull("normalizer");
        WriteByteLevel(w, "pre_tokenizer", addPrefixSpace: false, trimOffsets: true);
        WriteByteLevel(w, "post_processor", addPrefixSpace: false, trimOffsets: true);
        WriteByteLevel(w, "decoder", addPrefixSpace: false, trimOffsets: true);
        w.WriteStartObject("model");
        w.WriteString("type", "BPE");
        w.WriteNull("dropout");
        w.WriteNull("unk_token");
        w.WriteString("continuing_subword_prefix", "");
        w.WriteString("end_of_word_suffix", "");
        w.WriteBoolean("fuse_unk", false);
        w.WriteBoolean("byte_fallback", false);
        w.WriteBoolean("ignore_merges", false);
        w.WritePropertyName("vocab");
        WriteVocab(model, w);
        w.WriteStartArray("merges");
        foreach (var (l, r) in model.Merges) w.WriteStringValue(l + " " + r);
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteByteLevel(Utf8JsonWriter w, string name, bool addPrefixSpace, bool trimOffsets)
    {
        w.WriteStartObject(name);
        w.WriteString("type", "ByteLevel");
        w.WriteBoolean("add_prefix_space", addPrefixSpace);
        w.WriteBoolean("trim_offsets", trimOffsets);
        w.WriteBoolean("use_regex", true);
        w.WriteEndObject();
    }

    private static void WriteVocab(BpeModel model, Utf8JsonWriter w)
    {
        w.WriteStartObject();
        for (var i = 0; i < model.Tokens.Count; i++) w.WriteNumber(model.Tokens[i], i);
        w.WriteEndObject();
    }

    private static string MergesText(BpeModel model)
    {
        var sb = new StringBuilder("#version: 0.2\n");
        foreach (var (l, r) in model.Merges) sb.Append(l).Append(' ').Append(r).Append('\n');
        return sb.ToString();
    }

    private static void WriteConfig(BpeModel model, Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteBoolean("add_bos_token", false);
        w.WriteBoolean("add_eos_token", false);
        w.WriteBoolean("add_prefix_space", false);
        w.WriteStartObject("added_tokens_decoder");
        foreach (var s in model.SpecialTokens)
        {
            w.WriteStartObject(model.TokenIds[s].ToString(System.Globalization.CultureInfo.InvariantCulture));
            w.WriteString("content", s);
            w.WriteBoolean("lstrip", false);
            w.WriteBoolean("normalized", false);
            w.WriteBoolean("rstrip", false);
            w.WriteBoolean("single_word", false);
            w.WriteBoolean("special", true);
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteString("bos_token", EndOfText);
        w.WriteString("eos_token", EndOfText);
        w.WriteString("pad_token", EndOfText);
        w.WriteString("unk_token", EndOfText);
        w.WriteBoolean("clean_up_tokenization_spaces", false);
        w.WriteString("tokenizer_class", "GPT2Tokenizer");
        w.WriteEndObject();
    }

    private static void WriteSpecialMap(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("bos_token", EndOfText);
        w.WriteString("eos_token", EndOfText);
        w.WriteString("pad_token", EndOfText);
        w.WriteString("unk_token", EndOfText);
        w.WriteEndObject();
    }

    private static string WriteFile(string directory, string name, Action<Utf8JsonWriter> body)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, Indented)) body(w);
        buffer.WriteByte((byte)'\n');
        return WriteBytes(directory, name, buffer.ToArray());
    }

    private static string WriteText(string directory, string name, string text) => WriteBytes(directory, name, new UTF8Encoding(false).GetBytes(text));

    private static string WriteBytes(string directory, string name, byte[] bytes)
    {
        var path = Path.Combine(directory, name);
        var temp = path + ".tmp";
        File.WriteAllBytes(temp, bytes);
        File.Move(temp, path, overwrite: true);
        return path;
    }
}
