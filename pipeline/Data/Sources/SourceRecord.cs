namespace Forgetless.Data.Sources;

/// <summary>
/// One row of an input file, already mapped to a document: instruction style (<see cref="Prompt"/> and
/// <see cref="Response"/>) or plain (<see cref="Text"/>). When the row is bad, <see cref="Error"/> says why
/// and the engine applies the bad-row policy.
/// </summary>
internal readonly record struct SourceRecord(long Line, string? Prompt, string? Response, string? Text, string? Error,
    IReadOnlyList<ChatMessage>? Messages = null)
{
    /// <summary>
    /// A conversation. Its <see cref="Text"/> (every turn as "role: content") is what deduplication, the split and
    /// decontamination see; the turns themselves are rendered with the model's chat template.
    /// </summary>
    public static SourceRecord Chat(long line, IReadOnlyList<ChatMessage> messages) =>
        new(line, null, null, string.Join("\n", messages.Select(m => m.Role + ": " + m.Content)), null, messages);

    public static SourceRecord Plain(long line, string text) => new(line, null, null, text, null);

    public static SourceRecord Instruction(long line, string prompt, string response) => new(line, prompt, response, null, null);

    public static SourceRecord Bad(long line, string error) => new(line, null, null, null, error);

    public bool IsInstruction => Prompt is not null;
}
