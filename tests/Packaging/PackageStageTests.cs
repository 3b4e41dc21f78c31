using System.Text.Json.Nodes;
using Forgetless.Packaging;
using Forgetless.Peft;
using Forgetless.Runs;
using Forgetless.Stages.Package;
using Forgetless.Tests.Peft;
using Microsoft.Extensions.Logging.Abstractions;

namespace Forgetless.Tests.Packaging;

/// <summary>The package stage under the run store, verify on its output, and rebuild comparison.</summary>
[Collection(TorchSerial.Name)]
public sealed class PackageStageTests
{
    private static PackageStage Stage(string baseModel, string adapter, string root, PackageOptions? options = null) =>
        new(StageContexts.For(root, "run.baseModel=" + baseModel, "run.root=" + root), options ?? new PackageOptions { ExportMerged = true, Nupkg = true },
            baseModel, candidateStage: null, adapterFolder: adapter, usesPreparedData: false, PackageFixtures.Config(), "test");

    [Fact]
    public async Task A_failed_gate_in_the_evaluate_manifest_or_results_makes_the_stage_refuse_without_packaging()
    {
        using var dir = new TempDirectory();
        string basePath = PackageFixtures.SaveBase(dir.Path, PackageFixtures.Llama());
        string adapter = PackageFixtures.SaveLora(dir.Path, basePath, PackageFixtures.QV);

        foreach (bool manifestFailure in new[] { true, false })
        {
            string root = Path.Combine(dir.Path, "runs-" + manifestFailure);
            PackageFixtures.EvaluateOutput(root, passed: false, manifestFailure);
            var store = new RunStore(root, "test", NullLogger.Instance);
            var result = await store.RunAsync(Stage(basePath, adapter, root), force: false, CancellationToken.None);

            result.Manifest.Failure.Should().StartWith("refusing to package").And.Contain("heldout-forgetting");
            Directory.EnumerateFileSystemEntries(Path.Combine(root, "package")).Select(Path.GetFileName).Should().Equal(StageManifest.FileName);
        }
        // The packager itself refuses too, whoever calls it.
        string failed = Path.Combine(dir.Path, "runs-True", "evaluate");
        FluentActions.Invoking(() => PackageFixtures.Packager(adapter, basePath, failed).Build(Path.Combine(dir.Path, "direct")))
            .Should().Throw<PackageException>().WithMessage("refusing to package*");
    }

    [Fact]
    public async Task A_passed_evaluation_is_packaged_and_a_rebuild_in_a_fresh_root_gives_the_same_bytes()
    {
        using var dir = new TempDirectory();
        string basePath = PackageFixtures.SaveBase(dir.Path, PackageFixtures.Llama());
        string adapter = PackageFixtures.SaveLora(dir.Path, basePath, PackageFixtures.QV);
        var outputs = new List<string>();
        foreach (var name in new[] { "runs", "rebuild" })
        {
            string root = Path.Combine(dir.Path, name);
            PackageFixtures.EvaluateOutput(root, passed: true, judgedAdapter: adapter, baseModel: basePath); // a fresh date and config path each time: must not leak into the package
            var store = new RunStore(root, "test", NullLogger.Instance);
            var result = await store.RunAsync(Stage(basePath, adapter, root), false, CancellationToken.None);
            result.Manifest.Failure.Should().BeNull();
            outputs.Add(store.StageDirectory("package"));
        }

        string package = Path.Combine(outputs[0], "forgetless-adapter");
        Sha256Sums.Files(package).Should().Equal(
            "README.md", "SHA256SUMS", "adapter_config.json", "adapter_model.safetensors", "forgetless.manifest.json",
            "merged/config.json", "merged/model.safetensors", "provenance.intoto.json");
        File.Exists(Path.Combine(outputs[0], "forgetless-adapter-0.1.0.tar.gz")).Should().BeTrue();
        File.Exists(Path.Combine(outputs[0], "forgetless-adapter.0.1.0.nupkg")).Should().BeTrue();
        PackageComparison.Compare(outputs[0], outputs[1]).Should().BeEmpty();

        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(package, Provenance.FileName)))!;
        manifest["source"]!["revision"]!.GetValue<string>().Should().MatchRegex("^([0-9a-f]{40}|unknown)$");
        manifest["base_model"]!["files"]!.AsArray().Select(f => f!["path"]!.GetValue<string>()).Should().Equal("config.json", "model.safetensors");
        manifest["evaluation"]!["passed"]!.GetValue<bool>().Should().BeTrue();
        manifest["evaluation"]!.AsObject().ContainsKey("date").Should().BeFalse();
        manifest["config"]!["sections"]!["run"]!.AsObject().ContainsKey("root").Should().BeFalse();
        manifest["tools"]!.AsObject().Select(t => t.Key).Should().Contain(["forgetless", "torchsharp", "libtorch", "dotnet"]);
        File.ReadAllText(Path.Combine(package, "README.md")).Should().Contain("library_name: peft")
            .And.Contain("| heldout | old | bits_per_byte | 2.4 | 2.5 | 0.1 | [0.05, 0.15] |").And.Contain("| heldout-forgetting |");

        // The archive and the folder verify; the adapter fits its base.
        foreach (var target in new[] { package, Path.Combine(outputs[0], "forgetless-adapter-0.1.0.tar.gz"), Path.Combine(outputs[0], "forgetless-adapter.0.1.0.nupkg") })
        {
            var report = PackageVerifier.Verify(target, target == package ? basePath : null);
            report.Problems.Should().BeEmpty(target);
        }
        PackageVerifier.Verify(package, basePath).Notes.Should().Contain(n => n.StartsWith("adapter: LORA applies"));
    }

    [Fact]
    public void A_tampered_file_fails_verify_naming_it_and_a_changed_archive_fails_compare()
    {
        using var dir = new TempDirectory();
        string basePath = PackageFixtures.SaveBase(dir.Path, PackageFixtures.Llama());
        string adapter = PackageFixtures.SaveLora(dir.Path, basePath, PackageFixtures.QV);
        string evaluation = PackageFixtures.EvaluateOutput(Path.Combine(dir.Path, "runs"), passed: true, judgedAdapter: adapter, baseModel: basePath);
        var result = PackageFixtures.Packager(adapter, basePath, evaluation).Build(Path.Combine(dir.Path, "out"));
        PackageVerifier.Verify(result.Folder, basePath).Ok.Should().BeTrue();

        var bytes = File.ReadAllBytes(Path.Combine(result.Folder, AdapterTensors.WeightsFile));
        bytes[^1] ^= 0x40;
        File.WriteAllBytes(Path.Combine(result.Folder, AdapterTensors.WeightsFile), bytes);
        File.WriteAllText(Path.Combine(result.Folder, "extra.txt"), "added later");

        var report = PackageVerifier.Verify(result.Folder, basePath);
        report.Ok.Should().BeFalse();
        report.Problems.Should().Contain(p => p.StartsWith("adapter_model.safetensors: checksum mismatch"));
        report.Problems.Should().Contain(p => p.StartsWith("extra.txt: not listed"));

        // Compare names the first differing file.
        string again = PackageFixtures.Packager(adapter, basePath, evaluation).Build(Path.Combine(dir.Path, "again")).Folder;
        PackageComparison.Compare(again, result.Folder).Select(d => d.Path).Should().Equal("adapter_model.safetensors", "extra.txt");
    }

    [Fact]
    public void Recorded_verdicts_are_rechecked()
    {
        var manifest = new JsonObject
        {
            ["evaluation"] = new JsonObject
            {
                ["passed"] = true,
                ["gates"] = new JsonArray(new JsonObject { ["name"] = "g1", ["passed"] = true }, new JsonObject { ["name"] = "g2", ["passed"] = false, ["message"] = "g2 failed" }),
            },
        };
        PackageVerifier.RecheckVerdicts(manifest).Should().Contain(p => p.Contains("'g2' is recorded as failed")).And.Contain(p => p.Contains("contradicts"));
        PackageVerifier.RecheckVerdicts(new JsonObject()).Should().ContainSingle().Which.Should().Contain("no recorded evaluation");
    }
}
