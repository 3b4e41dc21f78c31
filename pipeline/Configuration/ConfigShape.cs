using System.Collections;
using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace Forgetless.Configuration;

/// <summary>
/// Checks raw configuration against the options types before binding, because the binder
/// silently ignores unknown keys and reports bad values without saying what is allowed.
/// </summary>
internal static class ConfigShape
{
    /// <param name="origin">Where the key at a configuration path was given (file and line, environment variable, --set).</param>
    public static void Check(IConfiguration section, Type type, string path, Func<string, string> origin, List<string> errors)
    {
        var properties = BindableProperties(type);
        var plugins = PluginSectionTypes(type);
        foreach (var child in section.GetChildren())
        {
            string childPath = Join(path, child.Key);
            if (plugins.FirstOrDefault(p => string.Equals(p.Key, child.Key, StringComparison.OrdinalIgnoreCase)) is { Value: not null } plugin)
            {
                CheckValue(child, plugin.Value, childPath, origin, errors);
                continue;
            }
            var property = properties.FirstOrDefault(p => string.Equals(p.Name, child.Key, StringComparison.OrdinalIgnoreCase));
            if (property is null)
            {
                var names = properties.Select(p => CamelCase(p.Name)).Concat(plugins.Keys).ToList();
                string? guess = NearestName.Find(child.Key, names);
                errors.Add($"{origin(child.Path)}: unknown key '{childPath}'" +
                           (guess is not null ? $" — did you mean '{Join(path, guess)}'?" : $"; valid keys here: {string.Join(", ", names)}"));
                continue;
            }
            CheckValue(child, property.PropertyType, childPath, origin, errors);
        }
    }

    private static void CheckValue(IConfigurationSection node, Type type, string path, Func<string, string> origin, List<string> errors)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        string source = origin(node.Path);
        if (IsScalar(type))
        {
            if (node.Value is null)
            {
                if (node.GetChildren().Any())
                    errors.Add($"{source}: '{path}' must be a single {Describe(type)}, not an object or list");
                return;
            }
            if (Problem(node.Value, type) is { } problem)
                errors.Add($"{source}: '{path}' = '{node.Value}' {problem}");
            return;
        }
        if (ElementType(type) is { } element)
        {
            if (node.Value is not null && node.Value.Length > 0)
            {
                errors.Add($"{source}: '{path}' must be a list, got '{node.Value}'");
                return;
            }
            foreach (var item in node.GetChildren())
            {
                if (!int.TryParse(item.Key, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                {
                    errors.Add($"{source}: '{path}' must be a list, but has key '{item.Key}'");
                    continue;
                }
                CheckValue(item, element, $"{path}[{item.Key}]", origin, errors);
            }
            return;
        }
        if (DictionaryValueType(type) is { } valueType)
        {
            foreach (var item in node.GetChildren()) CheckValue(item, valueType, Join(path, item.Key), origin, errors);
            return;
        }
        if (node.Value is not null && node.Value.Length > 0)
        {
            errors.Add($"{source}: '{path}' must be an object with keys {string.Join(", ", BindableProperties(type).Select(p => CamelCase(p.Name)))}, got '{node.Value}'");
            return;
        }
        Check(node, type, path, origin, errors);
    }

    /// <summary>
    /// The binder appends configured list items to a list's default items; a list given in the
    /// configuration should replace the default instead, so such lists are emptied before binding
    /// (an empty list, <c>[]</c>, is a key with an empty value and no children).
    /// </summary>
    public static void ClearConfiguredLists(object options, IConfiguration section)
    {
        foreach (var property in BindableProperties(options.GetType()))
        {
            var child = section.GetSection(property.Name);
            if (!child.GetChildren().Any() && child.Value is not "") continue;
            var type = property.PropertyType;
            if (ElementType(type) is { } element && type != typeof(string))
                property.SetValue(options, type.IsArray ? Array.CreateInstance(element, 0) : Activator.CreateInstance(type));
            else if (!IsScalar(type) && DictionaryValueType(type) is null && property.GetValue(options) is { } nested)
                ClearConfiguredLists(nested, child);
        }
    }

    public static string Describe(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type.IsEnum) return "one of " + string.Join(" | ", Enum.GetNames(type).Select(CamelCase));
        if (type == typeof(bool)) return "true or false";
        if (type == typeof(int) || type == typeof(long)) return "a whole number";
        if (type == typeof(double) || type == typeof(float)) return "a finite number";
        return "a string";
    }

    /// <summary>What is wrong with <paramref name="value"/> as a <paramref name="type"/> (null: nothing).</summary>
    private static string? Problem(string value, Type type)
    {
        string invalid = $"is not valid; expected {Describe(type)}";
        if (type == typeof(string)) return null;
        if (type.IsEnum) return Enum.GetNames(type).Any(n => string.Equals(n, value, StringComparison.OrdinalIgnoreCase)) ? null : invalid;
        if (type == typeof(bool)) return bool.TryParse(value, out _) ? null : invalid;
        if (type == typeof(int)) return WholeNumber(value, int.MinValue, int.MaxValue, invalid);
        if (type == typeof(long)) return WholeNumber(value, long.MinValue, long.MaxValue, invalid);
        if (type == typeof(double))
            return double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d) ? null : invalid;
        if (type == typeof(float))
            return float.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var f) && float.IsFinite(f) ? null : invalid;
        return null;
    }

    private static string? WholeNumber(string value, long min, long max, string invalid)
    {
        if (!System.Numerics.BigInteger.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n)) return invalid;
        if (n > max) return $"is too large; expected a whole number from {min} to {max}";
        if (n < min) return $"is too small; expected a whole number from {min} to {max}";
        return null;
    }

    private static bool IsScalar(Type type) =>
        type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal);

    private static Type? ElementType(Type type)
    {
        if (type.IsArray) return type.GetElementType();
        if (type.IsGenericType && type.GetGenericArguments().Length == 1 && typeof(IEnumerable).IsAssignableFrom(type))
            return type.GetGenericArguments()[0];
        return null;
    }

    private static Type? DictionaryValueType(Type type) =>
        type.IsGenericType && type.GetGenericArguments().Length == 2 && typeof(IDictionary).IsAssignableFrom(type)
            ? type.GetGenericArguments()[1]
            : null;

    /// <summary>The plug-in sections an options type holds (<see cref="IHasPluginSections"/>), by name.</summary>
    private static IReadOnlyDictionary<string, Type> PluginSectionTypes(Type type) =>
        typeof(IHasPluginSections).IsAssignableFrom(type) && Activator.CreateInstance(type) is IHasPluginSections holder
            ? holder.Plugins.Types
            : new Dictionary<string, Type>();

    private static List<PropertyInfo> BindableProperties(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).ToList();

    public static string CamelCase(string name) => name.Length == 0 ? name : char.ToLowerInvariant(name[0]) + name[1..];

    private static string Join(string path, string key) => path.Length == 0 ? key : path + "." + key;
}
