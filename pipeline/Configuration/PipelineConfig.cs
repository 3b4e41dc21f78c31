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
    /// <summary>Where each key's value came from (file and line, environment variable, --set).</summary>
    private readonly Dictionary<string, ConfigSetting> settings;

    private PipelineConfig(string path, Dictionary<string, ConfigSetting> settings, IReadOnlyDictionary<string, Type> sections)
    {
        FilePath = path;
        this.settings = settings;
        configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Values.Select(s => KeyValuePair.Create(s.Key, (string?)s.Value)))
            .Build();
        this.sections = sections;
    }

    /// <summary>Full path of the pipeline file; relative paths inside it are relative to its folder.</summary>
    public string FilePath { get; }

    public string BaseDirectory => Path.GetDirectoryName(FilePath)!;

    /// <summary>
    /// Loads and checks the configuration. Throws <see cref="ConfigException"/> listing every problem found, each
    /// prefixed with where the key was given (file and line, environment variable, or --set).
    /// </summary>
    /// <param name="environment">The environment variables to read (null: the process's), when <paramref name="useEnvironment"/>.</param>
    public static PipelineConfig Load(string path, IReadOnlyDictionary<string, Type> sections,
        IEnumerable<ConfigSetting>? overrides = null, bool useEnvironment = true,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        string full = Path.GetFullPath(path);
        if (!File.Exists(full))
            throw new ConfigException($"{path}: pipeline file not found (pass --config PATH, or run from the repository root where {DefaultFileName} lives)");

        var layers = new List<IReadOnlyList<ConfigSetting>> { JsonSettingsReader.Read(File.ReadAllBytes(full), Path.GetFileName(path)) };
        if (useEnvironment) layers.Add(ConfigLayers.FromEnvironment(environment ?? ConfigLayers.ProcessEnvironment(), EnvironmentPrefix));
        layers.AddRange(ConfigLayers.ByOrigin(overrides ?? []));

        var config = new PipelineConfig(full, ConfigLayers.Merge(layers), sections);
        config.CheckShape();
        return config;
    }

    /// <summary>
    /// A configuration made only of <c>section.key=value</c> settings (no file), checked like a pipeline file: for code
    /// that builds a stage's options from settings, such as the benchmark's cases. Paths resolve against
    /// <paramref name="baseDirectory"/>.
    /// </summary>
    public static PipelineConfig FromSettings(IEnumerable<string> settings, IReadOnlyDictionary<string, Type> sections, string baseDirectory)
    {
        var config = new PipelineConfig(Path.Combine(Path.GetFullPath(baseDirectory), "(settings)"),
            ConfigLayers.Merge(ConfigLayers.ByOrigin(ParseOverrides(settings, "setting"))), sections);
        config.CheckShape();
        return config;
    }

    /// <summary>
    /// This configuration with <paramref name="overrides"/> layered on top (later settings win; a setting that gives a
    /// list replaces it), checked like a loaded file — for code that runs the pipeline's stages with settings of its own,
    /// such as the steps of a task sequence.
    /// </summary>
    public PipelineConfig With(IEnumerable<ConfigSetting> overrides)
    {
        var config = new PipelineConfig(FilePath, ConfigLayers.Merge([settings.Values.ToList(), .. ConfigLayers.ByOrigin(overrides)]), sections);
        config.CheckShape();
        return config;
    }

    /// <summary>Where the value at <paramref name="key"/> (configuration form, or any key under it) was given; else the file.</summary>
    private string OriginOf(string key)
    {
        if (settings.TryGetValue(key, out var exact)) return exact.Origin;
        var under = settings.Values.Where(s => ConfigLayers.Within(s.Key, key)).OrderBy(s => s.Key, StringComparer.Ordinal).FirstOrDefault();
        return under?.Origin ?? Path.GetFileName(FilePath);
    }

    private void CheckShape()
    {
        var errors = new List<string>();
        foreach (var child in configuration.GetChildren())
        {
            if (child.Key.StartsWith('$')) continue; // "$schema", "$comment"
            if (!sections.TryGetValue(child.Key, out var type))
            {
                string? guess = NearestName.Find(child.Key, sections.Keys);
                errors.Add($"{OriginOf(child.Path)}: unknown section '{child.Key}'" +
                           (guess is not null ? $" — did you mean '{guess}'?" : $"; valid sections: {string.Join(", ", sections.Keys)}"));
                continue;
            }
            ConfigShape.Check(child, type, child.Key, OriginOf, errors);
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
            var errors = validatable.Validate().Select(e => $"{OriginOf(name + ":" + KeyOf(e))}: {name}.{e}").ToList();
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
        TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver
        {
            Modifiers = { LeaveOutResultNeutralKeys },
        },
    };

    /// <summary>Options marked <see cref="DoesNotChangeResultsAttribute"/> are not part of what a stage is fingerprinted by.</summary>
    private static void LeaveOutResultNeutralKeys(System.Text.Json.Serialization.Metadata.JsonTypeInfo info)
    {
        foreach (var property in info.Properties)
            if (property.AttributeProvider?.IsDefined(typeof(DoesNotChangeResultsAttribute), inherit: true) == true)
                property.ShouldSerialize = (_, _) => false;
    }

    /// <summary>The key an options error starts with (<c>lora.r = 0: …</c> → <c>lora:r</c>; <c>taskSources[1].path …</c> → <c>taskSources:1:path</c>).</summary>
    private static string KeyOf(string error)
    {
        int end = 0;
        while (end < error.Length && (char.IsAsciiLetterOrDigit(error[end]) || error[end] is '.' or '[' or ']' or '_')) end++;
        return error[..end].Replace("[", ".").Replace("]", "").Replace('.', ':').Trim(':');
    }

    /// <summary>
    /// Turns <c>section.key=value</c> assignments from the command line into settings. A value written as
    /// <c>[a,b]</c> is a list and <c>[]</c> an empty one; a list replaces the whole list of the file and the environment.
    /// </summary>
    public static IEnumerable<ConfigSetting> ParseOverrides(IEnumerable<string> assignments, string what = "--set")
    {
        foreach (var assignment in assignments)
        {
            int eq = assignment.IndexOf('=');
            if (eq <= 0) throw new ConfigException($"{what} '{assignment}': expected section.key=value");
            string key = assignment[..eq].Trim().Replace('.', ':');
            string value = assignment[(eq + 1)..].Trim();
            string origin = $"{what} {assignment}";
            if (value.StartsWith('[') && value.EndsWith(']'))
            {
                var items = value[1..^1].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                if (items.Length == 0) yield return new ConfigSetting(key, "", origin, EmptyList: true);
                for (int i = 0; i < items.Length; i++) yield return new ConfigSetting(key + ":" + i, items[i], origin);
            }
            else
            {
                yield return new ConfigSetting(key, value, origin);
            }
        }
    }
}
