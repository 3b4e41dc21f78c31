using System.Text.Json.Nodes;
using Forgetless.Continual;
using Forgetless.Model;
using Forgetless.Peft;
using Forgetless.Runs;

namespace Forgetless.Packaging;

/// <summary>
/// <c>forgetless verify</c> for an adapter-set package (<see cref="AdapterSetPackager"/>): the continual gates recorded
/// all passed and follow from their numbers, every adapter file is the one recorded and every file of an adapter folder
/// is recorded, the router is the one recorded, the statement names every file (and a signature holds); with a base
/// model, it is the one the strategy was scored on and every adapter applies to it.
/// </summary>
public static class AdapterSetVerifier
{
    public static void Verify(OpenedPackage package, JsonObject manifest, string? baseModel, System.Security.Cryptography.ECDsa? trusted, string? publicKey,
        List<string> problems, List<string> notes)
    {
        string folder = package.Folder;
        problems.AddRange(CheckGates(manifest));
        var adapters = manifest["adapters"] as JsonObject;
        if (adapters is null || adapters.Count == 0)
        {
            problems.Add($"{Provenance.FileName}: adapters is missing or empty");
            return;
        }
        var recorded = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (task, entry) in adapters)
        {
            foreach (var node in entry?["files"] as JsonArray ?? [])
            {
                FileDigest file;
                try
                {
                    file = FileDigest.FromJson(node, $"{Provenance.FileName} adapters.{task}.files");
                }
                catch (PackageException e)
                {
                    problems.Add(e.Message);
                    continue;
                }
                recorded.Add(file.Path);
                string full = Path.Combine(folder, file.Path);
                if (!File.Exists(full)) problems.Add($"{file.Path}: recorded in {Provenance.FileName} but missing");
                else if (FileHashes.Compute(full) != file.Sha256)
                    problems.Add($"{file.Path}: not the weights the package recorded and its gates judged (SHA-256 differs) — changed after packaging");
            }
            if (!Directory.Exists(Path.Combine(folder, task))) problems.Add($"{task}/: the adapter folder of task '{task}' is missing");
        }
        foreach (var file in Sha256Sums.Files(folder).Where(f => f.Contains('/') && !recorded.Contains(f)))
            problems.Add($"{file}: an adapter file that {Provenance.FileName} does not record (added after packaging?)");
        if (manifest["router"] is JsonObject router)
        {
            string path = Path.Combine(folder, AdapterSet.RouterFile);
            if (!File.Exists(path)) problems.Add($"{AdapterSet.RouterFile}: recorded in {Provenance.FileName} but missing");
            else if (FileHashes.Compute(path) != router["sha256"]?.ToString()) problems.Add($"{AdapterSet.RouterFile}: not the router the package recorded (SHA-256 differs)");
        }
        if (problems.Count == 0) notes.Add($"weights: the files of {adapters.Count} adapters ({string.Join(", ", adapters.Select(a => a.Key))}) are the ones recorded");
        problems.AddRange(PackageVerifier.CheckStatement(package, trusted, publicKey, notes));

        if (baseModel is null)
        {
            notes.Add("adapter shapes and base model not checked (pass --base DIR)");
            return;
        }
        problems.AddRange(PackageVerifier.CheckBaseFiles(manifest, baseModel, notes));
        foreach (var (task, _) in adapters)
        {
            try
            {
                using var model = ModelFolder.LoadModel(baseModel);
                string type = AdapterFolder.Apply(model, Path.Combine(folder, task));
                notes.Add($"adapter {task}: {type} applies to {baseModel} (every tensor name and shape fits)");
            }
            catch (Exception e) when (e is InvalidOperationException or UserInputException or InvalidDataException or FormatException or NotSupportedException
                                          or FileNotFoundException or DirectoryNotFoundException)
            {
                problems.Add($"adapter {task} does not fit the base model {baseModel}: {e.Message}");
            }
        }
    }

    /// <summary>Every recorded continual gate passed, its verdict follows from its judged number and threshold, and <c>passed</c> agrees.</summary>
    public static IReadOnlyList<string> CheckGates(JsonObject manifest)
    {
        var problems = new List<string>();
        var continual = manifest["continual"];
        var gates = continual?["gates"] as JsonArray ?? [];
        bool all = true;
        foreach (var gate in gates)
        {
            string name = gate?["name"]?.ToString() ?? "?";
            string kind = gate?["kind"]?.ToString() ?? "";
            double? judged = Number(gate?["judged"]), threshold = Number(gate?["threshold"]);
            bool? passed = gate?["passed"] is JsonValue v && v.TryGetValue<bool>(out bool p) ? p : null;
            if (kind is not ("min" or "max") || judged is null || threshold is null || passed is null)
            {
                problems.Add($"{Provenance.FileName}: continual gate '{name}' lacks kind (min|max), judged, threshold or passed");
                all = false;
                continue;
            }
            if (passed != ContinualGateVerdict.Holds(kind, judged.Value, threshold.Value))
                problems.Add($"{Provenance.FileName}: continual gate '{name}' is recorded as {(passed.Value ? "passed" : "failed")} but {judged} against {kind} {threshold} says otherwise");
            if (passed == false) problems.Add($"{Provenance.FileName}: continual gate '{name}' failed — a package must not hold a failed gate");
            all &= passed.Value;
        }
        if (continual?["passed"] is not JsonValue overall || !overall.TryGetValue<bool>(out bool ok) || ok != all)
            problems.Add($"{Provenance.FileName}: continual.passed does not agree with the gates it records");
        return problems;
    }

    private static double? Number(JsonNode? node) => node is JsonValue v && v.TryGetValue<double>(out double x) ? x : null;
}
