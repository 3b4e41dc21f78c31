using System.Text.Json;

namespace Forgetless.Data.Sources;

/// <summary>The shapes of chat data a task source can hold (<c>prepare.taskSources[i].chat</c>).</summary>
public enum ChatFormat
{
    /// <summary>Not chat: prompt/response or plain text fields.</summary>
    None,
    /// <summary>OpenAI style: <c>{"messages": [{"role": "system"|"user"|"assistant", "content": "…"}, …]}</c>.</summary>
    Messages,
    /// <summary>ShareGPT: <c>{"conversations": [{"from": "system"|"human"|"gpt", "value": "…"}, …]}</c>.</summary>
    ShareGpt,
    /// <summary>Alpaca: <c>{"instruction": "…", "input": "…", "output": "…"}</c> (input and a <c>system</c> field optional).</summary>
    Alpaca,
}

/// <summary>One turn of a conversation.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>Reads one JSON line of a chat source into its turns, with the line's problem named when it is malformed.</summary>
internal static class ChatRecords
{
    public static SourceRecord Read(JsonElement root, ChatFormat format, long line)
    {
        try
        {
            var messages = format switch
            {
                ChatFormat.Messages => Turns(root, "messages", "role", "content", r => r),
                ChatFormat.ShareGpt => Turns(root, "conversations", "from", "value", ShareGptRole),
                ChatFormat.Alpaca => Alpaca(root),
                _ => throw new InvalidOperationException($"not a chat format: {format}"),
            };
            if (!messages.Any(m => m.Role == "assistant"))
                return SourceRecord.Bad(line, "the conversation has no assistant turn; there is nothing to train on.");
            return SourceRecord.Chat(line, messages);
        }
        catch (FormatException e)
        {
            return SourceRecord.Bad(line, e.Message);
        }
    }

    private static List<ChatMessage> Turns(JsonElement root, string field, string roleKey, string contentKey, Func<string, string> role)
    {
        if (!root.TryGetProperty(field, out var list) || list.ValueKind != JsonValueKind.Array)
            throw new FormatException($"missing field '{field}'; expected a list of {{\"{roleKey}\": …, \"{contentKey}\": …}} turns.");
        var turns = new List<ChatMessage>();
        foreach (var turn in list.EnumerateArray())
        {
            string at = $"{field}[{turns.Count}]";
            if (turn.ValueKind != JsonValueKind.Object) throw new FormatException($"{at} is not an object.");
            var r = String(turn, roleKey, at);
            var mapped = role(r);
            if (mapped is not ("system" or "user" or "assistant"))
                throw new FormatException($"{at}.{roleKey} is '{r}'; expected {(field == "messages" ? "system, user or assistant" : "system, human or gpt")}.");
            turns.Add(new ChatMessage(mapped, String(turn, contentKey, at)));
        }
        if (turns.Count == 0) throw new FormatException($"'{field}' is empty.");
        return turns;
    }

    private static string ShareGptRole(string from) => from switch { "human" or "user" => "user", "gpt" or "assistant" => "assistant", "system" => "system", _ => from };

    /// <summary>Alpaca as LLaMA-Factory converts it: the user turn is the instruction, then a newline and the input when there is one.</summary>
    private static List<ChatMessage> Alpaca(JsonElement root)
    {
        var instruction = String(root, "instruction", "");
        var input = root.TryGetProperty("input", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString()! : "";
        var output = String(root, "output", "");
        var turns = new List<ChatMessage>();
        if (root.TryGetProperty("system", out var s) && s.ValueKind == JsonValueKind.String && s.GetString()!.Length > 0)
            turns.Add(new ChatMessage("system", s.GetString()!));
        turns.Add(new ChatMessage("user", input.Length > 0 ? instruction + "\n" + input : instruction));
        turns.Add(new ChatMessage("assistant", output));
        return turns;
    }

    private static string String(JsonElement e, string key, string at)
    {
        var where = at.Length > 0 ? $"{at}.{key}" : $"field '{key}'";
        if (!e.TryGetProperty(key, out var v)) throw new FormatException($"missing {where}; expected a string.");
        if (v.ValueKind != JsonValueKind.String) throw new FormatException($"{where} is a {JsonLinesSource.Describe(v.ValueKind)}; expected a string.");
        return v.GetString()!;
    }
}
