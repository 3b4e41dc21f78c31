using System.Globalization;

namespace Forgetless.Data.ChatTemplates;

/// <summary>
/// The functions, filters, tests, methods and operators of the Jinja subset, with Python's semantics (what the chat
/// templates are written against). transformers adds <c>raise_exception</c>; <c>strftime_now</c> is left out on
/// purpose, so a template that would print today's date falls back to its fixed one and prepared data stays reproducible.
/// </summary>
internal static class JinjaBuiltins
{
    public static IReadOnlyDictionary<string, object?> Globals { get; } = new Dictionary<string, object?>(StringComparer.Ordinal)
    {
        ["raise_exception"] = (JinjaFunction)((args, _) =>
            throw new ChatTemplateException("the template refused the conversation: " + (args.Count > 0 ? JinjaValues.Str(args[0]) : ""))),
        ["namespace"] = (JinjaFunction)((_, kwargs) =>
        {
            var ns = new JinjaNamespace();
            foreach (var (k, v) in kwargs) ns[k] = v;
            return ns;
        }),
        ["range"] = (JinjaFunction)((args, _) =>
        {
            long start = 0, stop, step = 1;
            if (args.Count == 1) stop = Long(args[0]);
            else { start = Long(args[0]); stop = Long(args[1]); if (args.Count > 2) step = Long(args[2]); }
            var list = new List<object?>();
            for (long i = start; step > 0 ? i < stop : i > stop; i += step) list.Add(i);
            return list;
        }),
    };

    public static IEnumerable<object?> Iterate(object? value, int line) => value switch
    {
        List<object?> list => list,
        Dictionary<string, object?> map => map.Keys,
        string s => s.Select(c => (object?)c.ToString()),
        null or Undefined => throw new ChatTemplateException($"line {line}: cannot loop over {(value is null ? "none" : "an undefined value")}"),
        _ => throw new ChatTemplateException($"line {line}: cannot loop over {JinjaValues.Repr(value)}"),
    };

    public static bool Compare(string op, object? a, object? b)
    {
        if (op == "==") return JinjaValues.AreEqual(a, b);
        if (op == "!=") return !JinjaValues.AreEqual(a, b);
        int c = (a, b) switch
        {
            (string x, string y) => string.CompareOrdinal(x, y),
            _ when IsNumber(a) && IsNumber(b) => Double(a).CompareTo(Double(b)),
            _ => throw new ChatTemplateException($"cannot compare {JinjaValues.Repr(a)} and {JinjaValues.Repr(b)} with '{op}'"),
        };
        return op switch { "<" => c < 0, ">" => c > 0, "<=" => c <= 0, _ => c >= 0 };
    }

    public static bool Contains(object? container, object? item) => container switch
    {
        string s => item is string sub && s.Contains(sub, StringComparison.Ordinal),
        List<object?> list => list.Any(x => JinjaValues.AreEqual(x, item)),
        Dictionary<string, object?> map => item is string key && map.ContainsKey(key),
        null or Undefined => false,
        _ => throw new ChatTemplateException($"'in' needs a string, list or mapping, got {JinjaValues.Repr(container)}"),
    };

    public static bool Test(string name, object? v, IReadOnlyList<object?> args, int line) => name switch
    {
        "defined" => v is not Undefined,
        "undefined" => v is Undefined,
        "none" => v is null,
        "string" => v is string,
        "number" => v is long or double,
        "integer" => v is long,
        "float" => v is double,
        "boolean" => v is bool,
        "true" => v is true,
        "false" => v is false,
        "mapping" => v is Dictionary<string, object?>,
        "sequence" => v is string or List<object?> or Dictionary<string, object?>,
        "iterable" => v is string or List<object?> or Dictionary<string, object?>,
        "callable" => v is JinjaFunction,
        "equalto" or "eq" or "sameas" => JinjaValues.AreEqual(v, args.ElementAtOrDefault(0)),
        "ne" => !JinjaValues.AreEqual(v, args.ElementAtOrDefault(0)),
        "even" => Long(v) % 2 == 0,
        "odd" => Long(v) % 2 != 0,
        "in" => Contains(args.ElementAtOrDefault(0), v),
        _ => throw new ChatTemplateException($"line {line}: the test 'is {name}' is not supported by this Jinja subset"),
    };

    public static object? Arithmetic(string op, object? a, object? b, int line)
    {
        if (op == "+" && a is string x && b is string y) return x + y;
        if (op == "+" && a is List<object?> p && b is List<object?> q) return p.Concat(q).ToList();
        if (op == "*" && a is string r && b is long n) return string.Concat(Enumerable.Repeat(r, (int)Math.Max(0, n)));
        if (!IsNumber(a) || !IsNumber(b))
            throw new ChatTemplateException($"line {line}: unsupported operand types for {op}: {JinjaValues.Repr(a)} and {JinjaValues.Repr(b)}");
        if (a is long i && b is long j && op != "/")
            return op switch
            {
                "+" => i + j, "-" => i - j, "*" => i * j,
                "//" => (long)Math.Floor((double)i / j),
                "%" => ((i % j) + j) % j, // Python's modulo takes the divisor's sign
                _ => throw new ChatTemplateException($"line {line}: unknown operator {op}"),
            };
        double u = Double(a), w = Double(b);
        return op switch
        {
            "+" => u + w, "-" => u - w, "*" => u * w, "/" => u / w, "//" => Math.Floor(u / w),
            "%" => u - w * Math.Floor(u / w),
            _ => throw new ChatTemplateException($"line {line}: unknown operator {op}"),
        };
    }

    public static object? Attribute(object? v, string name, int line) => v switch
    {
        Dictionary<string, object?> map => map.TryGetValue(name, out var x) ? x : Undefined.Value,
        Undefined => throw new ChatTemplateException($"line {line}: '.{name}' of an undefined value"),
        null => throw new ChatTemplateException($"line {line}: '.{name}' of none"),
        _ => Undefined.Value,
    };

    public static object? Item(object? v, object? key, int line) => (v, key) switch
    {
        (Dictionary<string, object?> map, string k) => map.TryGetValue(k, out var x) ? x : Undefined.Value,
        (List<object?> list, long i) => i < -list.Count || i >= list.Count
            ? throw new ChatTemplateException($"line {line}: list index {i} out of range (length {list.Count})")
            : list[(int)(i < 0 ? list.Count + i : i)],
        (string s, long i) => i < -s.Length || i >= s.Length
            ? throw new ChatTemplateException($"line {line}: string index {i} out of range")
            : s[(int)(i < 0 ? s.Length + i : i)].ToString(),
        (Undefined, _) => throw new ChatTemplateException($"line {line}: '[{JinjaValues.Repr(key)}]' of an undefined value"),
        _ => Undefined.Value,
    };

    public static object? Slice(object? v, object? start, object? stop, object? step, int line)
    {
        int length = v switch { List<object?> l => l.Count, string s => s.Length, _ => throw new ChatTemplateException($"line {line}: cannot slice {JinjaValues.Repr(v)}") };
        long st = step is null ? 1 : Long(step);
        if (st != 1) throw new ChatTemplateException($"line {line}: slices with a step are not supported");
        int Clamp(object? bound, int fallback)
        {
            if (bound is null) return fallback;
            long b = Long(bound);
            if (b < 0) b += length;
            return (int)Math.Clamp(b, 0, length);
        }
        int from = Clamp(start, 0), to = Math.Max(from, Clamp(stop, length));
        return v is string str ? str[from..to] : ((List<object?>)v!).GetRange(from, to - from);
    }

    public static object? CallMethod(object? v, string name, IReadOnlyList<object?> args, int line)
    {
        switch (v)
        {
            case string s:
                string? chars = args.Count > 0 ? args[0] as string : null;
                return name switch
                {
                    "strip" => chars is null ? s.Trim() : s.Trim(chars.ToCharArray()),
                    "lstrip" => chars is null ? s.TrimStart() : s.TrimStart(chars.ToCharArray()),
                    "rstrip" => chars is null ? s.TrimEnd() : s.TrimEnd(chars.ToCharArray()),
                    "upper" => s.ToUpperInvariant(),
                    "lower" => s.ToLowerInvariant(),
                    "title" => Title(s),
                    "capitalize" => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant(),
                    "startswith" => s.StartsWith((string)args[0]!, StringComparison.Ordinal),
                    "endswith" => s.EndsWith((string)args[0]!, StringComparison.Ordinal),
                    "replace" => s.Replace((string)args[0]!, (string)args[1]!, StringComparison.Ordinal),
                    "split" => (chars is null ? s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries) : s.Split(chars)).Select(p => (object?)p).ToList(),
                    _ => throw new ChatTemplateException($"line {line}: the string method '{name}' is not supported"),
                };
            case Dictionary<string, object?> map:
                return name switch
                {
                    "items" => map.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList(),
                    "keys" => map.Keys.Select(k => (object?)k).ToList(),
                    "values" => map.Values.ToList(),
                    "get" => map.TryGetValue((string)args[0]!, out var x) ? x : args.ElementAtOrDefault(1),
                    _ => throw new ChatTemplateException($"line {line}: the mapping method '{name}' is not supported"),
                };
            default:
                throw new ChatTemplateException($"line {line}: {JinjaValues.Repr(v)} has no method '{name}'");
        }
    }

    public static object? Filter(string name, object? v, IReadOnlyList<object?> args, IReadOnlyDictionary<string, object?> kwargs, int line)
    {
        switch (name)
        {
            case "trim": return JinjaValues.Str(v).Trim();
            case "string": return JinjaValues.Str(v);
            case "upper": return JinjaValues.Str(v).ToUpperInvariant();
            case "lower": return JinjaValues.Str(v).ToLowerInvariant();
            case "title": return Title(JinjaValues.Str(v));
            case "capitalize": return CallMethod(JinjaValues.Str(v), "capitalize", [], line);
            case "length" or "count":
                return v switch
                {
                    string s => (long)s.Length, List<object?> l => (long)l.Count, Dictionary<string, object?> m => (long)m.Count,
                    _ => throw new ChatTemplateException($"line {line}: {JinjaValues.Repr(v)} has no length"),
                };
            case "list": return Iterate(v, line).ToList();
            case "first": return Iterate(v, line).FirstOrDefault(Undefined.Value);
            case "last": return v is List<object?> { Count: > 0 } l1 ? l1[^1] : Undefined.Value;
            case "join": return string.Join(args.Count > 0 ? JinjaValues.Str(args[0]) : "", Iterate(v, line).Select(JinjaValues.Str));
            case "default" or "d": return v is Undefined || (args.Count > 1 && JinjaValues.Truthy(args[1]) && !JinjaValues.Truthy(v)) ? args.ElementAtOrDefault(0) : v;
            case "items": return v is Dictionary<string, object?> map ? CallMethod(map, "items", [], line) : throw new ChatTemplateException($"line {line}: items needs a mapping");
            case "tojson":
                var indent = kwargs.TryGetValue("indent", out var i) ? (int?)Long(i) : args.Count > 0 ? (int?)Long(args[0]) : null;
                return JinjaValues.ToJson(v, indent);
            case "int": return v is string s1 ? long.Parse(s1.Trim(), CultureInfo.InvariantCulture) : Long(v);
            case "replace": return JinjaValues.Str(v).Replace(JinjaValues.Str(args[0]), JinjaValues.Str(args[1]), StringComparison.Ordinal);
            case "select" or "reject":
                return Iterate(v, line).Where(x => (name == "select") == (args.Count == 0 ? JinjaValues.Truthy(x)
                    : Test(JinjaValues.Str(args[0]), x, args.Skip(1).ToList(), line))).ToList();
            case "selectattr" or "rejectattr":
                return Iterate(v, line).Where(x =>
                {
                    var attribute = Attribute(x, JinjaValues.Str(args[0]), line);
                    bool hit = args.Count == 1 ? JinjaValues.Truthy(attribute) : Test(JinjaValues.Str(args[1]), attribute, args.Skip(2).ToList(), line);
                    return hit == (name == "selectattr");
                }).ToList();
            case "map":
                if (kwargs.TryGetValue("attribute", out var attr)) return Iterate(v, line).Select(x => Attribute(x, JinjaValues.Str(attr), line)).ToList();
                return Iterate(v, line).Select(x => Filter(JinjaValues.Str(args[0]), x, args.Skip(1).ToList(), new Dictionary<string, object?>(), line)).ToList();
            default:
                throw new ChatTemplateException($"line {line}: the filter '{name}' is not supported by this Jinja subset");
        }
    }

    /// <summary>Python's str.title(): upper case after anything that is not a letter.</summary>
    private static string Title(string s)
    {
        var chars = s.ToCharArray();
        bool previousLetter = false;
        for (int i = 0; i < chars.Length; i++)
        {
            chars[i] = previousLetter ? char.ToLowerInvariant(chars[i]) : char.ToUpperInvariant(chars[i]);
            previousLetter = char.IsLetter(chars[i]);
        }
        return new string(chars);
    }

    private static bool IsNumber(object? v) => v is long or double or bool;

    private static double Double(object? v) => v switch { long l => l, double d => d, bool b => b ? 1 : 0, _ => double.NaN };

    private static long Long(object? v) => v switch
    {
        long l => l, double d => (long)d, bool b => b ? 1 : 0,
        _ => throw new ChatTemplateException($"expected a number, got {JinjaValues.Repr(v)}"),
    };
}
