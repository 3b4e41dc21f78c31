using Forgetless.Model.Safetensors;
using static TorchSharp.torch;

namespace Forgetless.Training.Terms;

/// <summary>
/// What a term leaves beside an adapter for a later run (EWC's Fisher and anchors, SI's importance and anchors): one
/// safetensors file of named groups of per-parameter tensors, keyed <c>GROUP/PARAMETER</c>, with the term's name as
/// <c>kind</c> metadata.
/// </summary>
public static class TermStateFile
{
    public static void Save(string path, string kind, IReadOnlyDictionary<string, IReadOnlyDictionary<string, Tensor>> groups)
    {
        var all = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (group, tensors) in groups)
            foreach (var (name, t) in tensors) all[group + "/" + name] = t;
        SafetensorsWriter.Write(path, all, SafetensorsDType.Keep, new Dictionary<string, string> { ["kind"] = kind });
    }

    /// <summary>The groups of a saved file (the caller owns the tensors); a group the file lacks is empty.</summary>
    public static Dictionary<string, Dictionary<string, Tensor>> Load(string path, params string[] groups)
    {
        var tensors = SafetensorsFile.Open(path).ReadAll();
        var result = groups.ToDictionary(g => g, _ => new Dictionary<string, Tensor>(StringComparer.Ordinal), StringComparer.Ordinal);
        foreach (var (key, t) in tensors)
        {
            int slash = key.IndexOf('/');
            if (slash > 0 && result.TryGetValue(key[..slash], out var group)) group[key[(slash + 1)..]] = t;
            else t.Dispose();
        }
        return result;
    }
}
