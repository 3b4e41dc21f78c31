using Forgetless.Configuration;
using Forgetless.Stages;
using Forgetless.Stages.Study;
using Forgetless.Tests.Corpora;
using Microsoft.Extensions.Logging.Abstractions;

namespace Forgetless.Tests.Study;

public sealed class StudyConfigTests
{
    [Fact]
    public void The_shipped_study_has_every_cell_the_issue_names_and_each_cell_configuration_is_valid()
    {
        var config = PipelineConfig.Load(Path.Combine(RepoData.Root, "forgetless.json"), StageRegistry.Sections, useEnvironment: false)
            .WithFile(Path.Combine(RepoData.Root, "studies", "methods.json"));
        var runner = new StudyRunner(config, NullLogger.Instance);
        Assert.Equal(
            ["full", "freeze", "lora-r4", "lora-r16", "dora", "qlora", "adapter", "prefix", "ia3", "lora-ewc", "lora-kd",
             "lora-replay0", "lora-replay25", "lora-replay50", "lora-distill"],
            runner.Cells.Select(c => c.Name));
        foreach (var cell in runner.Cells)
        {
            var cellConfig = runner.CellConfig(cell, Path.Combine(Path.GetTempPath(), "unused", cell.Name));
            var finetune = cellConfig.Section<Forgetless.FineTuning.FineTuneOptions>("finetune");
            Assert.Equal(0.8, finetune.TargetValidationLoss);
            Assert.Equal(320, finetune.Steps);
            Assert.Equal(cell.Name == "lora-distill", cellConfig.Section<Forgetless.Distill.DistillOptions>("distill").Enabled);
            cellConfig.Section<Forgetless.Data.PrepareOptions>("prepare");
            cellConfig.Section<Forgetless.Evaluation.EvaluateOptions>("evaluate");
        }
        var byName = runner.Cells.ToDictionary(c => c.Name, c => runner.CellConfig(c, "x"));
        Assert.Equal(["ewc"], byName["lora-ewc"].Section<Forgetless.FineTuning.FineTuneOptions>("finetune").Regularizers);
        Assert.Equal(0.5, byName["lora-replay50"].Section<Forgetless.Data.PrepareOptions>("prepare").ReplayShare);
        Assert.True(((Forgetless.Peft.LoraSection)byName["dora"].Section<Forgetless.FineTuning.FineTuneOptions>("finetune").Plugins["lora"]).UseDora);
        foreach (var cell in runner.Cells) runner.CellStages(cell, Path.Combine(Path.GetTempPath(), "unused", cell.Name));
    }

    [Fact]
    public void The_smoke_study_trains_to_the_word_class_accuracy_and_each_cell_builds()
    {
        var config = PipelineConfig.Load(Path.Combine(RepoData.Root, "forgetless.json"), StageRegistry.Sections, useEnvironment: false)
            .WithFile(Path.Combine(RepoData.Root, "studies", "demo.json"));
        var runner = new StudyRunner(config, NullLogger.Instance);
        foreach (var cell in runner.Cells)
        {
            string root = Path.Combine(Path.GetTempPath(), "unused", cell.Name);
            var finetune = runner.CellConfig(cell, root).Section<Forgetless.FineTuning.FineTuneOptions>("finetune");
            Assert.Equal(0.4, finetune.TargetAccuracy);
            Assert.Equal(0, finetune.TargetValidationLoss);
            Assert.Equal("postag", finetune.TargetAccuracySuite);
            runner.CellStages(cell, root); // the suite resolves against evaluate's
        }
    }

    [Fact]
    public void A_bad_setting_in_one_cell_is_a_configuration_error_naming_the_cell_before_any_cell_runs()
    {
        using var f = new StudyFixture();
        File.WriteAllText(f.StudyFile, """
            { "study": { "root": "study", "target": { "validationLoss": 4 },
              "cells": [ { "name": "good", "set": { "finetune.lora.r": "4" } }, { "name": "bad", "set": { "finetune.lora.r": "0" } } ] } }
            """);
        var runner = f.Runner();
        var error = Assert.ThrowsAny<ConfigException>(() => runner.RunAsync(runner.Cells, CancellationToken.None).GetAwaiter().GetResult());
        Assert.Contains("study cell bad", error.Message);
        Assert.Contains("finetune.lora.r", error.Message);
        Assert.False(Directory.Exists(Path.Combine(runner.Root, "good")));
    }

    [Fact]
    public async Task The_study_verb_reports_a_missing_study_a_missing_target_and_a_merge_without_folders_as_usage_errors()
    {
        using var f = new StudyFixture();
        var noStudy = await ForgetlessProcess.RunAsync(f.Root, "study");
        Assert.Equal(2, noStudy.ExitCode);
        Assert.Contains("study: names no cells", noStudy.Output);
        File.WriteAllText(Path.Combine(f.Root, "no-target.json"), """{ "study": { "cells": [ { "name": "a" } ] } }""");
        var noTarget = await ForgetlessProcess.RunAsync(f.Root, "study", "--study", "no-target.json");
        Assert.Equal(2, noTarget.ExitCode);
        // The key and the allowed kinds of target.
        Assert.Contains("study.target: names no target; set one kind of target: validationLoss", noTarget.Output);
        Assert.Contains("or heldoutAccuracy (a rate in (0, 1])", noTarget.Output);
        Assert.False(noTarget.HasStackTrace);
        var merge = await ForgetlessProcess.RunAsync(f.Root, "study", "merge", "--study", "study.json");
        Assert.Equal(2, merge.ExitCode);
        Assert.Contains("study merge: name the study roots", merge.Output);
        Assert.False(merge.HasStackTrace);
    }
}
