using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Forgetless.Data.ChatTemplates;

/// <summary>A name that is not defined (Jinja's Undefined): falsy, renders as nothing, <c>is defined</c> is false.</summary>
internal sealed class Undefined
{
    public static readonly Undefined Value = new();
    private Undefined() { }
}

/// <summary>Jinja's <c>namespace()</c>: a mutable bag whose attributes survive the scope of a loop.</summary>
internal sealed class JinjaNamespace : Dictionary<string, object?>
{
    public JinjaNamespace() : base(StringComparer.Ordinal) { }
}

/// <summary>A function a template may call (<c>raise_exception</c>, <c>namespace</c>, <c>range</c>).</summary>
internal delegate object? JinjaFunction(IReadOnlyList<object?> args, IReadOnlyDictionary<string, object?> kwargs);

/// <summary>
/// Values as the templates see them, with Python's rules: None, bool, long, double, string, lists
/// (<see cref="List{T}"/> of object?), mappings (ordered <see cref="Dictionary{TKey,TValue}"/> of string to object?).
/// </summary>
internal static class JinjaValues
{
    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        System.Collections.ICollection c => c.Count > 0,
        _ => true,
    };

    /// <summary>Python's str() of a value, as <c>{{ }}</c> prints it.</summary>
    public static string Str(object? v) => v switch
    {
        null => "None",
        Undefined => "",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => PythonFloat(d),
        string s => s,
        _ => Repr(v),
    };

    /// <summary>Python's repr(): lists and dicts print their items this way.</summary>
    public static string Repr(object? v) => v switch
    {
        string s => "'" + s.Replace("\\", "\\\\").Replace("'", "\\'").Replace("\n", "\\n") + "'",
        List<object?> list => "[" + string.Join(", ", list.Select(Repr)) + "]",
        Dictionary<string, object?> map => "{" + string.Join(", ", map.Select(kv => Repr(kv.Key) + ": " + Repr(kv.Value))) + "}",
        _ => Str(v),
    };

    private static string PythonFloat(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        var s = d.ToString("R", CultureInfo.InvariantCulture);
        return s.Contains('.') || s.Contains('E') ? s.Replace("E", "e") : s + ".0";
    }

    public static bool AreEqual(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (Undefined, Undefined) => true,
        (long x, long y) => x == y,
        (long x, double y) => x == y,
        (double x, long y) => x == y,
        (double x, double y) => x == y,
        (bool x, bool y) => x == y,
        (string x, string y) => string.Equals(x, y, StringComparison.Ordinal),
        (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => AreEqual(p.First, p.Second)),
        (Dictionary<string, object?> x, Dictionary<string, object?> y) =>
            x.Count == y.Count && x.All(kv => y.TryGetValue(kv.Key, out var o) && AreEqual(kv.Value, o)),
        _ => ReferenceEquals(a, b),
    };

    /// <summary>A JSON value (a message, a tool) as template data.</summary>
    public static object? FromJson(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => e.EnumerateObject().Aggregate(new Dictionary<string, object?>(StringComparer.Ordinal), (d, p) => { d[p.Name] = FromJson(p.Value); return d; }),
        JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out var l) ? l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    /// <summary>
    /// transformers' <c>tojson</c> filter: Python's json.dumps(ensure_ascii=False) — separators ", " and ": ", or with
    /// <paramref name="indent"/> newlines and that many spaces per level.
    /// </summary>
    public static string ToJson(object? v, int? indent)
    {
        var sb = new StringBuilder();
        Write(v, 0);
        return sb.ToString();

        void Write(object? value, int depth)
        {
            switch (value)
            {
                case null or Undefined: sb.Append("null"); break;
                case bool b: sb.Append(b ? "true" : "false"); break;
                case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
                case double d: sb.Append(PythonFloat(d) switch { "nan" => "NaN", "inf" => "Infinity", "-inf" => "-Infinity", var s => s }); break;
                case string s: sb.Append(JsonSerializer.Serialize(s, new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping })); break;
                case List<object?> list: Container('[', ']', list.Count, k => Write(list[k], depth + 1)); break;
                case Dictionary<string, object?> map:
                    var entries = map.ToList();
                    Container('{', '}', entries.Count, k =>
                    {
                        Write(entries[k].Key, depth + 1);
                        sb.Append(": ");
                        Write(entries[k].Value, depth + 1);
                    });
                    break;
                default: throw new ChatTemplateException($"tojson: cannot serialise a {value.GetType().Name}");
            }

            void Container(char open, char close, int count, Action<int> item)
            {
                sb.Append(open);
                if (count == 0) { sb.Append(close); return; }
                for (int k = 0; k < count; k++)
                {
                    if (indent is { } n) sb.Append('\n').Append(' ', n * (depth + 1));
                    item(k);
                    if (k + 1 < count) sb.Append(indent is null ? ", " : ",");
                }
                if (indent is { } m) sb.Append('\n').Append(' ', m * depth);
                sb.Append(close);
            }
        }
    }
}
