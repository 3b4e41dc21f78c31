using System.Text;
using Forgetless.Data;
using Parquet.Serialization;

namespace Forgetless.Tests.Data;

/// <summary>A temp folder with input files, and helpers to run the engine and read what it wrote.</summary>
internal sealed class PrepareFixture : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("forgetless-prepare-").FullName;

    public string Write(string name, string content)
    {
        var path = Path.Combine(Root, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content, new UTF8Encoding(false));
        return path;
    }

    public string WriteBytes(string name, byte[] content)
    {
        var path = Path.Combine(Root, name);
        File.WriteAllBytes(path, content);
        return path;
    }

    public string WriteLines(string name, IEnumerable<string> lines) => Write(name, string.Join("\n", lines) + "\n");

    public static PrepareOptions Options(params DataSourceOptions[] tasks) => new()
    {
        TaskSources = [.. tasks],
        ReplayShare = 0,
        SeqLen = 64,
        ValidationFraction = 0,
        Decontaminate = new DecontaminationOptions(),
    };

    public static DataSourceOptions Source(string path, double weight = 1) => new() { Path = path, Weight = weight };

    public static DataSourceOptions Instruction(string path) => new() { Path = path, PromptField = "prompt", ResponseField = "response" };

    public async Task<(PrepareStats Stats, string Output)> RunAsync(PrepareOptions options, string outputName = "out",
        IReplayTextGenerator? generator = null, bool withBos = false, Forgetless.Data.ChatTemplates.ChatRenderer? chat = null)
    {
        var output = Path.Combine(Root, outputName);
        var engine = new PrepareEngine(options, new CharTokenizer(withBos), "tokenizer-hash", generator, chat: chat);
        var stats = await engine.RunAsync(Root, output, Path.Combine(Root, "work-" + outputName), CancellationToken.None);
        return (stats, output);
    }

    public static async Task<IList<PreparedSequence>> ReadAsync(string file) =>
        (await ParquetSerializer.DeserializeAsync<PreparedSequence>(file)).Data;

    public static Task<IList<PreparedSequence>> ReadTrainAsync(string output) => ReadAsync(Path.Combine(output, PreparedDataset.TrainFileName));

    public static Task<IList<PreparedSequence>> ReadValidationAsync(string output) => ReadAsync(Path.Combine(output, PreparedDataset.ValidationFileName));

    /// <summary>Words from a fixed vocabulary, seeded, so tests get varied yet reproducible text.</summary>
    public static string Words(Random random, int count)
    {
        string[] vocabulary = ["alpha", "beta", "gamma", "delta", "river", "stone", "light", "north", "cable", "maple", "orbit", "quiet", "sand", "tide", "wolf", "ember"];
        return string.Join(' ', Enumerable.Range(0, count).Select(_ => vocabulary[random.Next(vocabulary.Length)]));
    }

    public static string Json(IReadOnlyDictionary<string, object?> fields) => System.Text.Json.JsonSerializer.Serialize(fields);

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}
