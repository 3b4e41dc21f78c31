using System.Text.Json;
using System.Text.Json.Nodes;
using Forgetless.Runs;

namespace Forgetless.Packaging;

/// <summary>
/// The weights an evaluation judged, written by the evaluate stage beside its verdicts (<c>judged-weights.json</c>):
/// the digest of every file of the candidate adapter and of the base model. The package stage packages an adapter
/// only when its bytes are these (<see cref="AdapterPackager"/>), so a "passed" verdict can never travel with other
/// weights; the package's provenance carries the same digests for <c>verify</c>.
/// </summary>
public sealed record JudgedWeights(FolderDigest Adapter, FolderDigest BaseModel)
{
    public const string FileName = "judged-weights.json";
    public const string Format = "forgetless.judged-weights/1";

    public static JudgedWeights Of(string adapterFolder, string baseModelFolder) => new(FolderDigest.Of(adapterFolder), FolderDigest.Of(baseModelFolder));

    public void Write(string folder) => AtomicFile.WriteAllText(Path.Combine(folder, FileName), SortedJson.Serialize(new JsonObject
    {
        ["format"] = Format,
        ["adapter"] = Adapter.ToJson(),
        ["base_model"] = BaseModel.ToJson(),
    }));

    /// <summary>The record in an evaluate output folder; null when there is none (an evaluation from before weights were bound).</summary>
    public static JudgedWeights? Read(string evaluateOutput)
    {
        string path = Path.Combine(evaluateOutput, FileName);
        if (!File.Exists(path)) return null;
        JsonObject json;
        try
        {
            json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new PackageException($"{path}: expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new PackageException($"{path}: not valid JSON ({e.Message})");
        }
        if (json["format"]?.GetValue<string>() != Format) throw new PackageException($"{path}: format '{json["format"]}', expected '{Format}'");
        return new JudgedWeights(FolderDigest.FromJson(json["adapter"], path + " adapter"), FolderDigest.FromJson(json["base_model"], path + " base_model"));
    }
}
