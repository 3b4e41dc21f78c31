using System.Text.Json;
using System.Text.Json.Nodes;

namespace Forgetless.Model;

/// <summary>The parts of HF <c>generation_config.json</c> the generator uses; <see cref="Raw"/> is saved back as is.</summary>
public sealed record GenerationConfig
{
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int? PadTokenId { get; init; }
    public int? MaxNewTokens { get; init; }
    public bool? DoSample { get; init; }
    public double? Temperature { get; init; }
    public double? TopP { get; init; }
    public JsonObject? Raw { get; init; }

    public static GenerationConfig FromJson(string json, string source = "generation_config.json")
    {
        try
        {
            var o = JsonNode.Parse(json) as JsonObject ?? throw new InvalidDataException($"{source}: expected a JSON object");
            int? Int(string k) => o[k] is JsonValue v ? (int)v.GetValue<double>() : null;
            double? Num(string k) => o[k] is JsonValue v ? v.GetValue<double>() : null;
            return new GenerationConfig
            {
                BosTokenId = Int("bos_token_id"),
                EosTokenIds = o["eos_token_id"] switch
                {
                    JsonArray a => a.Select(n => (int)n!.GetValue<double>()).ToArray(),
                    JsonValue v => [(int)v.GetValue<double>()],
                    _ => [],
                },
                PadTokenId = Int("pad_token_id"),
                MaxNewTokens = Int("max_new_tokens"),
                DoSample = o["do_sample"] is JsonValue d ? d.GetValue<bool>() : null,
                Temperature = Num("temperature"),
                TopP = Num("top_p"),
                Raw = o,
            };
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{source}: {e.Message}", e);
        }
    }

    public string ToJson() => (Raw ?? new JsonObject
    {
        ["bos_token_id"] = BosTokenId,
        ["eos_token_id"] = EosTokenIds.Count == 1 ? EosTokenIds[0] : new JsonArray(EosTokenIds.Select(i => (JsonNode)i).ToArray()),
        ["pad_token_id"] = PadTokenId,
    }).ToJsonString(new JsonSerializerOptions { WriteIndented = true });
}
