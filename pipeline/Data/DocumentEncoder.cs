using Forgetless.Data.Sources;
using Forgetless.Model.Tokenizers;

namespace Forgetless.Data;

/// <summary>A tokenized document: ids, which of them are training targets, and its original text.</summary>
internal sealed record EncodedDocument(int[] Ids, bool[] LossMask, string Text, bool Truncated);

/// <summary>
/// Tokenizes a record: [bos] prompt response eos for instruction rows with the loss only on response and eos,
/// [bos] text eos for plain rows with the loss on everything but bos. Bos is added only when the tokenizer has
/// one distinct from eos (GPT-2 style tokenizers have not). Chat rows are rendered by the model's chat template
/// (<see cref="ChatTemplates.ChatRenderer"/>) with the loss on the assistant turns only.
/// </summary>
internal sealed class DocumentEncoder(ITokenizer tokenizer, int seqLen, OverLengthPolicy overLength, ChatTemplates.ChatRenderer? chat = null)
{
    private readonly int? bos = tokenizer.BosId is { } b && b != tokenizer.EosId ? b : null;
    private readonly int eos = tokenizer.EosId
        ?? throw new InvalidOperationException("The tokenizer has no eos token; prepare needs one to end documents.");

    public int PadId { get; } = tokenizer.PadId ?? tokenizer.EosId ?? 0;

    /// <summary>The encoded document, or null when it is over-long and the policy drops it (or truncation left no target).</summary>
    public EncodedDocument? Encode(in SourceRecord record)
    {
        var lead = bos is null ? 0 : 1;
        int[] ids;
        bool[] mask;
        string text;
        if (record.Messages is { } messages)
        {
            // The template writes the conversation's own special tokens (BOS, end-of-turn); nothing is added around it.
            var renderer = chat ?? throw new InvalidOperationException("a chat record needs the model's chat template");
            (ids, mask, text) = renderer.Encode(messages, tokenizer);
            return Fit(ids, mask, text);
        }
        if (record.IsInstruction)
        {
            var prompt = tokenizer.Encode(record.Prompt!);
            var response = tokenizer.Encode(record.Response!);
            ids = new int[lead + prompt.Length + response.Length + 1];
            mask = new bool[ids.Length];
            prompt.CopyTo(ids, lead);
            response.CopyTo(ids, lead + prompt.Length);
            Array.Fill(mask, true, lead + prompt.Length, response.Length + 1);
            text = record.Prompt + record.Response;
        }
        else
        {
            var body = tokenizer.Encode(record.Text!);
            ids = new int[lead + body.Length + 1];
            mask = new bool[ids.Length];
            body.CopyTo(ids, lead);
            Array.Fill(mask, true, lead, body.Length + 1);
            text = record.Text!;
        }
        if (bos is { } b) ids[0] = b;
        ids[^1] = eos;
        return Fit(ids, mask, text);
    }

    private EncodedDocument? Fit(int[] ids, bool[] mask, string text)
    {
        if (ids.Length <= seqLen) return new EncodedDocument(ids, mask, text, false);
        if (overLength == OverLengthPolicy.Drop) return null;
        var keptMask = mask[..seqLen];
        if (Array.IndexOf(keptMask, true) < 0) return null;
        return new EncodedDocument(ids[..seqLen], keptMask, text, true);
    }
}
