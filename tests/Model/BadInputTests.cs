using System.Buffers.Binary;
using Forgetless.Model;
using Forgetless.Model.Safetensors;
using Forgetless.Tests.Model.Fixtures;

namespace Forgetless.Tests.Model;

/// <summary>Mistakes a user can make, and the messages they get.</summary>
public sealed class BadInputTests
{
    private static string WriteLlama(TempDir dir, TinySpec? spec = null) =>
        TinyCheckpoints.Create(spec ?? new TinySpec("llama", Layers: 1)).WriteTo(dir.Sub("m"));

    [Fact]
    public void Missing_folder_and_missing_config_are_named()
    {
        using var dir = new TempDir();
        FluentActions.Invoking(() => ModelFolder.LoadModel(dir.Sub("nope"))).Should().Throw<DirectoryNotFoundException>().WithMessage("*nope*");
        FluentActions.Invoking(() => ModelFolder.LoadModel(dir.Path)).Should().Throw<FileNotFoundException>().WithMessage("*config.json*");
    }

    [Fact]
    public void Missing_weights_are_named()
    {
        using var dir = new TempDir();
        var path = WriteLlama(dir);
        File.Delete(Path.Combine(path, "model.safetensors"));
        FluentActions.Invoking(() => ModelFolder.LoadModel(path)).Should().Throw<FileNotFoundException>().WithMessage("*model.safetensors*");
    }

    [Fact]
    public void Pickle_checkpoints_are_refused_with_a_way_out()
    {
        using var dir = new TempDir();
        var path = WriteLlama(dir);
        File.Move(Path.Combine(path, "model.safetensors"), Path.Combine(path, "pytorch_model.bin"));
        FluentActions.Invoking(() => ModelFolder.LoadModel(path)).Should().Throw<NotSupportedException>()
            .WithMessage("*pytorch_model.bin*execute arbitrary code*safe_serialization=True*");
    }

    [Fact]
    public void Truncated_safetensors_names_file_and_tensor()
    {
        using var dir = new TempDir();
        var path = WriteLlama(dir);
        var file = Path.Combine(path, "model.safetensors");
        var bytes = File.ReadAllBytes(file);
        File.WriteAllBytes(file, bytes[..^10]);
        FluentActions.Invoking(() => ModelFolder.LoadModel(path)).Should().Throw<InvalidDataException>()
            .WithMessage("model.safetensors: tensor 'model.norm.weight': data_offsets*outside*truncated*");
        File.WriteAllBytes(file, bytes[..20]);
        FluentActions.Invoking(() => ModelFolder.LoadModel(path)).Should().Throw<InvalidDataException>()
            .WithMessage("model.safetensors: header length*does not fit a file of 20 bytes*");
    }

    [Fact]
    public void Byte_count_that_disagrees_with_shape_is_refused()
    {
        using var dir = new TempDir();
        var file = dir.Sub("x.safetensors");
        var header = """{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"""u8.ToArray();
        var bytes = new byte[8 + header.Length + 20];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, header.Length);
        header.CopyTo(bytes, 8);
        File.WriteAllBytes(file, bytes);
        FluentActions.Invoking(() => SafetensorsFile.Open(file)).Should().Throw<InvalidDataException>()
            .WithMessage("x.safetensors: tensor 'w': has 20 bytes of data, expected 24 for F32 [2, 3]");
    }

    [Fact]
    public void Overlapping_tensors_are_refused()
    {
        using var dir = new TempDir();
        var file = dir.Sub("x.safetensors");
        var header = """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"""u8.ToArray();
        var bytes = new byte[8 + header.Length + 12];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, header.Length);
        header.CopyTo(bytes, 8);
        File.WriteAllBytes(file, bytes);
        FluentActions.Invoking(() => SafetensorsFile.Open(file)).Should().Throw<InvalidDataException>()
            .WithMessage("x.safetensors: tensor 'b' starts at data byte 4, expected 8*");
    }

    [Fact]
    public void Wrong_tensor_shape_names_tensor_and_both_shapes()
    {
        using var dir = new TempDir();
        var checkpoint = TinyCheckpoints.Create(new TinySpec("llama", Layers: 1));
        checkpoint.Tensors["model.layers.0.self_attn.q_proj.weight"] = new TestTensor([8, 4], new float[32]);
        FluentActions.Invoking(() => ModelFolder.LoadModel(checkpoint.WriteTo(dir.Path))).Should().Throw<InvalidDataException>()
            .WithMessage("model.safetensors: tensor 'model.layers.0.self_attn.q_proj.weight' has shape [8, 4], expected [8, 8]");
    }

    [Fact]
    public void Missing_required_tensor_is_named()
    {
        using var dir = new TempDir();
        var checkpoint = TinyCheckpoints.Create(new TinySpec("llama", Layers: 1));
        checkpoint.Tensors.Remove("model.layers.0.mlp.up_proj.weight");
        FluentActions.Invoking(() => ModelFolder.LoadModel(checkpoint.WriteTo(dir.Path))).Should().Throw<InvalidDataException>()
            .WithMessage("*missing required tensor 'model.layers.0.mlp.up_proj.weight'*");
    }

    [Fact]
    public void Unused_tensors_are_reported()
    {
        using var dir = new TempDir();
        var checkpoint = TinyCheckpoints.Create(new TinySpec("llama", Layers: 1));
        checkpoint.Tensors["score.weight"] = new TestTensor([2, 8], new float[16]);
        FluentActions.Invoking(() => ModelFolder.LoadModel(checkpoint.WriteTo(dir.Path))).Should().Throw<InvalidDataException>()
            .WithMessage("*'score.weight'*");
    }

    [Fact]
    public void Unknown_model_type_lists_supported_ones()
    {
        using var dir = new TempDir();
        var path = WriteLlama(dir);
        File.WriteAllText(Path.Combine(path, "config.json"), """{"model_type": "bert", "vocab_size": 10}""");
        FluentActions.Invoking(() => ModelFolder.LoadModel(path)).Should().Throw<NotSupportedException>()
            .WithMessage("config.json: model_type 'bert' is not supported; supported model types: gpt2, llama, mistral, qwen2");
    }

    [Fact]
    public void Missing_config_key_is_named()
    {
        FluentActions.Invoking(() => ModelConfig.FromJson("""{"model_type": "llama", "vocab_size": 10}"""))
            .Should().Throw<InvalidDataException>().WithMessage("config.json: missing required key 'hidden_size'");
    }

    [Fact]
    public void Mistral_refuses_sequences_beyond_its_sliding_window()
    {
        using var model = ModelFactory.Create(ModelConfig.FromJson(TinyCheckpoints.Create(new TinySpec("mistral", SlidingWindow: 4)).ConfigJson), 1);
        FluentActions.Invoking(() => model.Forward(LogitsAssert.Ids(1, 2, 3, 4, 5))).Should().Throw<NotSupportedException>()
            .WithMessage("*5 tokens exceeds sliding_window 4*");
    }

    [Fact]
    public void Tokenizer_larger_than_embedding_names_both_sizes()
    {
        using var dir = new TempDir();
        var path = WriteLlama(dir); // vocab_size 11
        File.WriteAllText(Path.Combine(path, "vocab.json"), System.Text.Json.JsonSerializer.Serialize(
            Enumerable.Range(0, 256).ToDictionary(i => Forgetless.Model.Tokenizers.ByteLevelAlphabet.ToChar((byte)i).ToString(), i => i)));
        File.WriteAllText(Path.Combine(path, "merges.txt"), "#version: 0.2\n");
        FluentActions.Invoking(() => ModelFolder.Load(path)).Should().Throw<InvalidDataException>()
            .WithMessage("*256 ids*only 11 rows*");
    }
}
