using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Configuration;

namespace Forgetless.Configuration;

/// <summary>
/// The pipeline file (forgetless.json) with environment and command-line overrides applied,
/// checked against the options types of every section. Later sources win:
/// file, then <c>FORGETLESS_section__key</c> environment variables, then <c>--set section.key=value</c>.
/// </summary>
public sealed class PipelineConfig
{
    public const string DefaultFileName = "forgetless.json";
    public const string EnvironmentPrefix = "FORGETLESS_";

    private readonly IConfigurationRoot configuration;
    private readonly IReadOnlyDictionary<string, Type> sections;

    private PipelineConfig(string path, IConfigurationRoot configuration, IReadOnlyDictionary<string, Type> sections)
    {
        FilePath = path;
        this.configuration = configuration;
        this.sections = sections;
    }

    /// <summary>Full path of the pipeline file; relative paths inside it are relative to its folder.</summary>
    public string FilePath { get; }

    public string BaseDirectory => Path.GetDirectoryName(FilePath)!;

    /// <summary>Loads and checks the configuration. Throws <see cref="ConfigException"/> listing every problem found.</summary>
    public static PipelineConfig Load(string path, IReadOnlyDictionary<string, Type> sections,
        IEnumerable<KeyValuePair<string, string?>>? overrides = null, bool useEnvironment = true)
    {
        string full = Path.GetFullPath(path);
        if (!File.Exists(full))
            throw new ConfigException($"{path}: pipeline file not found (pass --config PATH, or run from the repository root where {DefaultFileName} lives)");

        var builder = new ConfigurationBuilder().AddJsonFile(full, optional: false, reloadOnChange: false);
        if (useEnvironment) builder.AddEnvironmentVariables(EnvironmentPrefix);
        if (overrides is not null) builder.AddInMemoryCollection(overrides);

        IConfigurationRoot root;
        try
        {
            root = builder.Build();
        }
        catch (Exception e) when (e is FormatException or InvalidDataException)
        {
            var json = Causes(e).OfType<JsonException>().FirstOrDefault();
            string where = json?.LineNumber is { } line ? $":{line + 1}:{json.BytePositionInLine + 1}" : "";
            throw new ConfigException($"{path}{where}: not valid JSON — {(json ?? e).Message}");
        }

        static IEnumerable<Exception> Causes(Exception e)
        {
            for (Exception? c = e; c is not null; c = c.InnerException) yield return c;
        }

        var config = new PipelineConfig(full, root, sections);
        config.CheckShape(Path.GetFileName(path));
        return config;
    }

    /// <summary>
    /// A configuration made only of <c>section.key=value</c> settings (no file), checked like a pipeline file: for code
    /// that builds a stage's options from settings, such as the benchmark's cases. Paths resolve against
    /// <paramref name="baseDirectory"/>.
    /// </summary>
    public static PipelineConfig FromSettings(IEnumerable<string> settings, IReadOnlyDictionary<string, Type> sections, string baseDirectory)
    {
        var root = new ConfigurationBuilder().AddInMemoryCollection(ParseOverrides(settings)).Build();
        var config = new PipelineConfig(Path.Combine(Path.GetFullPath(baseDirectory), "(settings)"), root, sections);
        config.CheckShape("settings");
        return config;
    }

    private void CheckShape(string source)
    {
        var errors = new List<string>();
        foreach (var child in configuration.GetChildren())
        {
            if (child.Key.StartsWith('$')) continue; // "$schema", "$comment"
            if (!sections.TryGetValue(child.Key, out var type))
            {
                string? guess = NearestName.Find(child.Key, sections.Keys);
                errors.Add($"{source}: unknown section '{child.Key}'" +
                           (guess is not null ? $" — did you mean '{guess}'?" : $"; valid sections: {string.Join(", ", sections.Keys)}"));
                continue;
            }
            ConfigShape.Check(child, type, child.Key, source, errors);
        }
        if (errors.Count > 0) throw new ConfigException(string.Join(Environment.NewLine, errors));
    }

    /// <summary>Binds one section to its options type and runs the type's own validation.</summary>
    public T Section<T>(string name) where T : class, new()
    {
        if (!sections.TryGetValue(name, out var type) || type != typeof(T))
            throw new InvalidOperationException($"Section '{name}' is not registered as {typeof(T).Name}.");
        var section = configuration.GetSection(name);
        var options = new T();
        ConfigShape.ClearConfiguredLists(options, section);
        section.Bind(options);
        if (options is IHasPluginSections holder)
            foreach (var plugin in holder.Plugins.Names)
            {
                var child = section.GetSection(plugin);
                var pluginOptions = holder.Plugins[plugin];
                ConfigShape.ClearConfiguredLists(pluginOptions, child);
                child.Bind(pluginOptions);
            }
        if (options is IValidatableOptions validatable)
        {
            var errors = validatable.Validate().Select(e => $"{Path.GetFileName(FilePath)}: {name}.{e}").ToList();
            if (errors.Count > 0) throw new ConfigException(string.Join(Environment.NewLine, errors));
        }
        return options;
    }

    /// <summary>Resolves a path from the pipeline file against the file's folder.</summary>
    public string ResolvePath(string path) => Path.GetFullPath(path, BaseDirectory);

    /// <summary>Canonical JSON of bound options: what a stage fingerprints as its config input.</summary>
    public static string Canonical(object options) => JsonSerializer.Serialize(options, options.GetType(), CanonicalJson);

    private static readonly JsonSerializerOptions CanonicalJson = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        WriteIndented = false,
    };

    /// <summary>
    /// Turns <c>section.key=value</c> pairs from the command line into configuration keys. A value
    /// written as <c>[a,b]</c> becomes a list.
    /// </summary>
    public static IEnumerable<KeyValuePair<string, string?>> ParseOverrides(IEnumerable<string> assignments)
    {
        foreach (var assignment in assignments)
        {
            int eq = assignment.IndexOf('=');
            if (eq <= 0) throw new ConfigException($"--set '{assignment}': expected section.key=value");
            string key = assignment[..eq].Trim().Replace('.', ':');
            string value = assignment[(eq + 1)..].Trim();
            if (value.StartsWith('[') && value.EndsWith(']'))
            {
                var items = value[1..^1].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                for (int i = 0; i < items.Length; i++) yield return new(key + ":" + i, items[i]);
            }
            else
            {
                yield return new(key, value);
            }
        }
    }
}
