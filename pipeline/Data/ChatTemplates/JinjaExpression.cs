using static Forgetless.Data.ChatTemplates.JinjaTemplate;

namespace Forgetless.Data.ChatTemplates;

/// <summary>
/// An expression of the template language, parsed by precedence climbing as Jinja parses it (lowest first):
/// <c>x if c else y</c>, <c>or</c>, <c>and</c>, <c>not</c>, comparisons with <c>in</c>/<c>not in</c>/<c>is [not]</c>,
/// <c>~</c>, <c>+ -</c>, <c>* / // %</c>, unary <c>-</c>, then a primary with its postfixes (<c>.name</c>,
/// <c>[index or slice]</c>, <c>(call)</c>) and filters (<c>| name(args)</c>), which bind tighter than any operator.
/// </summary>
internal sealed class JinjaExpression
{
    private readonly Func<Scope, object?> evaluate;

    private JinjaExpression(Func<Scope, object?> evaluate) => this.evaluate = evaluate;

    public object? Evaluate(Scope scope) => evaluate(scope);

    public static JinjaExpression Parse(string text, int line)
    {
        var parser = new Parser(JinjaTokens.Of(text, line), line, text);
        var e = parser.Conditional();
        parser.Expect(JinjaTokenKind.End, "");
        return new JinjaExpression(e);
    }

    private sealed class Parser(List<JinjaToken> tokens, int line, string text)
    {
        private int at;

        private JinjaToken Peek => tokens[at];
        private bool IsOp(string op) => Peek.Kind == JinjaTokenKind.Operator && Peek.Text == op;
        private bool IsName(string name) => Peek.Kind == JinjaTokenKind.Name && Peek.Text == name;

        private ChatTemplateException Error(string what) => new($"line {line}: {what} in '{text.Trim()}'");

        public JinjaToken Expect(JinjaTokenKind kind, string value)
        {
            var t = Peek;
            if (t.Kind != kind || (value.Length > 0 && t.Text != value))
                throw Error($"expected {(value.Length > 0 ? $"'{value}'" : kind == JinjaTokenKind.End ? "the end of the expression" : kind.ToString())}, found '{t.Text}'");
            at++;
            return t;
        }

        public Func<Scope, object?> Conditional()
        {
            var value = Or();
            if (!IsName("if")) return value;
            at++;
            var condition = Or();
            Func<Scope, object?> otherwise = _ => Undefined.Value;
            if (IsName("else")) { at++; otherwise = Conditional(); }
            return s => JinjaValues.Truthy(condition(s)) ? value(s) : otherwise(s);
        }

        private Func<Scope, object?> Or()
        {
            var left = And();
            while (IsName("or")) { at++; var l = left; var r = And(); left = s => l(s) is var v && JinjaValues.Truthy(v) ? v : r(s); }
            return left;
        }

        private Func<Scope, object?> And()
        {
            var left = Not();
            while (IsName("and")) { at++; var l = left; var r = Not(); left = s => l(s) is var v && !JinjaValues.Truthy(v) ? v : r(s); }
            return left;
        }

        private Func<Scope, object?> Not()
        {
            if (!IsName("not")) return Comparison();
            at++;
            var operand = Not();
            return s => !JinjaValues.Truthy(operand(s));
        }

        private Func<Scope, object?> Comparison()
        {
            var left = Concat();
            while (true)
            {
                if (Peek.Kind == JinjaTokenKind.Operator && Peek.Text is "==" or "!=" or "<" or ">" or "<=" or ">=")
                {
                    var op = tokens[at++].Text;
                    var l = left;
                    var r = Concat();
                    left = s => JinjaBuiltins.Compare(op, l(s), r(s));
                }
                else if (IsName("in") || (IsName("not") && tokens[at + 1] is { Kind: JinjaTokenKind.Name, Text: "in" }))
                {
                    bool negate = IsName("not");
                    at += negate ? 2 : 1;
                    var l = left;
                    var r = Concat();
                    left = s => JinjaBuiltins.Contains(r(s), l(s)) != negate;
                }
                else if (IsName("is"))
                {
                    at++;
                    bool negate = IsName("not");
                    if (negate) at++;
                    var test = Expect(JinjaTokenKind.Name, "").Text;
                    var args = new List<Func<Scope, object?>>();
                    if (IsOp("(")) args = Arguments().Positional;
                    else if (Peek.Kind is JinjaTokenKind.String or JinjaTokenKind.Number || (Peek.Kind == JinjaTokenKind.Name && Peek.Text is not ("and" or "or" or "else" or "if")))
                        args.Add(Primary());
                    var l = left;
                    left = s => JinjaBuiltins.Test(test, l(s), args.Select(a => a(s)).ToList(), line) != negate;
                }
                else return left;
            }
        }

        private Func<Scope, object?> Concat()
        {
            var left = Additive();
            while (IsOp("~")) { at++; var l = left; var r = Additive(); left = s => JinjaValues.Str(l(s)) + JinjaValues.Str(r(s)); }
            return left;
        }

        private Func<Scope, object?> Additive()
        {
            var left = Multiplicative();
            while (IsOp("+") || IsOp("-"))
            {
                var op = tokens[at++].Text;
                var l = left;
                var r = Multiplicative();
                left = s => JinjaBuiltins.Arithmetic(op, l(s), r(s), line);
            }
            return left;
        }

        private Func<Scope, object?> Multiplicative()
        {
            var left = Unary();
            while (Peek.Kind == JinjaTokenKind.Operator && Peek.Text is "*" or "/" or "//" or "%")
            {
                var op = tokens[at++].Text;
                var l = left;
                var r = Unary();
                left = s => JinjaBuiltins.Arithmetic(op, l(s), r(s), line);
            }
            return left;
        }

        private Func<Scope, object?> Unary()
        {
            if (IsOp("-")) { at++; var operand = Unary(); return s => JinjaBuiltins.Arithmetic("-", 0L, operand(s), line); }
            if (IsOp("+")) { at++; return Unary(); }
            return Filtered();
        }

        private Func<Scope, object?> Filtered()
        {
            var value = Postfix(Primary());
            while (IsOp("|"))
            {
                at++;
                var name = Expect(JinjaTokenKind.Name, "").Text;
                var (args, kwargs) = IsOp("(") ? Arguments() : ([], []);
                var v = value;
                value = s => JinjaBuiltins.Filter(name, v(s), args.Select(a => a(s)).ToList(),
                    kwargs.ToDictionary(k => k.Key, k => k.Value(s), StringComparer.Ordinal), line);
                value = Postfix(value);
            }
            return value;
        }

        private Func<Scope, object?> Postfix(Func<Scope, object?> value)
        {
            while (true)
            {
                if (IsOp("."))
                {
                    at++;
                    var name = Expect(JinjaTokenKind.Name, "").Text;
                    var v = value;
                    if (IsOp("("))
                    {
                        var (args, kwargs) = Arguments();
                        value = s => JinjaBuiltins.CallMethod(v(s), name, args.Select(a => a(s)).ToList(), line);
                    }
                    else value = s => JinjaBuiltins.Attribute(v(s), name, line);
                }
                else if (IsOp("["))
                {
                    at++;
                    var v = value;
                    Func<Scope, object?>? start = null, stop = null, step = null;
                    bool slice = false;
                    if (!IsOp(":")) start = Conditional();
                    if (IsOp(":"))
                    {
                        slice = true;
                        at++;
                        if (!IsOp("]") && !IsOp(":")) stop = Conditional();
                        if (IsOp(":")) { at++; if (!IsOp("]")) step = Conditional(); }
                    }
                    Expect(JinjaTokenKind.Operator, "]");
                    value = slice
                        ? s => JinjaBuiltins.Slice(v(s), start?.Invoke(s), stop?.Invoke(s), step?.Invoke(s), line)
                        : s => JinjaBuiltins.Item(v(s), start!(s), line);
                }
                else if (IsOp("("))
                {
                    var v = value;
                    var (args, kwargs) = Arguments();
                    value = s => v(s) is JinjaFunction f
                        ? f(args.Select(a => a(s)).ToList(), kwargs.ToDictionary(k => k.Key, k => k.Value(s), StringComparer.Ordinal))
                        : throw new ChatTemplateException($"line {line}: {JinjaValues.Repr(v(s))} is not callable");
                }
                else return value;
            }
        }

        private (List<Func<Scope, object?>> Positional, Dictionary<string, Func<Scope, object?>> Named) Arguments()
        {
            Expect(JinjaTokenKind.Operator, "(");
            var positional = new List<Func<Scope, object?>>();
            var named = new Dictionary<string, Func<Scope, object?>>(StringComparer.Ordinal);
            while (!IsOp(")"))
            {
                if (Peek.Kind == JinjaTokenKind.Name && tokens[at + 1] is { Kind: JinjaTokenKind.Operator, Text: "=" })
                {
                    var name = tokens[at].Text;
                    at += 2;
                    named[name] = Conditional();
                }
                else positional.Add(Conditional());
                if (!IsOp(",")) break;
                at++;
            }
            Expect(JinjaTokenKind.Operator, ")");
            return (positional, named);
        }

        private Func<Scope, object?> Primary()
        {
            var t = Peek;
            switch (t.Kind)
            {
                case JinjaTokenKind.String:
                    at++;
                    var text = (string)t.Value!;
                    // Adjacent literals concatenate, as in Python.
                    while (Peek.Kind == JinjaTokenKind.String) text += (string)tokens[at++].Value!;
                    return _ => text;
                case JinjaTokenKind.Number:
                    at++;
                    var number = t.Value;
                    return _ => number;
                case JinjaTokenKind.Name:
                    at++;
                    switch (t.Text)
                    {
                        case "true" or "True": return _ => true;
                        case "false" or "False": return _ => false;
                        case "none" or "None": return _ => null;
                    }
                    var name = t.Text;
                    return s => s.Get(name);
            }
            if (IsOp("("))
            {
                at++;
                var inner = Conditional();
                if (IsOp(","))
                {
                    var items = new List<Func<Scope, object?>> { inner };
                    while (IsOp(",")) { at++; if (IsOp(")")) break; items.Add(Conditional()); }
                    Expect(JinjaTokenKind.Operator, ")");
                    return s => items.Select(i => i(s)).ToList();
                }
                Expect(JinjaTokenKind.Operator, ")");
                return inner;
            }
            if (IsOp("["))
            {
                at++;
                var items = new List<Func<Scope, object?>>();
                while (!IsOp("]")) { items.Add(Conditional()); if (!IsOp(",")) break; at++; }
                Expect(JinjaTokenKind.Operator, "]");
                return s => items.Select(i => i(s)).ToList();
            }
            if (IsOp("{"))
            {
                at++;
                var entries = new List<(Func<Scope, object?> Key, Func<Scope, object?> Value)>();
                while (!IsOp("}"))
                {
                    var key = Conditional();
                    Expect(JinjaTokenKind.Operator, ":");
                    entries.Add((key, Conditional()));
                    if (!IsOp(",")) break;
                    at++;
                }
                Expect(JinjaTokenKind.Operator, "}");
                return s => entries.ToDictionary(e => JinjaValues.Str(e.Key(s)), e => e.Value(s), StringComparer.Ordinal);
            }
            throw Error($"unexpected '{t.Text}'");
        }
    }
}
