using Forgetless.Model.Tokenizers;

namespace Forgetless.Tests.Data;

/// <summary>A deterministic stand-in tokenizer: one id per UTF-16 char (char + 3); 0 pad, 1 bos, 2 eos.</summary>
internal sealed class CharTokenizer(bool withBos = false) : ITokenizer
{
    public int VocabSize => char.MaxValue + 4;
    public int? BosId => withBos ? 1 : null;
    public int? EosId => 2;
    public int? PadId => 0;

    public int[] Encode(string text)
    {
        var ids = new int[text.Length];
        for (var i = 0; i < text.Length; i++) ids[i] = text[i] + 3;
        return ids;
    }

    public string Decode(IEnumerable<int> ids) => new(ids.Where(i => i >= 3).Select(i => (char)(i - 3)).ToArray());
}
