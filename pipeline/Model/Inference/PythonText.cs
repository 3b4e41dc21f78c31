namespace Forgetless.Model.Inference;

/// <summary>
/// The few Python string rules lm-evaluation-harness's numbers depend on, so that ours count the same: what
/// <c>str.rstrip()</c> strips and <c>re.split(r"\s+", …)</c> splits on (both Python's Unicode whitespace,
/// <c>str.isspace</c>), and <c>len()</c> of a string (code points, not UTF-16 units).
/// </summary>
public static class PythonText
{
    /// <summary>Python's <c>str.isspace</c> for one character: .NET's white space plus U+001C–U+001F (file, group, record and unit separators).</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';

    /// <summary><c>text.rstrip()</c>.</summary>
    public static string RStrip(string text)
    {
        int end = text.Length;
        while (end > 0 && IsSpace(text[end - 1])) end--;
        return text[..end];
    }

    /// <summary><c>len(re.split(r"\s+", text))</c>: one more than the runs of whitespace (a leading or trailing run counts, "" is 1).</summary>
    public static int SplitOnWhitespaceCount(string text)
    {
        int parts = 1;
        for (int i = 0; i < text.Length; i++)
            if (IsSpace(text[i]) && (i == 0 || !IsSpace(text[i - 1]))) parts++;
        return parts;
    }

    /// <summary><c>len(text)</c>: Unicode code points (a surrogate pair is one).</summary>
    public static int Length(string text) => text.EnumerateRunes().Count();
}
