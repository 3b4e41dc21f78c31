using System.Globalization;
using System.Text;

namespace Forgetless.Data.ChatTemplates;

/// <summary>What a template's source is cut into: literal text, <c>{{ … }}</c> output, <c>{% … %}</c> statements.</summary>
internal enum JinjaPartKind { Text, Output, Statement }

internal sealed record JinjaPart(JinjaPartKind Kind, string Content, int Line);

/// <summary>
/// Cuts a chat template into literal text and tags with the whitespace rules transformers renders chat templates with
/// (<c>trim_blocks</c> and <c>lstrip_blocks</c> on): a newline right after a statement or comment is dropped, spaces and
/// tabs from the start of a line up to a statement or comment are dropped, and a <c>-</c> inside a delimiter
/// (<c>{%-</c>, <c>-%}</c>, <c>{{-</c>, <c>-}}</c>, <c>{#-</c>, <c>-#}</c>) strips all whitespace on that side.
/// </summary>
internal static class JinjaLexer
{
    public static List<JinjaPart> Split(string source)
    {
        var parts = new List<JinjaPart>();
        var text = new StringBuilder();
        int i = 0, line = 1;
        bool stripNextText = false, trimNextNewline = false;

        void FlushText(bool stripRight, bool lstripBlock)
        {
            var s = text.ToString();
            text.Clear();
            if (stripRight) s = s.TrimEnd();
            else if (lstripBlock)
            {
                // lstrip_blocks: only when the tag is the first non-blank thing on its line.
                int end = s.Length;
                while (end > 0 && (s[end - 1] == ' ' || s[end - 1] == '\t')) end--;
                if (end == 0 ? parts.Count == 0 || EndsLine(parts) : s[end - 1] == '\n') s = s[..end];
            }
            if (s.Length > 0) parts.Add(new JinjaPart(JinjaPartKind.Text, s, line));
        }

        while (i < source.Length)
        {
            if (source[i] == '{' && i + 1 < source.Length && source[i + 1] is '{' or '%' or '#')
            {
                char kind = source[i + 1];
                string close = kind switch { '{' => "}}", '%' => "%}", _ => "#}" };
                int start = i + 2;
                bool stripLeft = start < source.Length && source[start] == '-';
                if (stripLeft || (start < source.Length && source[start] == '+')) start++;
                int end = kind == '#' ? source.IndexOf(close, start, StringComparison.Ordinal) : FindClose(source, start, close);
                if (end < 0) throw new ChatTemplateException($"line {line}: '{{{kind}' is never closed with '{close}'");
                bool stripRight = end > start && source[end - 1] == '-';
                int contentEnd = stripRight || (end > start && source[end - 1] == '+') ? end - 1 : end;
                FlushText(stripLeft, kind != '{');
                string content = source[start..contentEnd];
                int tagLine = line;
                line += Count(source, i, end + 2 - i);
                if (kind == '{') parts.Add(new JinjaPart(JinjaPartKind.Output, content.Trim(), tagLine));
                else if (kind == '%') parts.Add(new JinjaPart(JinjaPartKind.Statement, content.Trim(), tagLine));
                i = end + 2;
                stripNextText = stripRight;
                trimNextNewline = kind != '{' && !stripRight;
                continue;
            }
            if (stripNextText && char.IsWhiteSpace(source[i]))
            {
                if (source[i] == '\n') line++;
                i++;
                continue;
            }
            stripNextText = false;
            if (trimNextNewline)
            {
                trimNextNewline = false;
                if (source[i] == '\n') { line++; i++; continue; }
                if (source[i] == '\r' && i + 1 < source.Length && source[i + 1] == '\n') { line++; i += 2; continue; }
            }
            if (source[i] == '\n') line++;
            text.Append(source[i]);
            i++;
        }
        FlushText(false, false);
        return parts;
    }

    /// <summary>True when the output so far ends a line (or nothing was emitted on it): a tag there starts its line.</summary>
    private static bool EndsLine(List<JinjaPart> parts)
    {
        for (int k = parts.Count - 1; k >= 0; k--)
            if (parts[k].Kind == JinjaPartKind.Text) return parts[k].Content.EndsWith('\n');
            else if (parts[k].Kind == JinjaPartKind.Output) return false;
        return true;
    }

    /// <summary>The closing delimiter, skipping any inside string literals.</summary>
    private static int FindClose(string source, int from, string close)
    {
        char quote = '\0';
        for (int k = from; k < source.Length - 1; k++)
        {
            char c = source[k];
            if (quote != '\0')
            {
                if (c == '\\') k++;
                else if (c == quote) quote = '\0';
                continue;
            }
            if (c is '\'' or '"') quote = c;
            else if (c == close[0] && source[k + 1] == close[1]) return k;
        }
        return -1;
    }

    private static int Count(string s, int from, int length)
    {
        int n = 0;
        for (int k = from; k < from + length && k < s.Length; k++) if (s[k] == '\n') n++;
        return n;
    }
}

/// <summary>A token of an expression inside a tag.</summary>
internal readonly record struct JinjaToken(JinjaTokenKind Kind, string Text, object? Value = null);

internal enum JinjaTokenKind { Name, String, Number, Operator, End }

/// <summary>Tokens of the expression language: names, string and number literals, operators and punctuation.</summary>
internal static class JinjaTokens
{
    private static readonly string[] Operators = ["==", "!=", "<=", ">=", "//", "**", "+", "-", "*", "/", "%", "~", "<", ">", "(", ")", "[", "]", "{", "}", ".", ",", ":", "|", "="];

    public static List<JinjaToken> Of(string expression, int line)
    {
        var tokens = new List<JinjaToken>();
        int i = 0;
        while (i < expression.Length)
        {
            char c = expression[i];
            if (char.IsWhiteSpace(c)) { i++; continue; }
            if (char.IsLetter(c) || c == '_')
            {
                int start = i;
                while (i < expression.Length && (char.IsLetterOrDigit(expression[i]) || expression[i] == '_')) i++;
                tokens.Add(new JinjaToken(JinjaTokenKind.Name, expression[start..i]));
                continue;
            }
            if (char.IsDigit(c))
            {
                int start = i;
                while (i < expression.Length && (char.IsDigit(expression[i]) || expression[i] == '_')) i++;
                bool real = i + 1 < expression.Length && expression[i] == '.' && char.IsDigit(expression[i + 1]);
                if (real) { i++; while (i < expression.Length && char.IsDigit(expression[i])) i++; }
                var literal = expression[start..i].Replace("_", "");
                tokens.Add(new JinjaToken(JinjaTokenKind.Number, literal,
                    real ? (object)double.Parse(literal, CultureInfo.InvariantCulture) : (object)long.Parse(literal, CultureInfo.InvariantCulture)));
                continue;
            }
            if (c is '\'' or '"')
            {
                var value = new StringBuilder();
                int k = i + 1;
                for (; k < expression.Length && expression[k] != c; k++)
                {
                    if (expression[k] != '\\' || k + 1 >= expression.Length) { value.Append(expression[k]); continue; }
                    k++;
                    value.Append(expression[k] switch
                    {
                        'n' => '\n', 't' => '\t', 'r' => '\r', '\\' => '\\', '\'' => '\'', '"' => '"', '0' => '\0',
                        var other => throw new ChatTemplateException($"line {line}: unsupported escape '\\{other}' in a string literal"),
                    });
                }
                if (k >= expression.Length) throw new ChatTemplateException($"line {line}: unterminated string literal");
                tokens.Add(new JinjaToken(JinjaTokenKind.String, expression[i..(k + 1)], value.ToString()));
                i = k + 1;
                continue;
            }
            var op = Operators.FirstOrDefault(o => string.CompareOrdinal(expression, i, o, 0, o.Length) == 0)
                ?? throw new ChatTemplateException($"line {line}: unexpected character '{c}' in '{expression}'");
            tokens.Add(new JinjaToken(JinjaTokenKind.Operator, op));
            i += op.Length;
        }
        tokens.Add(new JinjaToken(JinjaTokenKind.End, ""));
        return tokens;
    }
}

/// <summary>A template that cannot be read or rendered, or a <c>raise_exception</c> of the template itself.</summary>
public sealed class ChatTemplateException(string message) : Exception(message);
