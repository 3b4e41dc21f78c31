using System.Text;

namespace Forgetless.Data.ChatTemplates;

/// <summary>
/// The subset of Jinja2 that the chat templates of Qwen2.5, Llama 3.x, SmolLM2 and Mistral are written in, rendered as
/// transformers' <c>apply_chat_template</c> renders them: statements <c>if/elif/else</c>, <c>for … in … [if …]</c>
/// (with <c>loop.index0/index/first/last/length</c> and tuple targets), <c>set</c> (names and namespace attributes);
/// expressions with Python's operators, subscripts, slices, attributes, method calls (<c>strip</c>, <c>items</c>, …),
/// filters (<c>trim</c>, <c>length</c>, <c>tojson</c>, <c>selectattr</c>, <c>reject</c>, <c>join</c>, …) and tests
/// (<c>defined</c>, <c>none</c>, <c>string</c>, <c>mapping</c>, <c>iterable</c>, …). Anything else is a
/// <see cref="ChatTemplateException"/> naming the line, never a silently wrong rendering.
/// </summary>
public sealed class JinjaTemplate
{
    private readonly List<Node> body;

    public JinjaTemplate(string source)
    {
        var parts = JinjaLexer.Split(source);
        int position = 0;
        body = ParseBlock(parts, ref position, []);
        if (position < parts.Count) throw new ChatTemplateException($"line {parts[position].Line}: unexpected '{{% {parts[position].Content} %}}'");
    }

    /// <summary>Renders with <paramref name="variables"/> (messages, bos_token, add_generation_prompt, …) as the global names.</summary>
    public string Render(IReadOnlyDictionary<string, object?> variables)
    {
        var scope = new Scope(null);
        foreach (var (name, value) in JinjaBuiltins.Globals) scope.Set(name, value);
        foreach (var (name, value) in variables) scope.Set(name, value);
        var output = new StringBuilder();
        foreach (var node in body) node.Render(scope, output);
        return output.ToString();
    }

    // ---- statements ----

    private static List<Node> ParseBlock(List<JinjaPart> parts, ref int position, string[] terminators)
    {
        var nodes = new List<Node>();
        while (position < parts.Count)
        {
            var part = parts[position];
            switch (part.Kind)
            {
                case JinjaPartKind.Text:
                    nodes.Add(new TextNode(part.Content));
                    position++;
                    continue;
                case JinjaPartKind.Output:
                    nodes.Add(new OutputNode(JinjaExpression.Parse(part.Content, part.Line), part.Line));
                    position++;
                    continue;
            }
            var keyword = part.Content.Split((char[]?)null, 2, StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? "";
            if (terminators.Contains(keyword)) return nodes;
            position++;
            string rest = part.Content[keyword.Length..].Trim();
            switch (keyword)
            {
                case "if":
                    nodes.Add(ParseIf(parts, ref position, rest, part.Line));
                    break;
                case "for":
                    nodes.Add(ParseFor(parts, ref position, rest, part.Line));
                    break;
                case "set":
                    int eq = FindAssignment(rest);
                    if (eq < 0) throw new ChatTemplateException($"line {part.Line}: block 'set' (without '=') is not supported");
                    nodes.Add(new SetNode(rest[..eq].Trim(), JinjaExpression.Parse(rest[(eq + 1)..], part.Line), part.Line));
                    break;
                case "break" or "continue":
                    nodes.Add(new LoopControlNode(keyword == "break"));
                    break;
                default:
                    throw new ChatTemplateException($"line {part.Line}: '{{% {keyword} %}}' is not supported by this Jinja subset");
            }
        }
        if (terminators.Length > 0) throw new ChatTemplateException($"the template ends before '{{% {terminators[^1]} %}}'");
        return nodes;
    }

    private static int FindAssignment(string s)
    {
        for (int i = 0; i < s.Length; i++)
            if (s[i] == '=' && (i + 1 >= s.Length || s[i + 1] != '=') && (i == 0 || s[i - 1] is not ('=' or '!' or '<' or '>'))) return i;
        return -1;
    }

    private static Node ParseIf(List<JinjaPart> parts, ref int position, string condition, int line)
    {
        var branches = new List<(JinjaExpression? Condition, List<Node> Body)>();
        var current = JinjaExpression.Parse(condition, line);
        while (true)
        {
            var block = ParseBlock(parts, ref position, ["elif", "else", "endif"]);
            branches.Add((current, block));
            var tag = parts[position++];
            if (tag.Content.StartsWith("elif", StringComparison.Ordinal)) { current = JinjaExpression.Parse(tag.Content[4..], tag.Line); continue; }
            if (tag.Content.StartsWith("else", StringComparison.Ordinal))
            {
                branches.Add((null, ParseBlock(parts, ref position, ["endif"])));
                position++;
            }
            return new IfNode(branches);
        }
    }

    private static Node ParseFor(List<JinjaPart> parts, ref int position, string header, int line)
    {
        int inAt = IndexOfWord(header, "in");
        if (inAt < 0) throw new ChatTemplateException($"line {line}: expected 'for NAME in EXPRESSION'");
        var targets = header[..inAt].Split(',').Select(t => t.Trim()).ToArray();
        string rest = header[(inAt + 2)..];
        int ifAt = IndexOfWord(rest, "if");
        var iterable = JinjaExpression.Parse(ifAt < 0 ? rest : rest[..ifAt], line);
        var filter = ifAt < 0 ? null : JinjaExpression.Parse(rest[(ifAt + 2)..], line);
        var block = ParseBlock(parts, ref position, ["else", "endfor"]);
        List<Node>? otherwise = null;
        if (parts[position++].Content.StartsWith("else", StringComparison.Ordinal))
        {
            otherwise = ParseBlock(parts, ref position, ["endfor"]);
            position++;
        }
        return new ForNode(targets, iterable, filter, block, otherwise, line);
    }

    /// <summary>Where <paramref name="word"/> stands as a keyword outside string literals and brackets.</summary>
    private static int IndexOfWord(string s, string word)
    {
        char quote = '\0';
        int depth = 0;
        for (int i = 0; i + word.Length <= s.Length; i++)
        {
            char c = s[i];
            if (quote != '\0') { if (c == '\\') i++; else if (c == quote) quote = '\0'; continue; }
            if (c is '\'' or '"') { quote = c; continue; }
            if (c is '(' or '[' or '{') depth++;
            else if (c is ')' or ']' or '}') depth--;
            else if (depth == 0 && string.CompareOrdinal(s, i, word, 0, word.Length) == 0
                     && (i == 0 || !char.IsLetterOrDigit(s[i - 1]) && s[i - 1] != '_')
                     && (i + word.Length == s.Length || !char.IsLetterOrDigit(s[i + word.Length]) && s[i + word.Length] != '_'))
                return i;
        }
        return -1;
    }

    // ---- nodes ----

    internal sealed class Scope(Scope? parent)
    {
        private readonly Dictionary<string, object?> values = new(StringComparer.Ordinal);

        public object? Get(string name) => values.TryGetValue(name, out var v) ? v : parent is null ? Undefined.Value : parent.Get(name);

        public void Set(string name, object? value) => values[name] = value;
    }

    private sealed class LoopSignal(bool isBreak) : Exception
    {
        public bool IsBreak { get; } = isBreak;
    }

    private abstract class Node
    {
        public abstract void Render(Scope scope, StringBuilder output);
    }

    private sealed class TextNode(string text) : Node
    {
        public override void Render(Scope scope, StringBuilder output) => output.Append(text);
    }

    private sealed class OutputNode(JinjaExpression expression, int line) : Node
    {
        public override void Render(Scope scope, StringBuilder output)
        {
            try
            {
                output.Append(JinjaValues.Str(expression.Evaluate(scope)));
            }
            catch (ChatTemplateException e) when (!e.Message.StartsWith("line ", StringComparison.Ordinal))
            {
                throw new ChatTemplateException($"line {line}: {e.Message}");
            }
        }
    }

    private sealed class IfNode(List<(JinjaExpression? Condition, List<Node> Body)> branches) : Node
    {
        public override void Render(Scope scope, StringBuilder output)
        {
            foreach (var (condition, body) in branches)
            {
                if (condition is not null && !JinjaValues.Truthy(condition.Evaluate(scope))) continue;
                foreach (var node in body) node.Render(scope, output);
                return;
            }
        }
    }

    private sealed class SetNode(string target, JinjaExpression value, int line) : Node
    {
        public override void Render(Scope scope, StringBuilder output)
        {
            var v = value.Evaluate(scope);
            int dot = target.IndexOf('.');
            if (dot < 0) { scope.Set(target, v); return; }
            if (scope.Get(target[..dot]) is not JinjaNamespace ns)
                throw new ChatTemplateException($"line {line}: '{target[..dot]}' is not a namespace; only namespace attributes can be set");
            ns[target[(dot + 1)..]] = v;
        }
    }

    private sealed class LoopControlNode(bool isBreak) : Node
    {
        public override void Render(Scope scope, StringBuilder output) => throw new LoopSignal(isBreak);
    }

    private sealed class ForNode(string[] targets, JinjaExpression iterable, JinjaExpression? filter, List<Node> body, List<Node>? otherwise, int line) : Node
    {
        public override void Render(Scope scope, StringBuilder output)
        {
            var items = JinjaBuiltins.Iterate(iterable.Evaluate(scope), line).ToList();
            if (filter is not null)
                items = items.Where(item => { var s = new Scope(scope); Bind(s, item); return JinjaValues.Truthy(filter.Evaluate(s)); }).ToList();
            if (items.Count == 0)
            {
                foreach (var node in otherwise ?? []) node.Render(scope, output);
                return;
            }
            for (int i = 0; i < items.Count; i++)
            {
                // Each iteration has its own scope: a plain `set` inside a loop does not leak out (Jinja's rule).
                var inner = new Scope(scope);
                Bind(inner, items[i]);
                inner.Set("loop", new Dictionary<string, object?>(StringComparer.Ordinal)
                {
                    ["index0"] = (long)i, ["index"] = (long)i + 1, ["first"] = i == 0, ["last"] = i == items.Count - 1,
                    ["length"] = (long)items.Count, ["revindex"] = (long)(items.Count - i), ["revindex0"] = (long)(items.Count - i - 1),
                    ["previtem"] = i > 0 ? items[i - 1] : Undefined.Value, ["nextitem"] = i + 1 < items.Count ? items[i + 1] : Undefined.Value,
                });
                try
                {
                    foreach (var node in body) node.Render(inner, output);
                }
                catch (LoopSignal signal)
                {
                    if (signal.IsBreak) break;
                }
            }
        }

        private void Bind(Scope s, object? item)
        {
            if (targets.Length == 1) { s.Set(targets[0], item); return; }
            if (item is not List<object?> tuple || tuple.Count != targets.Length)
                throw new ChatTemplateException($"line {line}: cannot unpack {JinjaValues.Repr(item)} into {targets.Length} names");
            for (int k = 0; k < targets.Length; k++) s.Set(targets[k], tuple[k]);
        }
    }
}
