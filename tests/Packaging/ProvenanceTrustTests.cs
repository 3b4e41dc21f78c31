using Forgetless.Model;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Forgetless.Model.Safetensors;
using Forgetless.Packaging;
using Forgetless.Peft;
using Forgetless.Runs;
using Forgetless.Stages.Package;
using Forgetless.Tests.Peft;
using Microsoft.Extensions.Logging.Abstractions;

namespace Forgetless.Tests.Packaging;

/// <summary>
/// Issue 20, items 1 and 2: a release verdict is bound to the weights it judged. Package refuses any other adapter
/// (it used to package any folder named by package.adapter with this run's "passed" verdicts), and verify recomputes
/// the weights' digests and rechecks every verdict against its observation (it used to call a package with lora_B
/// scaled by 1000, or with an observed value edited past its threshold, "intact" once SHA256SUMS was rewritten).
/// Signed packages carry an in-toto statement in a DSSE envelope that verify checks against a public key.
/// </summary>
[Collection(TorchSerial.Name)]
public sealed class ProvenanceTrustTests : IDisposable
{
    private readonly TempDirectory dir = new();
    private readonly string basePath;
    private readonly string judged;
    private readonly string other;

    public ProvenanceTrustTests()
    {
        basePath = PackageFixtures.SaveBase(dir.Path, PackageFixtures.Llama());
        judged = PackageFixtures.SaveLora(dir.Path, basePath, PackageFixtures.QV, name: "judged");
        other = PackageFixtures.SaveLora(dir.Path, basePath, PackageFixtures.QV, new LoraOptions { R = 2, Alpha = 4, Seed = 9 }, name: "other");
    }

    public void Dispose() => dir.Dispose();

    private string Evaluation(string root) => PackageFixtures.EvaluateOutput(root, passed: true, judgedAdapter: judged, baseModel: basePath);

    private PackageStage Stage(string root, string adapter, PackageOptions? options = null) =>
        new(StageContexts.For(root, "run.baseModel=" + basePath, "run.root=" + root), options ?? new PackageOptions(),
            basePath, candidateStage: null, adapterFolder: adapter, usesPreparedData: false, PackageFixtures.Config(), "test");

    private string Package(PackageOptions? options = null, string name = "out")
    {
        string evaluation = Evaluation(Path.Combine(dir.Path, "runs-" + name));
        return PackageFixtures.Packager(judged, basePath, evaluation, options).Build(Path.Combine(dir.Path, name)).Folder;
    }

    /// <summary>A P-256 key pair as PEM files (what `openssl ecparam -genkey -name prime256v1` would give).</summary>
    private (string PrivatePem, string PublicPem) KeyPair(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        string privatePath = dir.File($"{name}.key.pem", key.ExportECPrivateKeyPem());
        string publicPath = dir.File($"{name}.pub.pem", key.ExportSubjectPublicKeyInfoPem());
        return (privatePath, publicPath);
    }

    private static string Sha256(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    /// <summary>Multiplies every lora_B by 1000 — the tampering of issue 20, item 2 — and rewrites SHA256SUMS to match.</summary>
    private static void ScaleLoraB(string package)
    {
        string weights = Path.Combine(package, AdapterTensors.WeightsFile);
        var tensors = SafetensorsFile.Open(weights).ReadAll();
        foreach (var (name, t) in tensors.Where(t => t.Key.Contains("lora_B")).ToList()) tensors[name] = t.mul(Scalars.Of(1000));
        SafetensorsWriter.Write(weights, tensors);
        RewriteSums(package);
    }

    /// <summary>SHA256SUMS recomputed over the package as it is now, in sha256sum's format (by hand, not by Forgetless).</summary>
    private static void RewriteSums(string package)
    {
        var lines = Directory.EnumerateFiles(package, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(package, f).Replace('\\', '/'))
            .Where(f => f != "SHA256SUMS" && f != "provenance.intoto.jsonl")
            .Order(StringComparer.Ordinal)
            .Select(f => $"{Sha256(Path.Combine(package, f))}  {f}\n");
        File.WriteAllText(Path.Combine(package, "SHA256SUMS"), string.Concat(lines));
    }

    private static void EditManifest(string package, Action<JsonObject> edit)
    {
        string path = Path.Combine(package, "forgetless.manifest.json");
        var manifest = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(manifest);
        File.WriteAllText(path, manifest.ToJsonString());
    }

    [Fact]
    public async Task Package_refuses_an_adapter_that_is_not_the_one_evaluate_judged()
    {
        string root = Path.Combine(dir.Path, "runs");
        Evaluation(root);
        var store = new RunStore(root, "test", NullLogger.Instance);

        var bypass = await store.RunAsync(Stage(root, other), force: false, CancellationToken.None);

        bypass.Manifest.Failure.Should().StartWith("refusing to package").And.Contain("not the adapter the evaluate stage judged");
        Directory.EnumerateFileSystemEntries(Path.Combine(root, "package")).Select(Path.GetFileName).Should().Equal(StageManifest.FileName);

        // A byte-for-byte copy of the judged adapter is the judged adapter, wherever it lies.
        string copy = Path.Combine(dir.Path, "copy-of-judged");
        Directory.CreateDirectory(copy);
        foreach (var file in Directory.GetFiles(judged)) File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
        var packaged = await store.RunAsync(Stage(root, copy), force: false, CancellationToken.None);
        packaged.Manifest.Failure.Should().BeNull();
    }

    [Fact]
    public async Task Package_refuses_when_the_evaluation_records_no_weights_or_a_verdict_that_contradicts_its_numbers()
    {
        string root = Path.Combine(dir.Path, "runs");
        PackageFixtures.EvaluateOutput(root, passed: true); // an evaluate output without the record of what it judged
        var store = new RunStore(root, "test", NullLogger.Instance);
        (await store.RunAsync(Stage(root, judged), false, CancellationToken.None)).Manifest.Failure.Should().Contain(JudgedWeights.FileName);

        string edited = Path.Combine(dir.Path, "runs-edited");
        string evaluation = Evaluation(edited);
        var results = JsonNode.Parse(File.ReadAllText(Path.Combine(evaluation, "results.json")))!;
        results["gates"]![0]!["interval"] = new JsonArray(0.45, 0.55); // past the 0.15 threshold, still marked passed
        File.WriteAllText(Path.Combine(evaluation, "results.json"), results.ToJsonString());
        var refused = await new RunStore(edited, "test", NullLogger.Instance).RunAsync(Stage(edited, judged), false, CancellationToken.None);
        refused.Manifest.Failure.Should().StartWith("refusing to package").And.Contain("heldout-forgetting");
    }

    [Fact]
    public void Verify_refuses_weights_scaled_after_packaging_even_with_SHA256SUMS_rewritten()
    {
        string package = Package();
        PackageVerifier.Verify(package, basePath).Problems.Should().BeEmpty();

        ScaleLoraB(package);

        var report = PackageVerifier.Verify(package, basePath);
        report.Ok.Should().BeFalse();
        report.Problems.Should().Contain(p => p.Contains(AdapterTensors.WeightsFile) && p.Contains("not the weights"));
    }

    [Fact]
    public void Verify_refuses_an_observation_edited_past_its_threshold_while_the_verdict_still_says_pass()
    {
        string package = Package();
        EditManifest(package, m => m["evaluation"]!["gates"]![0]!["observed"] = 0.5);
        RewriteSums(package);
        var report = PackageVerifier.Verify(package);
        report.Ok.Should().BeFalse();
        report.Problems.Should().Contain(p => p.Contains("heldout-forgetting") && p.Contains("observed 0.5"));

        string again = Package(name: "again");
        EditManifest(again, m =>
        {
            m["evaluation"]!["gates"]![0]!["observed"] = 0.5;
            m["evaluation"]!["gates"]![0]!["candidate"] = 2.9;
            m["evaluation"]!["gates"]![0]!["interval"] = new JsonArray(0.45, 0.55);
        });
        RewriteSums(again);
        PackageVerifier.Verify(again).Problems.Should().Contain(p => p.Contains("heldout-forgetting") && p.Contains("recorded as passed"));
    }

    [Fact]
    public void A_signed_package_verifies_with_its_public_key_and_fails_with_another_or_when_unsigned()
    {
        var (privateKey, publicKey) = KeyPair("release");
        var (_, otherPublic) = KeyPair("other");
        string signed = Package(new PackageOptions { SigningKey = privateKey }, "signed");

        var good = PackageVerifier.Verify(signed, basePath, publicKey: publicKey);
        good.Problems.Should().BeEmpty();
        good.Notes.Should().Contain(n => n.StartsWith("signature: valid"));

        PackageVerifier.Verify(signed, publicKey: otherPublic).Problems.Should().Contain(p => p.Contains("signature") && p.Contains("does not verify"));
        PackageVerifier.Verify(Package(name: "unsigned"), publicKey: publicKey).Problems.Should().Contain(p => p.Contains("not signed"));
        PackageVerifier.Verify(signed).Notes.Should().Contain(n => n.Contains("signed") && n.Contains("--key"));

        // The key can come from an environment variable (how a CI secret arrives).
        string variable = "TRUST_TEST_SIGNING_KEY_" + Guid.NewGuid().ToString("N")[..8];
        Environment.SetEnvironmentVariable(variable, File.ReadAllText(privateKey));
        try
        {
            string fromEnvironment = Package(new PackageOptions { SigningKey = "env:" + variable }, "env-signed");
            PackageVerifier.Verify(fromEnvironment, publicKey: publicKey).Problems.Should().BeEmpty();
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public void Tampering_with_a_signed_package_is_refused_with_the_key_even_when_every_digest_was_forged_to_match()
    {
        var (privateKey, publicKey) = KeyPair("release");
        string package = Package(new PackageOptions { SigningKey = privateKey }, "signed");
        ScaleLoraB(package);
        var scaled = PackageVerifier.Verify(package, publicKey: publicKey);
        scaled.Problems.Should().Contain(p => p.Contains("not the weights"));

        // A thorough forger also rewrites the manifest's and the statement's digests; only the signature stops that.
        string weights = Sha256(Path.Combine(package, AdapterTensors.WeightsFile));
        EditManifest(package, m =>
        {
            foreach (var file in m["adapter"]!["files"]!.AsArray())
                if (file!["path"]!.GetValue<string>() == AdapterTensors.WeightsFile) file["sha256"] = weights;
        });
        string statementPath = Path.Combine(package, "provenance.intoto.json");
        var statement = JsonNode.Parse(File.ReadAllText(statementPath))!;
        foreach (var subject in statement["subject"]!.AsArray())
        {
            string name = subject!["name"]!.GetValue<string>();
            subject["digest"]!["sha256"] = Sha256(Path.Combine(package, name));
        }
        File.WriteAllText(statementPath, statement.ToJsonString());
        RewriteSums(package);

        var forged = PackageVerifier.Verify(package, publicKey: publicKey);
        forged.Ok.Should().BeFalse();
        forged.Problems.Should().Contain(p => p.Contains("signed statement"));
    }

    [Fact]
    public void The_provenance_is_an_in_toto_statement_with_a_SLSA_predicate_whose_subjects_are_the_package_files_and_the_envelope_is_DSSE()
    {
        var (privateKey, publicKey) = KeyPair("release");
        string package = Package(new PackageOptions { SigningKey = privateKey }, "signed");
        string statementPath = Path.Combine(package, "provenance.intoto.json");
        var statement = JsonNode.Parse(File.ReadAllText(statementPath))!;

        statement["_type"]!.GetValue<string>().Should().Be("https://in-toto.io/Statement/v1");
        statement["predicateType"]!.GetValue<string>().Should().Be("https://slsa.dev/provenance/v1");
        var subjects = statement["subject"]!.AsArray().ToDictionary(s => s!["name"]!.GetValue<string>(), s => s!["digest"]!["sha256"]!.GetValue<string>());
        subjects.Keys.Should().BeEquivalentTo("adapter_config.json", "adapter_model.safetensors", "README.md", "forgetless.manifest.json");
        foreach (var (name, digest) in subjects) digest.Should().Be(Sha256(Path.Combine(package, name)), name);

        var definition = statement["predicate"]!["buildDefinition"]!;
        definition["buildType"]!.GetValue<string>().Should().NotBeEmpty();
        definition["externalParameters"]!["config"].Should().NotBeNull();
        var dependencies = definition["resolvedDependencies"]!.AsArray();
        foreach (var file in new[] { "config.json", "model.safetensors" })
            dependencies.Should().Contain(d => d!["name"]!.GetValue<string>() == "base_model/" + file
                                               && d["digest"]!["sha256"]!.GetValue<string>() == Sha256(Path.Combine(basePath, file)));
        foreach (var file in Directory.GetFiles(judged))
            dependencies.Should().Contain(d => d!["name"]!.GetValue<string>() == "evaluated_adapter/" + Path.GetFileName(file)
                                               && d["digest"]!["sha256"]!.GetValue<string>() == Sha256(file));
        statement["predicate"]!["runDetails"]!["builder"]!["id"]!.GetValue<string>().Should().NotBeEmpty();

        // The DSSE envelope: payload = the statement's bytes; signature over PAE, computed here by hand.
        var envelope = JsonNode.Parse(File.ReadAllLines(Path.Combine(package, "provenance.intoto.jsonl")).Single())!;
        envelope["payloadType"]!.GetValue<string>().Should().Be("application/vnd.in-toto+json");
        var payload = Convert.FromBase64String(envelope["payload"]!.GetValue<string>());
        payload.Should().Equal(File.ReadAllBytes(statementPath));
        var pae = Encoding.UTF8.GetBytes($"DSSEv1 28 application/vnd.in-toto+json {payload.Length} ").Concat(payload).ToArray();
        using var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(publicKey));
        var signature = envelope["signatures"]![0]!;
        key.VerifyData(pae, Convert.FromBase64String(signature["sig"]!.GetValue<string>()), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence)
            .Should().BeTrue();
        signature["keyid"]!.GetValue<string>().Should().Be(Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo())));
    }

    [Fact]
    public void Two_signed_builds_of_the_same_inputs_compare_equal_by_what_they_sign_and_differ_with_another_key()
    {
        var (privateKey, _) = KeyPair("release");
        var (otherKey, _) = KeyPair("other");
        string a = Path.GetDirectoryName(Package(new PackageOptions { SigningKey = privateKey }, "a"))!;
        string b = Path.GetDirectoryName(Package(new PackageOptions { SigningKey = privateKey }, "b"))!;
        string c = Path.GetDirectoryName(Package(new PackageOptions { SigningKey = otherKey }, "c"))!;
        File.ReadAllBytes(Path.Combine(a, "forgetless-adapter", "provenance.intoto.jsonl"))
            .Should().NotEqual(File.ReadAllBytes(Path.Combine(b, "forgetless-adapter", "provenance.intoto.jsonl")), "ECDSA signatures are randomized");

        PackageComparison.Compare(a, b).Should().BeEmpty();
        PackageComparison.Compare(Path.Combine(a, "forgetless-adapter-0.1.0.tar.gz"), Path.Combine(b, "forgetless-adapter-0.1.0.tar.gz")).Should().BeEmpty();
        PackageComparison.Compare(a, c).Select(d => d.Path).Should().Contain("forgetless-adapter/provenance.intoto.jsonl");
    }

    [Fact]
    public void The_DSSE_specification_test_vector_verifies()
    {
        // secure-systems-lab/dsse protocol.md: ECDSA P-256 + SHA-256, signature as raw r||s.
        var parameters = new ECParameters
        {
            Curve = ECCurve.NamedCurves.nistP256,
            Q = new ECPoint
            {
                X = Big("46950820868899156662930047687818585632848591499744589407958293238635476079160"),
                Y = Big("5640078356564379163099075877009565129882514886557779369047442380624545832820"),
            },
        };
        using var key = ECDsa.Create(parameters);
        var envelope = JsonNode.Parse("""
            {"payload": "aGVsbG8gd29ybGQ=",
             "payloadType": "http://example.com/HelloWorld",
             "signatures": [{"sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="}]}
            """)!.AsObject();

        Encoding.UTF8.GetString(Dsse.Pae("http://example.com/HelloWorld", "hello world"u8.ToArray())).Should().Be("DSSEv1 29 http://example.com/HelloWorld 11 hello world");
        Dsse.Verify(envelope, key).Should().BeNull();
        envelope["payload"] = Convert.ToBase64String("hello worle"u8.ToArray());
        Dsse.Verify(envelope, key).Should().NotBeNull();

        static byte[] Big(string decimalText)
        {
            var bytes = System.Numerics.BigInteger.Parse(decimalText).ToByteArray(isUnsigned: true, isBigEndian: true);
            return new byte[32 - bytes.Length].Concat(bytes).ToArray();
        }
    }
}
