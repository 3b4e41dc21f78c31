namespace Forgetless.Model.Tokenizers;

/// <summary>
/// Text to token ids and back, with the special tokens a causal LM needs. Implementations load
/// the tokenizer files of a Hugging Face model folder (tokenizer.json, or vocab.json + merges.txt).
/// </summary>
public interface ITokenizer
{
    /// <summary>Number of ids the tokenizer can produce (base vocabulary plus added tokens).</summary>
    int VocabSize { get; }

    int? BosId { get; }
    int? EosId { get; }
    int? PadId { get; }

    /// <summary>Ids of <paramref name="text"/> without any special tokens added.</summary>
    int[] Encode(string text);

    string Decode(IEnumerable<int> ids);
}
