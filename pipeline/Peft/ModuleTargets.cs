using System.Text.RegularExpressions;

namespace Forgetless.Peft;

/// <summary>
/// Which modules an adapter method replaces, with PEFT's matching rules:
/// a list entry matches a module path equal to it or ending with "." + entry;
/// a regex must match the whole path (Python's <c>re.fullmatch</c>).
/// <see cref="LayersToTransform"/> keeps only paths whose layer index (the N in
/// <c>layers.N.</c> or <c>h.N.</c>) is listed; like PEFT it applies to a list, not to a regex.
/// </summary>
public sealed record ModuleTargets
{
    public IReadOnlyList<string>? Names { get; init; }
    public string? Regex { get; init; }
    public IReadOnlyList<int>? LayersToTransform { get; init; }

    public static ModuleTargets Suffixes(params string[] names) => new() { Names = names };
    public static ModuleTargets FullMatch(string regex) => new() { Regex = regex };

    private static readonly Regex LayerIndex = new(@"(?:^|\.)(?:layers|h)\.(\d+)\.", RegexOptions.CultureInvariant);

    /// <summary>The transformer layer index in a module path, or null when the path is outside the layer stack.</summary>
    public static int? LayerIndexOf(string path)
    {
        var m = LayerIndex.Match(path);
        return m.Success ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    public void Validate()
    {
        if ((Names is null) == (Regex is null))
            throw new ArgumentException("Give exactly one of a target module list or a full-match regex.");
        if (Names is { Count: 0 })
            throw new ArgumentException("The target module list is empty.");
        if (Regex is not null && LayersToTransform is not null)
            throw new ArgumentException("layers_to_transform works only with a target module list (PEFT ignores it for a regex).");
    }

    public bool Matches(string path)
    {
        if (Regex is not null)
            return System.Text.RegularExpressions.Regex.IsMatch(path, @"\A(?:" + Regex + @")\z", RegexOptions.CultureInvariant);
        if (!Names!.Any(t => path == t || path.EndsWith("." + t, StringComparison.Ordinal)))
            return false;
        if (LayersToTransform is null)
            return true;
        var layer = LayerIndexOf(path);
        return layer is int l && LayersToTransform.Contains(l);
    }

    /// <summary>The value PEFT writes for <c>target_modules</c>: the list, or the regex string.</summary>
    public object ToPeftValue() => Regex is not null ? Regex : Names!.ToArray();

    public override string ToString() => Regex is not null ? $"regex '{Regex}'" : "[" + string.Join(", ", Names!) + "]";
}
