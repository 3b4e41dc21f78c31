using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Forgetless.Configuration;
using Forgetless.Evaluation;
using Forgetless.Stages;
using Forgetless.Stages.Verbs.Init;
using Forgetless.Tests.Corpora;

namespace Forgetless.Tests.Stages;

public sealed class InitVerbTests : IDisposable
{
    private readonly TempDirectory dir = new();

    public void Dispose() => dir.Dispose();

    private string At(string relative) => Path.Combine(dir.Path, relative);

    private static PipelineConfig Load(string file) => PipelineConfig.Load(file, StageRegistry.Sections, useEnvironment: false);

    [Fact]
    public async Task Scaffolds_a_pipeline_for_own_data_that_loads_and_names_only_paths_the_data_readme_describes()
    {
        (await ForgetlessApp.RunAsync(["init", dir.Path])).Should().Be(0);

        foreach (var file in new[] { "forgetless.json", "data/README.md", ".github/workflows/forgetless.yml", ".gitignore", ".config/dotnet-tools.json" })
            File.Exists(At(file)).Should().BeTrue(file);
        foreach (var folder in ProjectScaffold.DataFolders)
            Directory.Exists(At(folder)).Should().BeTrue(folder);

        // Every stage's section binds and validates (comments and all).
        var config = Load(At("forgetless.json"));
        var stages = StageRegistry.Build(new StageContext(config));
        stages.Select(s => s.Name).Should().Equal("prepare", "finetune", "evaluate", "package");

        var readme = File.ReadAllText(At("data/README.md"));
        var prepare = config.Section<Forgetless.Data.PrepareOptions>("prepare");
        var evaluate = config.Section<EvaluateOptions>("evaluate");
        var named = new[] { config.Section<RunOptions>("run").BaseModel, config.Section<Forgetless.FineTuning.FineTuneOptions>("finetune").Heldout }
            .Concat(prepare.TaskSources.Concat(prepare.ReplaySources).Select(s => s.Path))
            .Concat(evaluate.Suites.Select(s => s.Path));
        foreach (var path in named)
        {
            path.Should().StartWith("data/");
            readme.Should().Contain(path["data/".Length..], "data/README.md describes every file forgetless.json reads");
        }
    }

    [Fact]
    public async Task The_workflow_reads_what_the_pipeline_writes()
    {
        (await ForgetlessApp.RunAsync(["init", dir.Path])).Should().Be(0);

        string workflow = File.ReadAllText(At(".github/workflows/forgetless.yml"));
        string root = Load(At("forgetless.json")).Section<RunOptions>("run").Root;
        workflow.Should().Contain("dotnet tool restore")
            .And.Contain("forgetless package --diagnostics")
            .And.Contain($"{root}/evaluate/{EvaluationReports.JUnitFile}")
            .And.Contain($"{root}/evaluate/{EvaluationReports.HtmlFile}")
            .And.Contain($"{root}/package/*.tar.gz");
    }

    [Fact]
    public async Task Pins_this_tool_in_the_local_manifest_and_keeps_the_tools_already_there()
    {
        dir.File(".config/dotnet-tools.json", """
            { "version": 1, "isRoot": true, "tools": { "cake.tool": { "version": "7.0.0", "commands": ["dotnet-cake"] } } }
            """);

        (await ForgetlessApp.RunAsync(["init", dir.Path])).Should().Be(0);

        var tools = JsonNode.Parse(File.ReadAllText(At(".config/dotnet-tools.json")))!["tools"]!;
        tools["cake.tool"]!["version"]!.GetValue<string>().Should().Be("7.0.0");
        tools[ProjectScaffold.ToolPackage]!["version"]!.GetValue<string>().Should().Be(ToolVersion.Current);
        tools[ProjectScaffold.ToolPackage]!["commands"]!.AsArray().Select(c => c!.GetValue<string>()).Should().Equal("forgetless");
    }

    [Fact]
    public async Task Adds_the_run_store_to_an_existing_gitignore_once()
    {
        dir.File(".gitignore", "bin/\nnode_modules/\n");

        (await ForgetlessApp.RunAsync(["init", dir.Path])).Should().Be(0);
        (await ForgetlessApp.RunAsync(["init", dir.Path, "--force"])).Should().Be(0);

        var lines = File.ReadAllLines(At(".gitignore"));
        lines.Take(2).Should().Equal("bin/", "node_modules/");
        lines.Count(l => l == "/runs/").Should().Be(1);
        lines.Count(l => l == "bin/").Should().Be(1);
    }

    [Fact]
    public async Task Refuses_to_overwrite_a_pipeline_file_and_writes_nothing()
    {
        dir.File("forgetless.json", "{ \"mine\": true }");

        (await ForgetlessApp.RunAsync(["init", dir.Path])).Should().Be(2);

        File.ReadAllText(At("forgetless.json")).Should().Be("{ \"mine\": true }");
        File.Exists(At("data/README.md")).Should().BeFalse();
        File.Exists(At(".gitignore")).Should().BeFalse();

        (await ForgetlessApp.RunAsync(["init", dir.Path, "--force"])).Should().Be(0);
        File.ReadAllText(At("forgetless.json")).Should().Be(ProjectScaffold.Template("forgetless.json"));
    }

    [Fact]
    public async Task With_the_example_copies_the_embedded_default_and_the_repository_pipeline_that_reads_it()
    {
        (await ForgetlessApp.RunAsync(["init", dir.Path, "--example"])).Should().Be(0);

        // The example is the repository's own default: same sections (pretraining aside), same bytes of data.
        var example = Load(At("forgetless.json"));
        var repository = Load(Path.Combine(RepoData.Root, "forgetless.json"));
        foreach (var (section, type) in StageRegistry.Sections.Where(s => s.Key != "pretrain"))
        {
            var bind = typeof(PipelineConfig).GetMethod(nameof(PipelineConfig.Section))!.MakeGenericMethod(type);
            PipelineConfig.Canonical(bind.Invoke(example, [section])!).Should().Be(PipelineConfig.Canonical(bind.Invoke(repository, [section])!), section);
        }
        var copied = Directory.EnumerateFiles(At("data"), "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(dir.Path, f).Replace('\\', '/')).Where(f => f != "data/README.md").Order().ToList();
        copied.Should().Contain(["data/models/forgetless-base/model.safetensors", "data/corpora/postag.train.jsonl.gz", "data/corpora/NOTICE.cmudict"]);
        foreach (var file in copied)
            Sha256(At(file)).Should().Be(Sha256(Path.Combine(RepoData.Root, file)), file);

        // Every file the pipeline reads is there.
        var prepare = example.Section<Forgetless.Data.PrepareOptions>("prepare");
        var files = prepare.TaskSources.Concat(prepare.ReplaySources).Select(s => s.Path)
            .Concat(example.Section<EvaluateOptions>("evaluate").Suites.Select(s => s.Path))
            .Append(example.Section<Forgetless.FineTuning.FineTuneOptions>("finetune").Heldout)
            .Concat(example.Section<Forgetless.Continual.ContinualOptions>("continual").Tasks.SelectMany(t => new[] { t.Train, t.Suite }));
        foreach (var file in files) File.Exists(At(file)).Should().BeTrue(file);
        Directory.Exists(At(example.Section<RunOptions>("run").BaseModel)).Should().BeTrue();
    }

    private static string Sha256(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));
}
