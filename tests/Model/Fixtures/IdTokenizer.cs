using Forgetless.Model.Tokenizers;

namespace Forgetless.Tests.Model.Fixtures;

/// <summary>A tokenizer for tiny models: each character is a digit-like id 'a' + id; id 1 is EOS, 0 is BOS.</summary>
public sealed class IdTokenizer(int vocabSize) : ITokenizer
{
    public int VocabSize => vocabSize;
    public int? BosId => 0;
    public int? EosId => 1;
    public int? PadId => null;

    public int[] Encode(string text) => text.Select(c => (c - 'a') % vocabSize).ToArray();

    public string Decode(IEnumerable<int> ids) => new(ids.Select(i => (char)('a' + i)).ToArray());
}
