using Forgetless.Continual;
using Forgetless.Model;
using Forgetless.Model.Tokenizers;
using Forgetless.Runs;

namespace Forgetless.Peft;

/// <summary>
/// Several named adapters of one base model in PEFT's multi-adapter layout — one PEFT folder per adapter, named after
/// it (what <c>save_pretrained</c> writes for adapters other than "default"; <c>PeftModel.from_pretrained(base,
/// "SET/NAME", adapter_name="NAME")</c> or <c>load_adapter</c> loads each) — plus <c>router.json</c>, the centroids a
/// <see cref="TaskRouter"/> chooses an adapter by. Task isolation writes one; score and generate apply one of its
/// adapters by name (<c>--task NAME</c>) or by routing the input (<c>--task auto</c>).
/// </summary>
public static class AdapterSet
{
    public const string RouterFile = "router.json";

    /// <summary>A folder holds a set when it has no adapter of its own but subfolders that are adapters.</summary>
    public static bool IsSet(string folder) =>
        Directory.Exists(folder) && !File.Exists(Path.Combine(folder, AdapterFolder.ConfigFile)) && Names(folder).Count > 0;

    /// <summary>The adapters' names (subfolders with an adapter_config.json), sorted.</summary>
    public static IReadOnlyList<string> Names(string folder) =>
        Directory.EnumerateDirectories(folder).Where(d => File.Exists(Path.Combine(d, AdapterFolder.ConfigFile)))
            .Select(d => Path.GetFileName(d)!).Order(StringComparer.Ordinal).ToList();

    /// <summary>Copies each adapter folder into <paramref name="folder"/>/NAME and writes the router (files replaced atomically).</summary>
    public static void Write(string folder, IReadOnlyList<string> names, IReadOnlyList<string> adapters, TaskRouter router)
    {
        if (names.Count != adapters.Count) throw new ArgumentException("one adapter per name");
        foreach (var (name, adapter) in names.Zip(adapters))
        {
            var target = Path.Combine(folder, name);
            Directory.CreateDirectory(target);
            foreach (var file in Directory.EnumerateFiles(adapter))
                AtomicFile.WriteAllBytes(Path.Combine(target, Path.GetFileName(file)), File.ReadAllBytes(file));
        }
        OutputJson.Write(Path.Combine(folder, RouterFile), new RouterRecord(router.Tasks, router.Centroids));
    }

    /// <summary>The adapter folder for <paramref name="task"/>; <c>auto</c> routes <paramref name="input"/> by the set's router.</summary>
    public static string Choose(string folder, string task, CausalLM model, ITokenizer tokenizer, string? input)
    {
        var names = Names(folder);
        if (task == "auto")
        {
            if (input is null) throw new UserInputException($"{folder}: --task auto routes one input (generate's prompt); name the adapter with --task {string.Join("|", names)}");
            var path = Path.Combine(folder, RouterFile);
            if (!File.Exists(path)) throw new UserInputException($"{folder}: no {RouterFile} to route by; name the adapter with --task {string.Join("|", names)}");
            var record = OutputJson.Read<RouterRecord>(path);
            task = record.Tasks[new TaskRouter(record.Tasks, record.Centroids).Route(model, tokenizer, input)];
        }
        if (!names.Contains(task))
            throw new UserInputException($"{folder}: no adapter '{task}' in the set; it holds {string.Join(", ", names)}");
        return Path.Combine(folder, task);
    }

    /// <summary>router.json: task names and their unit centroids.</summary>
    public sealed record RouterRecord(IReadOnlyList<string> Tasks, IReadOnlyList<float[]> Centroids);
}
