using Forgetless.Model.Tokenizers;
using Forgetless.Tokenization;

namespace Forgetless.Tests.Corpora;

/// <summary>The tokenizer.json we write must give, in Hugging Face's own tokenizers library, the ids our encoder gives.</summary>
public sealed class TokenizerCompatibilityTests
{
    private static int[] HuggingFaceIds(string tokenizerJson, string text)
    {
        var hf = new Tokenizers.DotNet.Tokenizer(vocabPath: tokenizerJson);
        return hf.Encode(text).Select(id => (int)id).ToArray();
    }

    [Fact]
    public void A_small_trained_tokenizer_encodes_identically_in_hf_tokenizers()
    {
        var model = BpeTrainer.Train(BpeTrainer.CountWords(BpeTrainerTests.SmallText), new BpeTrainerOptions { VocabSize = 420 });
        var dir = Path.Combine(Path.GetTempPath(), $"fl-hf-{Guid.NewGuid():N}");
        try
        {
            TokenizerFiles.Write(model, dir);
            var ours = model.ToTokenizer();
            foreach (var text in BpeTrainerTests.SmallText.Append(string.Join("\n", BpeTrainerTests.SmallText)))
                HuggingFaceIds(Path.Combine(dir, "tokenizer.json"), text).Should().Equal(ours.Encode(text), text);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void The_committed_tokenizer_encodes_held_out_text_identically_in_hf_tokenizers()
    {
        var tokenizerDir = Path.Combine(RepoData.Root, "data", "tokenizer");
        var ours = TokenizerFiles.Read(tokenizerDir).ToTokenizer();
        ours.VocabSize.Should().Be(8192);
        ours.EosId.Should().Be(8191);
        var paragraph = string.Join("\n", File.ReadLines(Path.Combine(RepoData.Root, "data", "corpora", "heldout.txt")).Skip(40).Take(12));
        paragraph.Length.Should().BeGreaterThan(1000);
        var ids = ours.Encode(paragraph);
        HuggingFaceIds(Path.Combine(tokenizerDir, "tokenizer.json"), paragraph).Should().Equal(ids);
        ours.Decode(ids).Should().Be(paragraph);

        // The GPT-2 style vocab.json + merges.txt pair reads in Microsoft.ML.Tokenizers too.
        using var vocab = File.OpenRead(Path.Combine(tokenizerDir, "vocab.json"));
        using var merges = File.OpenRead(Path.Combine(tokenizerDir, "merges.txt"));
        var codeGen = Microsoft.ML.Tokenizers.CodeGenTokenizer.Create(vocab, merges, addPrefixSpace: false, addBeginOfSentence: false, addEndOfSentence: false);
        codeGen.EncodeToIds(paragraph).Should().Equal(ids);
        ((double)System.Text.Encoding.UTF8.GetByteCount(paragraph) / ids.Length).Should().BeGreaterThan(3.0);
    }
}
