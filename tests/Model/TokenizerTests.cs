using System.Text.Json.Nodes;
using Forgetless.Model.Tokenizers;
using Forgetless.Tests.Model.Fixtures;
using Microsoft.ML.Tokenizers;

namespace Forgetless.Tests.Model;

public sealed class TokenizerTests
{
    private const string Paragraph =
        "The quick brown fox's 3 cubs weren't   sleeping; they'd run 1,234.5 km!\n\nNaïve café — 日本語 テキスト, emoji 🦊🎉 and tabs\tend.  \n";

    [Fact]
    public void Gpt2_vocab_and_merges_give_the_published_ids()
    {
        using var dir = new TempDir();
        var tokenizer = TokenizerLoader.Load(Gpt2TokenizerFiles.VocabMergesOnly(dir));
        tokenizer.Encode("Hello world").Should().Equal(15496, 995);
        tokenizer.Decode([15496, 995]).Should().Be("Hello world");
        tokenizer.VocabSize.Should().Be(50257);
        // No tokenizer_config.json: GPT2Tokenizer's default bos/eos.
        tokenizer.BosId.Should().Be(50256);
        tokenizer.EosId.Should().Be(50256);
        tokenizer.PadId.Should().BeNull();
    }

    [Fact]
    public void Tokenizer_json_both_merge_forms_vocab_merges_and_tiktoken_agree()
    {
        using var a = new TempDir();
        using var b = new TempDir();
        using var c = new TempDir();
        var fromVocab = TokenizerLoader.Load(Gpt2TokenizerFiles.VocabMergesOnly(a)).Encode(Paragraph);
        var fromJson = TokenizerLoader.Load(Gpt2TokenizerFiles.TokenizerJsonOnly(b)).Encode(Paragraph);
        var fromPairs = TokenizerLoader.Load(Gpt2TokenizerFiles.TokenizerJsonOnly(c, "tokenizer-pairs.json")).Encode(Paragraph);
        var tiktoken = TiktokenTokenizer.CreateForModel("gpt2").EncodeToIds(Paragraph);
        fromJson.Should().Equal(tiktoken);
        fromVocab.Should().Equal(tiktoken);
        fromPairs.Should().Equal(tiktoken);
    }

    [Fact]
    public void Own_tokenizer_json_reader_matches_the_hf_rust_library()
    {
        using var dir = new TempDir();
        var path = Gpt2TokenizerFiles.TokenizerJsonOnly(dir);
        AssertSameAsHf(path, Paragraph + "<|endoftext|>next document");
    }

    [Fact]
    public void Split_pre_tokenizer_sequence_matches_the_hf_rust_library()
    {
        // Llama 3 / Qwen2 style: a Split with their regex, then ByteLevel without its own regex.
        const string llama3 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
        using var dir = new TempDir();
        var path = Gpt2TokenizerFiles.TokenizerJsonOnly(dir, edit: json =>
        {
            json["normalizer"] = new JsonObject { ["type"] = "NFC" };
            json["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = llama3 }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false }),
            };
        });
        AssertSameAsHf(path, Paragraph + " 1234567 DON'T Shouting\r\n");
    }

    private static void AssertSameAsHf(string folder, string text)
    {
        var ours = TokenizerLoader.Load(folder).Encode(text);
        using var hf = new Tokenizers.DotNet.Tokenizer(vocabPath: Path.Combine(folder, "tokenizer.json"));
        var theirs = hf.Encode(text).Select(i => (int)i).ToArray();
        ours.Should().Equal(theirs);
    }

    [Fact]
    public void Round_trip_and_special_tokens_from_tokenizer_config()
    {
        using var dir = new TempDir();
        var path = Gpt2TokenizerFiles.TokenizerJsonOnly(dir);
        File.WriteAllText(Path.Combine(path, "tokenizer_config.json"),
            """{"bos_token": "<|endoftext|>", "eos_token": {"content": "<|endoftext|>", "special": true}, "pad_token": "!"}""");
        var tokenizer = TokenizerLoader.Load(path);
        tokenizer.Decode(tokenizer.Encode(Paragraph)).Should().Be(Paragraph);
        tokenizer.Encode("a<|endoftext|>b").Should().Equal(64, 50256, 65);
        tokenizer.BosId.Should().Be(50256);
        tokenizer.EosId.Should().Be(50256);
        tokenizer.PadId.Should().Be(0);
    }

    [Fact]
    public void Non_byte_level_tokenizers_are_refused_by_name()
    {
        using var dir = new TempDir();
        var path = Gpt2TokenizerFiles.TokenizerJsonOnly(dir, edit: json =>
            json["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "▁" });
        FluentActions.Invoking(() => TokenizerLoader.Load(path)).Should().Throw<NotSupportedException>()
            .WithMessage("tokenizer.json: pre_tokenizer 'Metaspace' is not supported*");
    }
}
