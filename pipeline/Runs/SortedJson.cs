using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Forgetless.Runs;

/// <summary>
/// JSON with keys sorted at every level and two-space indentation, like Python's <c>json.dumps(sort_keys=True, indent=2)</c>
/// (how PEFT's save_pretrained writes adapter_config.json); deterministic, so files written this way hash the same.
/// </summary>
public static class SortedJson
{
    public static string Serialize(JsonNode node)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            Sorted(node).WriteTo(writer);
        return Encoding.UTF8.GetString(stream.ToArray()).Replace("\r\n", "\n") + "\n";
    }

    private static JsonNode Sorted(JsonNode node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => KeyValuePair.Create(p.Key, p.Value is null ? null : Sorted(p.Value)))),
        JsonArray a => new JsonArray(a.Select(e => e is null ? null : Sorted(e)).ToArray()),
        _ => node.DeepClone(),
    };
}
