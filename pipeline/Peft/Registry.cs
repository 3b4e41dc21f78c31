using Forgetless.Configuration;

namespace Forgetless.Peft;

/// <summary>
/// The registered fine-tuning methods, in the order docs and benchmarks list them. Adding a method is one folder
/// under pipeline/Peft/ and one line here (see docs/extending.md). A folder's <c>peft_type</c> is read by the first
/// registered method that writes it (lora reads LORA folders, also those qlora wrote, as PEFT does).
/// </summary>
public static class PeftMethods
{
    public static IReadOnlyList<PeftMethod> All { get; } =
    [
        new FullMethod(),
        new FreezeMethod(),
        new LoraMethod(),
        new QloraMethod(),
        new OLoraMethod(),
        new AdapterMethod(),
        new PrefixMethod(),
        new Ia3Method(),
    ];

    public static IEnumerable<string> Names => All.Select(m => m.Name);

    public static bool Exists(string name) => All.Any(m => m.Name == name);

    /// <summary>The method called <paramref name="name"/>; an unknown name is a configuration error listing the registered ones.</summary>
    public static PeftMethod Get(string name) => All.FirstOrDefault(m => m.Name == name)
        ?? throw new ConfigException(UnknownMethod(name));

    public static string UnknownMethod(string name)
    {
        string? guess = NearestName.Find(name, Names);
        return $"finetune.method = '{name}' is not a registered method" + (guess is not null ? $" — did you mean '{guess}'?" : "") +
               $"; registered: {string.Join(", ", Names)}";
    }

    /// <summary>The method that reads folders of <paramref name="peftType"/>, or null.</summary>
    public static PeftMethod? Reading(string peftType) => All.FirstOrDefault(m => m.PeftType == peftType);

    /// <summary>Every peft_type a folder may carry.</summary>
    public static IEnumerable<string> PeftTypes => All.Select(m => m.PeftType).Distinct();

    /// <summary>Every section any method owns, name → options type (a name two methods read has one type).</summary>
    public static IReadOnlyDictionary<string, Type> SectionTypes { get; } = All.SelectMany(m => m.Sections)
        .GroupBy(s => s.Name, StringComparer.Ordinal)
        .ToDictionary(g => g.Key, g => g.Select(s => s.Options).Distinct().Single(), StringComparer.Ordinal);
}
