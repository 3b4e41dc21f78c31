using Forgetless.Model;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Forgetless.Model.Safetensors;
using Forgetless.Peft;
using Forgetless.Tests.FineTuning;

namespace Forgetless.Tests.Cli;

/// <summary>
/// Issue 20, items 1 and 2, the way a CI release job meets them: the forgetless executable runs the whole gated
/// pipeline on a tiny model, then `package --set package.adapter=DIR` is tried with an adapter the gates never judged,
/// and `verify --key` checks a signed package the way a deploy step would.
/// </summary>
public sealed class ReleaseCliTests : IDisposable
{
    private readonly FineTuneFixture f = new();
    private readonly Dictionary<string, string?> environment = [];

    public ReleaseCliTests()
    {
        // A forgetting gate this tiny model passes: held-out bits per byte may not get 100× worse.
        var config = JsonNode.Parse(File.ReadAllText(f.ConfigPath))!.AsObject();
        File.WriteAllLines(Path.Combine(f.Root, "heldout.jsonl"),
            File.ReadLines(Path.Combine(f.Root, "heldout.txt")).Take(12).Select(line => JsonSerializer.Serialize(new { text = line })));
        config["evaluate"] = JsonNode.Parse("""
            {
              "suites": [ { "name": "heldout", "type": "perplexity", "role": "old", "path": "heldout.jsonl" } ],
              "gates": [ { "name": "heldout-forgetting", "suite": "heldout", "metric": "bits_per_byte", "maxDrop": 100, "relative": true } ],
              "bootstrapResamples": 100,
              "sampleGenerations": 0
            }
            """);
        config["distill"] = new JsonObject { ["enabled"] = false };
        File.WriteAllText(f.ConfigPath, config.ToJsonString());
    }

    public void Dispose() => f.Dispose();

    private Task<ForgetlessProcess.Result> Run(params string[] args) =>
        ForgetlessProcess.RunAsync(f.Root, environment, [args[0], "--set", "run.threads=1", .. args[1..]]);

    private string Package => Path.Combine(f.RunRoot, "package", "forgetless-adapter");

    private static string Sha256(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    [Fact]
    public async Task The_release_packages_only_the_judged_adapter_and_a_signed_package_verifies_only_with_its_key()
    {
        var release = await Run("package");
        release.ExitCode.Should().Be(0, release.ToString());

        // The evaluate stage recorded the digest of exactly the adapter finetune wrote (computed here by hand).
        string adapter = Path.Combine(f.RunRoot, "finetune", "adapter");
        var lines = Directory.GetFiles(adapter).Select(Path.GetFileName).Order(StringComparer.Ordinal).Select(n => $"{n}\t{Sha256(Path.Combine(adapter, n!))}");
        string digest = Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(string.Join('\n', lines))));
        var judged = JsonNode.Parse(File.ReadAllText(Path.Combine(f.RunRoot, "evaluate", "judged-weights.json")))!;
        judged["adapter"]!["digest"]!.GetValue<string>().Should().Be(digest);
        (await Run("verify", Package, "--base", "model")).ExitCode.Should().Be(0);

        // The bypass: another adapter (the judged one with lora_B scaled by 1000) through package.adapter.
        string other = Path.Combine(f.Root, "other-adapter");
        Directory.CreateDirectory(other);
        foreach (var file in Directory.GetFiles(adapter)) File.Copy(file, Path.Combine(other, Path.GetFileName(file)));
        var tensors = SafetensorsFile.Open(Path.Combine(other, AdapterTensors.WeightsFile)).ReadAll();
        foreach (var (name, t) in tensors.Where(t => t.Key.Contains("lora_B")).ToList()) tensors[name] = t.mul(Scalars.Of(1000));
        SafetensorsWriter.Write(Path.Combine(other, AdapterTensors.WeightsFile), tensors);
        var bypass = await Run("package", "--set", "package.adapter=other-adapter");
        bypass.ExitCode.Should().Be(4, bypass.ToString());
        bypass.Output.Should().Contain("not the adapter the evaluate stage judged");
        Directory.Exists(Package).Should().BeFalse("nothing is packaged for an adapter the gates did not judge");

        // Signed in CI: the key arrives in an environment variable; the deploy step verifies with the public key.
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        string publicKey = Path.Combine(f.Root, "release.pub.pem"), otherPublic = Path.Combine(f.Root, "other.pub.pem");
        File.WriteAllText(publicKey, key.ExportSubjectPublicKeyInfoPem());
        File.WriteAllText(otherPublic, otherKey.ExportSubjectPublicKeyInfoPem());
        environment["RELEASE_SIGNING_KEY"] = key.ExportPkcs8PrivateKeyPem();
        var signed = await Run("package", "--set", "package.signingKey=env:RELEASE_SIGNING_KEY");
        signed.ExitCode.Should().Be(0, signed.ToString());
        signed.Output.Should().NotContain("BEGIN PRIVATE KEY");
        File.ReadAllText(Path.Combine(f.RunRoot, "package", "forgetless.stage.json")).Should().NotContain("RELEASE_SIGNING_KEY", "where the key lies is not recorded");
        environment.Clear();

        string archive = Path.Combine(f.RunRoot, "package", "forgetless-adapter-0.1.0.tar.gz");
        var verified = await Run("verify", archive, "--key", publicKey);
        verified.ExitCode.Should().Be(0, verified.ToString());
        verified.Stdout.Should().Contain("signature: valid");
        var wrongKey = await Run("verify", archive, "--key", otherPublic);
        wrongKey.ExitCode.Should().Be(1, wrongKey.ToString());
        wrongKey.Stdout.Should().Contain("does not verify");
        var notAKey = await Run("verify", archive, "--key", "heldout.jsonl");
        notAKey.ExitCode.Should().Be(2, notAKey.ToString());
        notAKey.HasStackTrace.Should().BeFalse();
    }
}
