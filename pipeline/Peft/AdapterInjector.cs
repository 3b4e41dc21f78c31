using System.Reflection;
using TorchSharp;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// The one injection mechanism every adapter method uses: walk <c>named_modules()</c>, pick the
/// modules that <see cref="ModuleTargets"/> matches, and replace each in its parent — both the
/// C# field named like the module (or carrying that <c>ComponentName</c>) and the registered
/// submodule, keeping the registration order so parameter order stays stable.
/// The field must be declared as <c>Module&lt;Tensor, Tensor&gt;</c> (TorchSharp's Linear is sealed).
/// </summary>
public static class AdapterInjector
{
    /// <summary>Paths of the linear-like modules (Linear or <see cref="IFrozenLinear"/>) that match, in <c>named_modules()</c> order.</summary>
    public static IReadOnlyList<string> FindTargets(nn.Module root, ModuleTargets targets)
    {
        targets.Validate();
        var all = root.named_modules().ToList();
        var hits = all.Where(m => targets.Matches(m.name)).ToList();
        if (hits.Count == 0)
        {
            var seen = all.Select(m => m.name).Take(12).ToList();
            throw new InvalidOperationException(
                $"No module matched target_modules {targets}. {all.Count} module(s) seen, e.g.: " +
                string.Join(", ", seen) + (all.Count > seen.Count ? ", ..." : "") + ".");
        }
        foreach (var (name, module) in hits)
        {
            if (module is IAdapterLayer)
                throw new InvalidOperationException(
                    $"Module '{name}' already has an adapter ({module.GetType().Name}); inject each method once.");
            if (!FrozenLinear.IsLinearLike(module))
                throw new InvalidOperationException(
                    $"Target module '{name}' is a {module.GetType().Name}, not a Linear (or an IFrozenLinear base); " +
                    "adapters can only wrap linear projections. Narrow target_modules.");
        }
        return hits.Select(h => h.name).ToList();
    }

    /// <summary>
    /// Replaces every matched module with <paramref name="wrap"/>(path, original). Returns the replaced paths.
    /// </summary>
    public static IReadOnlyList<string> Inject(
        nn.Module root, ModuleTargets targets, Func<string, nn.Module<Tensor, Tensor>, nn.Module<Tensor, Tensor>> wrap)
    {
        var paths = FindTargets(root, targets);
        var byName = root.named_modules().ToDictionary(m => m.name, m => m.module);
        foreach (var path in paths)
        {
            var original = byName[path] as nn.Module<Tensor, Tensor>
                ?? throw new InvalidOperationException($"Target module '{path}' is not a Module<Tensor, Tensor>.");
            var (parent, name) = Parent(root, byName, path);
            Replace(parent, name, wrap(path, original), path);
        }
        return paths;
    }

    /// <summary>
    /// Runs an injection whose targets come from the user's configuration: a target list that matches nothing, or
    /// matches a module that is not linear, becomes a <see cref="Configuration.ConfigException"/> naming <paramref name="key"/>.
    /// </summary>
    public static IReadOnlyList<string> AsConfigError(string key, ModuleTargets targets, Func<IReadOnlyList<string>> inject)
    {
        try
        {
            return inject();
        }
        catch (InvalidOperationException e) when (e.Message.StartsWith("No module matched", StringComparison.Ordinal)
                                                   || e.Message.Contains("not a Linear", StringComparison.Ordinal))
        {
            throw new Configuration.ConfigException($"{key} = {targets}: {e.Message}");
        }
    }

    /// <summary>Replaces the child <paramref name="name"/> of <paramref name="parent"/> (field and registration).</summary>
    public static void Replace(nn.Module parent, string name, nn.Module<Tensor, Tensor> replacement, string pathForErrors)
    {
        var field = FindField(parent.GetType(), name)
            ?? throw new InvalidOperationException(
                $"Module '{pathForErrors}' is registered in {parent.GetType().Name} but no field named '{name}' holds it; " +
                "model code must keep each projection in a field named like its HF key segment.");
        if (!field.FieldType.IsAssignableFrom(replacement.GetType()))
            throw new InvalidOperationException(
                $"Field '{name}' of {parent.GetType().Name} (module '{pathForErrors}') is declared as {field.FieldType.Name}; " +
                $"declare it as Module<Tensor, Tensor> so an adapter ({replacement.GetType().Name}) can replace it.");
        field.SetValue(parent, replacement);

        // Replace in place to keep the submodule order; fall back to remove + register.
        var dictField = typeof(nn.Module).GetField("_internal_submodules", BindingFlags.Instance | BindingFlags.NonPublic);
        if (dictField?.GetValue(parent) is TorchSharp.Utils.OrderedDict<string, nn.Module> dict && dict.ContainsKey(name))
        {
            dict[name] = replacement;
            return;
        }
        parent.register_module(name, null!);
        parent.register_module(name, replacement);
    }

    private static (nn.Module parent, string name) Parent(nn.Module root, Dictionary<string, nn.Module> byName, string path)
    {
        var dot = path.LastIndexOf('.');
        return dot < 0 ? (root, path) : (byName[path[..dot]], path[(dot + 1)..]);
    }

    private static FieldInfo? FindField(Type type, string name)
    {
        for (var t = type; t is not null && t != typeof(object); t = t.BaseType)
        {
            foreach (var f in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                var component = f.GetCustomAttribute<ComponentNameAttribute>()?.Name ?? f.Name;
                if (component == name) return f;
            }
        }
        return null;
    }
}
