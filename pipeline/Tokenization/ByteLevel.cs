using System.Text;
using System.Text.RegularExpressions;

namespace Forgetless.Tokenization;

/// <summary>
/// GPT-2's byte-level alphabet and pre-tokenizer: every UTF-8 byte is shown as one printable
/// character, so a BPE vocabulary over these characters can spell any text without an unknown token.
/// </summary>
public static class ByteLevel
{
    /// <summary>The GPT-2 split pattern, as Hugging Face's ByteLevel pre-tokenizer uses it with use_regex=true.</summary>
    public const string SplitPattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private static readonly Regex Splitter = new(SplitPattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);

    /// <summary>Byte value to its printable stand-in (GPT-2 <c>bytes_to_unicode</c>).</summary>
    public static IReadOnlyList<char> ByteToChar { get; }

    private static readonly Dictionary<char, byte> CharToByte;

    static ByteLevel()
    {
        // Printable Latin-1 bytes stand for themselves; the other 68 bytes are shifted to U+0100.. in byte order.
        var map = new char[256];
        var shifted = 0;
        for (var b = 0; b < 256; b++)
        {
            var printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            map[b] = printable ? (char)b : (char)(256 + shifted++);
        }
        ByteToChar = map;
        CharToByte = new Dictionary<char, byte>(256);
        for (var b = 0; b < 256; b++) CharToByte[map[b]] = (byte)b;
    }

    /// <summary>Splits text into the pieces BPE works on (no prefix space is added).</summary>
    public static IEnumerable<string> PreTokenize(string text)
    {
        for (var m = Splitter.Match(text); m.Success; m = m.NextMatch()) yield return m.Value;
    }

    /// <summary>The byte-level spelling of a piece: its UTF-8 bytes mapped through <see cref="ByteToChar"/>.</summary>
    public static string Encode(string piece)
    {
        var bytes = Encoding.UTF8.GetBytes(piece);
        var chars = new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    /// <summary>Inverse of <see cref="Encode"/> for a concatenation of token strings.</summary>
    public static string Decode(string byteLevelText)
    {
        var bytes = new byte[byteLevelText.Length];
        for (var i = 0; i < byteLevelText.Length; i++)
        {
            if (!CharToByte.TryGetValue(byteLevelText[i], out bytes[i]))
                throw new FormatException($"Character U+{(int)byteLevelText[i]:X4} is not in the byte-level alphabet.");
        }
        return Encoding.UTF8.GetString(bytes);
    }
}
