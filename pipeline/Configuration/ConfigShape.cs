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
    public static void Check(IConfiguration section, Type type, string path, string source, List<string> errors)
    {
        var properties = BindableProperties(type);
        var plugins = PluginSectionTypes(type);
        foreach (var child in section.GetChildren())
        {
            string childPath = Join(path, child.Key);
            if (plugins.FirstOrDefault(p => string.Equals(p.Key, child.Key, StringComparison.OrdinalIgnoreCase)) is { Value: not null } plugin)
            {
                CheckValue(child, plugin.Value, childPath, source, errors);
                continue;
            }
            var property = properties.FirstOrDefault(p => string.Equals(p.Name, child.Key, StringComparison.OrdinalIgnoreCase));
            if (property is null)
            {
                var names = properties.Select(p => CamelCase(p.Name)).Concat(plugins.Keys).ToList();
                string? guess = NearestName.Find(child.Key, names);
                errors.Add($"{source}: unknown key '{childPath}'" +
                           (guess is not null ? $" — did you mean '{Join(path, guess)}'?" : $"; valid keys here: {string.Join(", ", names)}"));
                continue;
            }
            CheckValue(child, property.PropertyType, childPath, source, errors);
        }
    }

    private static void CheckValue(IConfigurationSection node, Type type, string path, string source, List<string> errors)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (IsScalar(type))
        {
            if (node.Value is null)
            {
                if (node.GetChildren().Any())
                    errors.Add($"{source}: '{path}' must be a single {Describe(type)}, not an object or list");
                return;
            }
            if (!TryConvert(node.Value, type))
                errors.Add($"{source}: '{path}' = '{node.Value}' is not valid; expected {Describe(type)}");
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
                CheckValue(item, element, $"{path}[{item.Key}]", source, errors);
            }
            return;
        }
        if (DictionaryValueType(type) is { } valueType)
        {
            foreach (var item in node.GetChildren()) CheckValue(item, valueType, Join(path, item.Key), source, errors);
            return;
        }
        if (node.Value is not null && node.Value.Length > 0)
        {
            errors.Add($"{source}: '{path}' must be an object with keys {string.Join(", ", BindableProperties(type).Select(p => CamelCase(p.Name)))}, got '{node.Value}'");
            return;
        }
        Check(node, type, path, source, errors);
    }

    /// <summary>
    /// The binder appends configured list items to a list's default items; a list given in the
    /// configuration should replace the default instead, so such lists are emptied before binding.
    /// </summary>
    public static void ClearConfiguredLists(object options, IConfiguration section)
    {
        foreach (var property in BindableProperties(options.GetType()))
        {
            var child = section.GetSection(property.Name);
            if (!child.GetChildren().Any()) continue;
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
        if (type == typeof(double) || type == typeof(float)) return "a number";
        return "a string";
    }

    private static bool TryConvert(string value, Type type)
    {
        if (type == typeof(string)) return true;
        if (type.IsEnum) return Enum.GetNames(type).Any(n => string.Equals(n, value, StringComparison.OrdinalIgnoreCase));
        if (type == typeof(bool)) return bool.TryParse(value, out _);
        if (type == typeof(int)) return int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _);
        if (type == typeof(long)) return long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _);
        if (type == typeof(double)) return double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _);
        if (type == typeof(float)) return float.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _);
        return true;
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
