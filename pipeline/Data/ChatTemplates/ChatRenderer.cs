using System.Text.Json;
using Forgetless.Data.Sources;
using Forgetless.Model.Tokenizers;

namespace Forgetless.Data.ChatTemplates;

/// <summary>
/// Renders conversations with a model's own chat template (the <c>chat_template</c> of its tokenizer_config.json) and
/// marks which tokens carry loss: only the assistant turns — each turn's text as the template writes it, end-of-turn
/// marker included (so the model learns to stop), found as what rendering the conversation up to and including that
/// turn adds to rendering it up to the turn before with the generation prompt. The pieces are tokenized one by one, so
/// a token never straddles a boundary between loss and no loss.
/// </summary>
public sealed class ChatRenderer
{
    private readonly JinjaTemplate template;
    private readonly Dictionary<string, object?> specials;

    public ChatRenderer(JinjaTemplate template, string? bosToken, string? eosToken)
    {
        this.template = template;
        specials = new Dictionary<string, object?>(StringComparer.Ordinal) { ["bos_token"] = bosToken ?? "", ["eos_token"] = eosToken ?? "" };
    }

    public const string ConfigFile = "tokenizer_config.json";

    /// <summary>The template of the tokenizer folder <paramref name="directory"/>; a missing or unreadable one is a named error.</summary>
    public static ChatRenderer Load(string directory)
    {
        var path = Path.Combine(directory, ConfigFile);
        if (!File.Exists(path))
            throw new UserInputException($"{path}: not found; chat task sources are rendered with the base model's chat template from its {ConfigFile}");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement;
        string? source = null;
        if (root.TryGetProperty("chat_template", out var t))
        {
            if (t.ValueKind == JsonValueKind.String) source = t.GetString();
            // Newer folders may list named templates; "default" is the one apply_chat_template uses.
            else if (t.ValueKind == JsonValueKind.Array)
                source = t.EnumerateArray().FirstOrDefault(e => e.TryGetProperty("name", out var n) && n.GetString() == "default") is { ValueKind: JsonValueKind.Object } d
                    ? d.GetProperty("template").GetString() : null;
        }
        if (string.IsNullOrEmpty(source))
            throw new UserInputException($"{path}: has no chat_template; chat task sources need the base model's template (an instruct model's folder has one)");
        try
        {
            return new ChatRenderer(new JinjaTemplate(source), Token(root, "bos_token"), Token(root, "eos_token"));
        }
        catch (ChatTemplateException e)
        {
            throw new UserInputException($"{path}: chat_template: {e.Message}");
        }
    }

    private static string? Token(JsonElement root, string key) =>
        !root.TryGetProperty(key, out var v) ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString()
        : v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out var c) ? c.GetString() : null;

    /// <summary>The whole conversation as the template renders it (no generation prompt).</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = false)
    {
        var variables = new Dictionary<string, object?>(specials, StringComparer.Ordinal)
        {
            ["messages"] = messages.Select(m => (object?)new Dictionary<string, object?>(StringComparer.Ordinal) { ["role"] = m.Role, ["content"] = m.Content }).ToList(),
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        return template.Render(variables);
    }

    /// <summary>The rendered text cut into pieces, each marked true when it is an assistant turn (trained on).</summary>
    public IReadOnlyList<(string Text, bool Trained)> Pieces(IReadOnlyList<ChatMessage> messages)
    {
        var whole = Render(messages);
        var pieces = new List<(string, bool)>();
        int at = 0;
        for (int i = 0; i < messages.Count; i++)
        {
            if (messages[i].Role != "assistant") continue;
            var before = Render(messages.Take(i).ToList(), addGenerationPrompt: true);
            var through = Render(messages.Take(i + 1).ToList());
            if (!through.StartsWith(before, StringComparison.Ordinal) || !whole.StartsWith(through, StringComparison.Ordinal) || before.Length < at)
                throw new ChatTemplateException(
                    $"the template does not render turn {i + 1} as an extension of the turns before it, so its assistant tokens cannot be told apart; " +
                    "(templates that move the system prompt into the last user turn, like Mistral's, do this when a conversation has a system turn)");
            if (before.Length > at) pieces.Add((whole[at..before.Length], false));
            pieces.Add((whole[before.Length..through.Length], true));
            at = through.Length;
        }
        if (at < whole.Length) pieces.Add((whole[at..], false));
        return pieces;
    }

    /// <summary>Token ids of the conversation and the loss mask (true on assistant tokens), and the rendered text.</summary>
    public (int[] Ids, bool[] LossMask, string Text) Encode(IReadOnlyList<ChatMessage> messages, ITokenizer tokenizer)
    {
        var ids = new List<int>();
        var mask = new List<bool>();
        var text = new System.Text.StringBuilder();
        foreach (var (piece, trained) in Pieces(messages))
        {
            var pieceIds = tokenizer.Encode(piece);
            ids.AddRange(pieceIds);
            mask.AddRange(Enumerable.Repeat(trained, pieceIds.Length));
            text.Append(piece);
        }
        return (ids.ToArray(), mask.ToArray(), text.ToString());
    }
}
