namespace Forgetless.Data.Sources;

/// <summary>Turns the named fields of one input row into a <see cref="SourceRecord"/>, checking each one.</summary>
internal sealed class FieldMapping(DataSourceOptions source)
{
    /// <summary>How a field of a row looked: absent, present with the wrong type, or a string.</summary>
    public readonly record struct Field(bool Present, string? Value, string? WrongType)
    {
        public static readonly Field Missing = new(false, null, null);
        public static Field Of(string? value) => new(true, value, null);
        public static Field Wrong(string typeName) => new(true, null, typeName);
    }

    public bool IsInstruction { get; } = source.IsInstruction;

    /// <summary>The chat format of the source (None: prompt/response or text fields).</summary>
    public ChatFormat Chat { get; } = source.Chat;

    public IReadOnlyList<string> FieldNames { get; } = source.IsInstruction
        ? [source.PromptField!, source.ResponseField!]
        : [source.EffectiveTextField];

    public SourceRecord Map(long line, Func<string, Field> get)
    {
        if (IsInstruction)
        {
            if (Check(FieldNames[0], get(FieldNames[0]), out var prompt) is { } e1) return SourceRecord.Bad(line, e1);
            if (Check(FieldNames[1], get(FieldNames[1]), out var response) is { } e2) return SourceRecord.Bad(line, e2);
            return SourceRecord.Instruction(line, prompt, response);
        }
        if (Check(FieldNames[0], get(FieldNames[0]), out var text) is { } e) return SourceRecord.Bad(line, e);
        return SourceRecord.Plain(line, text);
    }

    private static string? Check(string name, Field field, out string value)
    {
        value = "";
        if (!field.Present) return $"missing field '{name}'; expected a string.";
        if (field.WrongType is { } type) return $"field '{name}' is {type}; expected a string.";
        if (field.Value is null) return $"field '{name}' is null; expected a string.";
        if (string.IsNullOrWhiteSpace(field.Value)) return $"field '{name}' is empty; expected non-empty text.";
        value = field.Value;
        return null;
    }
}
