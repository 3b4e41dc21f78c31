namespace Forgetless.Configuration;

/// <summary>
/// One configuration key as one source gave it: the key in configuration form (<c>finetune:lora:targetModules:0</c>),
/// its value, and where it came from (<c>forgetless.json:12</c>, <c>environment variable FORGETLESS_run__seed</c>,
/// <c>--set run.seed=3</c>) so that an error names the place the user has to edit.
/// </summary>
/// <param name="EmptyList">The key was given as an empty list (<c>[]</c>): it replaces a list with nothing.</param>
public sealed record ConfigSetting(string Key, string Value, string Origin, bool EmptyList = false)
{
    /// <summary>
    /// The list this key replaces, if any: a key that is a list item itself (<c>finetune:lora:targetModules:0</c> →
    /// <c>finetune:lora:targetModules</c>), or the key itself when it is an empty list. A key that goes on past an index
    /// (<c>evaluate:suites:0:limit</c>) edits a field of that item and replaces nothing: a source names an item's field
    /// when it means to change that field, and gives whole items when it means the list.
    /// </summary>
    public string? ListRoot
    {
        get
        {
            if (EmptyList) return Key;
            var segments = Key.Split(':');
            var last = segments[^1];
            return segments.Length > 1 && last.Length > 0 && last.All(char.IsAsciiDigit) ? string.Join(':', segments[..^1]) : null;
        }
    }
}

/// <summary>
/// Merges the sources of a configuration, later sources winning key by key — except lists: a source that gives a
/// list replaces the whole list of every earlier source (the binder would merge them by index, so
/// <c>[o_proj]</c> over <c>[q_proj, v_proj]</c> would give <c>[o_proj, v_proj]</c>).
/// </summary>
public static class ConfigLayers
{
    /// <summary>The merged settings by key (case-insensitive, as configuration keys are).</summary>
    public static Dictionary<string, ConfigSetting> Merge(IEnumerable<IReadOnlyList<ConfigSetting>> layers)
    {
        var merged = new Dictionary<string, ConfigSetting>(StringComparer.OrdinalIgnoreCase);
        foreach (var layer in layers)
        {
            foreach (var root in layer.Select(s => s.ListRoot).OfType<string>().Distinct(StringComparer.OrdinalIgnoreCase))
                foreach (var key in merged.Keys.Where(k => Within(k, root)).ToList())
                    merged.Remove(key);
            foreach (var setting in layer) merged[setting.Key] = setting;
        }
        return merged;
    }

    /// <summary>Settings grouped by origin, in order: each <c>--set</c> is a layer of its own, so the later one wins.</summary>
    public static IEnumerable<IReadOnlyList<ConfigSetting>> ByOrigin(IEnumerable<ConfigSetting> settings)
    {
        var current = new List<ConfigSetting>();
        foreach (var setting in settings)
        {
            if (current.Count > 0 && current[^1].Origin != setting.Origin)
            {
                yield return current;
                current = [];
            }
            current.Add(setting);
        }
        if (current.Count > 0) yield return current;
    }

    /// <summary><c>FORGETLESS_section__key=value</c> variables as settings (<c>__</c> separates levels, as in .NET configuration).</summary>
    public static IReadOnlyList<ConfigSetting> FromEnvironment(IEnumerable<KeyValuePair<string, string>> variables, string prefix) =>
        variables.Where(v => v.Key.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) && v.Key.Length > prefix.Length)
            .OrderBy(v => v.Key, StringComparer.Ordinal)
            .Select(v => new ConfigSetting(v.Key[prefix.Length..].Replace("__", ":"), v.Value, $"environment variable {v.Key}"))
            .ToList();

    /// <summary>The process's environment variables.</summary>
    public static IEnumerable<KeyValuePair<string, string>> ProcessEnvironment() =>
        Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .Select(e => KeyValuePair.Create((string)e.Key, e.Value as string ?? ""));

    /// <summary>
    /// Settings that replace the list at <paramref name="key"/> (configuration form, <c>prepare:taskSources</c>) with
    /// <paramref name="items"/>, each item an object of string fields (a list of objects cannot be written as <c>[a,b]</c>).
    /// </summary>
    public static IEnumerable<ConfigSetting> ListOf(string key, IReadOnlyList<IReadOnlyDictionary<string, string>> items, string origin)
    {
        yield return new ConfigSetting(key, "", origin, EmptyList: true);
        for (int i = 0; i < items.Count; i++)
            foreach (var (field, value) in items[i])
                yield return new ConfigSetting($"{key}:{i}:{field}", value, origin);
    }

    /// <summary>Settings that replace the list of strings at <paramref name="key"/> with <paramref name="values"/>.</summary>
    public static IEnumerable<ConfigSetting> ListOf(string key, IReadOnlyList<string> values, string origin)
    {
        yield return new ConfigSetting(key, "", origin, EmptyList: true);
        for (int i = 0; i < values.Count; i++) yield return new ConfigSetting($"{key}:{i}", values[i], origin);
    }

    public static bool Within(string key, string root) =>
        key.Equals(root, StringComparison.OrdinalIgnoreCase)
        || (key.Length > root.Length && key[root.Length] == ':' && key.StartsWith(root, StringComparison.OrdinalIgnoreCase));
}
