namespace Forgetless.Model.Tokenizers;

/// <summary>
/// GPT-2's reversible map from the 256 byte values to printable characters, so that BPE vocabularies
/// can be stored as text: printable Latin-1 bytes map to themselves, the others (control characters,
/// space, ...) to U+0100 onwards in byte order. A space therefore shows up as 'Ġ' in vocab files.
/// </summary>
public static class ByteLevelAlphabet
{
    private static readonly char[] ByteToChar = BuildTable();
    private static readonly Dictionary<char, byte> CharToByte =
        ByteToChar.Select((c, b) => (c, b)).ToDictionary(p => p.c, p => (byte)p.b);

    private static char[] BuildTable()
    {
        static bool Printable(int b) => b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
        var table = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++) table[b] = Printable(b) ? (char)b : (char)next++;
        return table;
    }

    public static char ToChar(byte b) => ByteToChar[b];

    public static bool TryToByte(char c, out byte b) => CharToByte.TryGetValue(c, out b);

    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }
}
