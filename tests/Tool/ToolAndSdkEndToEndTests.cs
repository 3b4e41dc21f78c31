using System.IO.Compression;
using System.Text.Json;
using System.Xml.Linq;
using Forgetless.Model.Devices;
using Forgetless.Stages;
using Forgetless.Tests.Corpora;
using Xunit.Abstractions;

namespace Forgetless.Tests.Tool;

/// <summary>
/// Forgetless used from another repository, end to end: pack the tool and the SDK into a folder feed, install the
/// tool into a tool path, scaffold a project with `forgetless init --example` in a temp folder outside this
/// repository, run a short pipeline with the installed tool, then build, rebuild (a no-op), pack and clean an
/// adapter project (.fgproj) with the packed SDK — and see a failed gate and a configuration error come back as
/// MSBuild errors with their codes, files and lines. Sizes and times go to the test output. The one test here that
/// packs and installs libtorch (~500 MB): about two minutes alone on 2 cores, more beside other work.
/// </summary>
[Trait("Category", "EndToEnd")]
public sealed class ToolAndSdkEndToEndTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDirectory temp = new();
    private readonly List<string> report = [];

#if DEBUG
    private const string Configuration = "Debug";
#else
    private const string Configuration = "Release";
#endif

    /// <summary>Tiny settings: a few fine-tuning steps, distill off, a few items per suite (the gates still judge them).</summary>
    private static readonly string[] Tiny =
    [
        "finetune.warmupSteps=0", "finetune.evalEvery=4", "finetune.checkpointEvery=4", "finetune.validationSequences=4",
        "finetune.heldoutWindows=2", "finetune.learningRate=0.01", "distill.enabled=false",
        "evaluate.suites.0.limit=4", "evaluate.suites.1.limit=8", "evaluate.suites.2.limit=4", "evaluate.suites.3.limit=4",
        "evaluate.suites.4.limit=8", "evaluate.bootstrapResamples=200", "evaluate.sampleGenerations=2",
        // A few steps and four items cannot show the word classes learned; these two bounds pass whatever was learned,
        // so the failing-gate step below is the only failure (a gain of 2 in accuracy is impossible).
        "evaluate.gates.3.minGain=-1", "evaluate.gates.4.min=0",
    ];

    public void Dispose()
    {
        output.WriteLine(string.Join('\n', report));
        temp.Dispose();
    }

    private string At(string relative) => Path.Combine(temp.Path, relative);

    private DotnetCommand.Result Step(string what, string program, IEnumerable<string> arguments, string folder, bool isolatedNuGet = true)
    {
        var result = DotnetCommand.Run(program, arguments, folder,
            isolatedNuGet ? new Dictionary<string, string> { ["NUGET_PACKAGES"] = At("nuget-packages") } : null);
        report.Add($"{what,-44} {result.Seconds,7:F1} s  exit {result.ExitCode}");
        return result;
    }

    private static string Because(DotnetCommand.Result r) => r.Output.Length > 6000 ? r.Output[^6000..] : r.Output;

    [Fact]
    public void Packs_installs_runs_the_tool_and_builds_an_adapter_project_with_the_sdk_outside_the_repository()
    {
        string dotnet = DotnetCommand.Dotnet, version = ToolVersion.Current;
        string feed = At("feed"), tool = At("tool"), work = At("work");
        Directory.CreateDirectory(work);
        temp.Path.Should().NotStartWith(RepoData.Root, "the project is used from outside the repository");

        // 1. Pack the tool and the SDK into a folder feed (this repository's packages stay in the usual NuGet cache).
        var pack = Step("dotnet pack stages (the tool)", dotnet, ["pack", Path.Combine(RepoData.Root, "stages", "Forgetless.Stages.csproj"),
            "-c", Configuration, "-o", feed, "--disable-build-servers", "-nodeReuse:false"], RepoData.Root, isolatedNuGet: false);
        pack.ExitCode.Should().Be(0, Because(pack));
        var sdkPack = Step("dotnet pack sdk", dotnet, ["pack", Path.Combine(RepoData.Root, "sdk", "Forgetless.Sdk.csproj"),
            "-c", Configuration, "-o", feed, "--disable-build-servers", "-nodeReuse:false"], RepoData.Root, isolatedNuGet: false);
        sdkPack.ExitCode.Should().Be(0, Because(sdkPack));
        foreach (var package in Directory.GetFiles(feed).Order())
            report.Add($"  {Path.GetFileName(package),-42} {new FileInfo(package).Length / 1e6,7:F1} MB");
        CheckToolPackage(Path.Combine(feed, $"forgetless.linux-x64.{version}.nupkg"));
        File.WriteAllText(At("nuget.config"), Feed(feed));

        // 2. Install the tool into a tool path from that feed alone.
        var install = Step("dotnet tool install --tool-path", dotnet, ["tool", "install", "forgetless", "--version", version,
            "--tool-path", tool, "--configfile", At("nuget.config")], temp.Path);
        install.ExitCode.Should().Be(0, Because(install));
        report.Add($"  installed: {FolderSize(tool) / 1e6:F0} MB in {tool}");
        string forgetless = Path.Combine(tool, "forgetless");

        // 3. Scaffold a project with the embedded example, and run a short pipeline against that folder's forgetless.json.
        var init = Step("forgetless init --example", forgetless, ["init", "--example"], work);
        init.ExitCode.Should().Be(0, Because(init));
        var run = Step("forgetless package (tiny settings)", forgetless, ["package", "--set", "finetune.steps=4", .. Tiny.SelectMany(s => new[] { "--set", s })], work);
        run.ExitCode.Should().Be(0, Because(run));
        File.Exists(Path.Combine(work, "runs", "package", "forgetless-adapter", "adapter_config.json")).Should().BeTrue();
        var verify = Step("forgetless verify", forgetless, ["verify", "runs/package/forgetless-adapter"], work);
        verify.ExitCode.Should().Be(0, Because(verify));

        // 4. An adapter project on the packed SDK: one more fine-tuning step than the run above, so the run store
        //    keeps prepare and reruns finetune and evaluate.
        File.WriteAllText(Path.Combine(work, "nuget.config"), Feed(feed));
        File.WriteAllText(Path.Combine(work, "MyAdapter.fgproj"), $"""
            <Project Sdk="Forgetless.Sdk/{version}">
              <PropertyGroup>
                <ForgetlessToolPath>../tool</ForgetlessToolPath>
                <ForgetlessSteps>5</ForgetlessSteps>
                <PackageId>MyAdapter</PackageId>
                <Version>0.2.0</Version>
              </PropertyGroup>
              <ItemGroup>
                <ForgetlessSetting Include="{string.Join(';', Tiny)}" />
              </ItemGroup>
            </Project>
            """);
        string[] msbuild = ["MyAdapter.fgproj", "--disable-build-servers", "-nodeReuse:false"];

        var build = Step("dotnet build MyAdapter.fgproj", dotnet, ["build", .. msbuild], work);
        build.ExitCode.Should().Be(0, Because(build));
        build.Output.Should().Contain("MyAdapter: forgetless evaluate: ran finetune, evaluate (prepare up to date)");
        File.Exists(Path.Combine(work, "bin", "adapter", "adapter_config.json")).Should().BeTrue(Because(build));
        var junit = XDocument.Load(Path.Combine(work, "TestResults", "MyAdapter.junit.xml")).Root!;
        (junit.Attribute("tests")!.Value, junit.Attribute("failures")!.Value).Should().Be(("5", "0"));

        var manifests = StageManifests(work);
        var noop = Step("dotnet build (no-op)", dotnet, ["build", .. msbuild], work);
        noop.ExitCode.Should().Be(0, Because(noop));
        noop.Output.Should().Contain("MyAdapter: forgetless evaluate: nothing to do: prepare, finetune, evaluate up to date");
        StageManifests(work).Should().Equal(manifests, "an up-to-date build changes nothing");

        var adapterPack = Step("dotnet pack MyAdapter.fgproj", dotnet, ["pack", .. msbuild], work);
        adapterPack.ExitCode.Should().Be(0, Because(adapterPack));
        foreach (var file in new[] { "MyAdapter.0.2.0.nupkg", "MyAdapter-0.2.0.tar.gz", "MyAdapter/adapter_config.json", "MyAdapter/SHA256SUMS" })
            File.Exists(Path.Combine(work, "bin", file)).Should().BeTrue(file);

        // 5. A gate that cannot pass (an accuracy gain of 2) fails the build with the gate's message, at its line.
        var failing = Step("dotnet build, failing gate", dotnet, ["build", .. msbuild, "-p:ForgetlessSettings=evaluate.gates.3.minGain=2",
            "-fileLoggerParameters:LogFile=errors.log;ErrorsOnly"], work);
        failing.ExitCode.Should().NotBe(0);
        var (line, column) = LineOf(Path.Combine(work, "forgetless.json"), "\"name\": \"postag-learned\"");
        string message = GateMessage(Path.Combine(work, "runs", "evaluate", "results.json"), "postag-learned");
        string expected = $"{work}/forgetless.json({line},{column}): error FL1001: release gate 'postag-learned' failed: {message} [{work}/MyAdapter.fgproj]";
        File.ReadAllLines(Path.Combine(work, "errors.log")).Should().ContainSingle(l => l.EndsWith(expected, StringComparison.Ordinal),
            "MSBuild's log has the error (after its node prefix, such as \"1:2>\")");
        XDocument.Load(Path.Combine(work, "TestResults", "MyAdapter.junit.xml")).Root!.Attribute("failures")!.Value.Should().Be("1",
            "the gates' JUnit file reaches CI when a gate fails too");

        // 6. A configuration error is an MSBuild error at the key.
        var bad = Step("dotnet build, configuration error", dotnet, ["build", .. msbuild, "-p:ForgetlessSettings=run.device=gpu"], work);
        bad.ExitCode.Should().NotBe(0);
        (line, column) = LineOf(Path.Combine(work, "forgetless.json"), "\"device\":");
        bad.Output.Should().Contain($"{work}/forgetless.json({line},{column}): error FL2001: --set run.device=gpu: 'run.device' = 'gpu' is not valid");

        // 7. Clean removes the stage outputs and what build and pack copied.
        var clean = Step("dotnet clean MyAdapter.fgproj", dotnet, ["clean", .. msbuild], work);
        clean.ExitCode.Should().Be(0, Because(clean));
        Directory.Exists(Path.Combine(work, "runs", "evaluate")).Should().BeFalse();
        Directory.Exists(Path.Combine(work, "bin")).Should().BeFalse();
        File.Exists(Path.Combine(work, "TestResults", "MyAdapter.junit.xml")).Should().BeFalse();
    }

    /// <summary>The tool package holds the executable, libtorch with the GLIBCXX fix, the example, and not libtorch's unused libraries.</summary>
    private void CheckToolPackage(string path)
    {
        using var zip = ZipFile.OpenRead(path);
        const string tools = "tools/net10.0/linux-x64/";
        var names = zip.Entries.Select(e => e.FullName).ToHashSet(StringComparer.Ordinal);
        names.Should().Contain([tools + "forgetless.dll", tools + "libtorch_cpu.so", tools + "DotnetToolSettings.xml",
            tools + "example/data/models/forgetless-base/model.safetensors", tools + "example/data/corpora/postag.train.jsonl.gz"]);
        names.Should().NotContain(tools + "libtorch_python.so");

        using var native = new MemoryStream();
        using (var stream = zip.GetEntry(tools + "libLibTorchSharp.so")!.Open()) stream.CopyTo(native);
        ElfVersionNeeds.WeakByName(native.ToArray()).Should().Contain("GLIBCXX_3.4.32", true,
            "the installed tool must load on Debian 12 and Ubuntu 22.04 whatever machine packed it");
    }

    private static string Feed(string folder) => $"""
        <?xml version="1.0" encoding="utf-8"?>
        <configuration>
          <packageSources>
            <clear />
            <add key="forgetless" value="{folder}" />
          </packageSources>
        </configuration>
        """;

    private static long FolderSize(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);

    private static Dictionary<string, string> StageManifests(string work) =>
        Directory.EnumerateFiles(Path.Combine(work, "runs"), "forgetless.stage.json", SearchOption.AllDirectories)
            .ToDictionary(f => f, File.ReadAllText);

    /// <summary>1-based line and column of the first line holding <paramref name="text"/>; the column of its first non-blank character.</summary>
    private static (int Line, int Column) LineOf(string file, string text)
    {
        var lines = File.ReadAllLines(file);
        int index = Array.FindIndex(lines, l => l.Contains(text, StringComparison.Ordinal));
        index.Should().BeGreaterThanOrEqualTo(0, $"{file} has {text}");
        return (index + 1, lines[index].Length - lines[index].TrimStart().Length + 1);
    }

    private static string GateMessage(string results, string gate)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(results));
        return document.RootElement.GetProperty("gates").EnumerateArray()
            .Single(g => g.GetProperty("name").GetString() == gate).GetProperty("message").GetString()!;
    }
}
