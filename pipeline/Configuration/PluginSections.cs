namespace Forgetless.Configuration;

/// <summary>
/// The config sections that plug-ins own inside another section: <c>finetune.lora</c> belongs to the lora method,
/// <c>finetune.ewc</c> to the ewc term. An options class that holds them implements <see cref="IHasPluginSections"/>;
/// <see cref="PipelineConfig.Section{T}"/> binds each into its registered type and the key check knows their keys,
/// so a new plug-in's section needs no property on the options class that holds it.
/// </summary>
public sealed class PluginSections
{
    private readonly Dictionary<string, object> sections;

    public PluginSections(IReadOnlyDictionary<string, Type> types)
    {
        Types = types;
        sections = types.ToDictionary(t => t.Key, t => Activator.CreateInstance(t.Value)
            ?? throw new InvalidOperationException($"{t.Value.Name} needs a parameterless constructor"), StringComparer.Ordinal);
    }

    /// <summary>Section name → options type.</summary>
    public IReadOnlyDictionary<string, Type> Types { get; }

    public IEnumerable<string> Names => Types.Keys;

    /// <summary>The bound options of section <paramref name="name"/>.</summary>
    public object this[string name] => sections.TryGetValue(name, out var s) ? s
        : throw new InvalidOperationException($"no plug-in section '{name}' is registered");

    public T Get<T>(string name) where T : class => this[name] as T
        ?? throw new InvalidOperationException($"plug-in section '{name}' is a {this[name].GetType().Name}, not a {typeof(T).Name}");

    /// <summary>Replaces a section's options (binding, or a caller that builds options in code).</summary>
    public void Set(string name, object options)
    {
        if (!Types.TryGetValue(name, out var type)) throw new InvalidOperationException($"no plug-in section '{name}' is registered");
        if (!type.IsInstanceOfType(options)) throw new ArgumentException($"section '{name}' takes a {type.Name}, got {options.GetType().Name}");
        sections[name] = options;
    }
}

/// <summary>An options class whose section also holds plug-in sections (see <see cref="PluginSections"/>).</summary>
public interface IHasPluginSections
{
    PluginSections Plugins { get; }
}

/// <summary>
/// A plug-in section that names files or folders whose content can change a run's result (kd's teacher adapter): the
/// stage holding the section declares them as inputs, so a changed file makes the stage stale.
/// </summary>
public interface IDeclaresInputFolders
{
    /// <summary>(key, folder) pairs; <paramref name="resolve"/> turns a configured path into a full one.</summary>
    IEnumerable<(string Key, string Folder)> InputFolders(Func<string, string> resolve);
}
