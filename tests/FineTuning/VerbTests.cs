using System.Text.Json.Nodes;
using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Stages;
using Forgetless.Tests.Peft;
using static TorchSharp.torch;

namespace Forgetless.Tests.FineTuning;

[Collection(TorchSerial.Name)]
public sealed class VerbTests
{
    [Fact]
    public async Task Score_and_generate_apply_an_adapter_folder()
    {
        using var f = new FineTuneFixture();
        var options = f.Options("finetune.method=adapter");
        using (var tuned = options.Apply(ModelFolder.LoadModel(f.ModelDirectory), seed: 3))
        {
            using (no_grad())
            using (var g = new Generator(4))
                foreach (var (_, p) in tuned.Trainable) p.add_(randn(p.shape, generator: g).mul(Scalars.Of(0.3)), Scalars.One);
            tuned.Method.Save(tuned, Path.Combine(f.Root, "adapter"), f.ModelDirectory);
        }
        var input = Path.Combine(f.Root, "rows.jsonl");
        File.WriteAllText(input, "{\"text\": \"the cat sat\"}\n{\"context\": \"spell cat is\", \"continuation\": \" c a t\"}\n");

        async Task<double> Score(params string[] extra)
        {
            var output = Path.Combine(f.Root, $"scored-{extra.Length}.jsonl");
            var code = await ForgetlessApp.RunAsync(["score", "--config", f.ConfigPath, "--model", f.ModelDirectory, "--input", input, "--output", output, .. extra]);
            code.Should().Be(0);
            return File.ReadAllLines(output).Sum(l => JsonNode.Parse(l)!["sum_logprob"]!.GetValue<double>());
        }
        var plain = await Score();
        var adapted = await Score("--adapter", Path.Combine(f.Root, "adapter"));
        adapted.Should().NotBe(plain);

        (await ForgetlessApp.RunAsync(["generate", "--config", f.ConfigPath, "--adapter", Path.Combine(f.Root, "adapter"), "--prompt", "spell cat is", "--max-new-tokens", "4"]))
            .Should().Be(0, "--model defaults to run.baseModel of the pipeline file");
    }
}
