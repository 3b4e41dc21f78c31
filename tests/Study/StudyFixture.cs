using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Forgetless.Configuration;
using Forgetless.Stages;
using Forgetless.Stages.Study;
using Forgetless.Study;
using Forgetless.Tests.FineTuning;
using Microsoft.Extensions.Logging.Abstractions;

namespace Forgetless.Tests.Study;

/// <summary>
/// FineTune's tiny pipeline (2-layer Llama, spelling task) with an evaluate section (held-out text as the old suite,
/// the spelling task as the new one) and a study of two LoRA cells: "fast" reaches the target, "slow" (a learning rate
/// 100× smaller) does not within the step cap.
/// </summary>
public sealed class StudyFixture : IDisposable
{
    public FineTuneFixture Pipeline { get; } = new();
    public string Root => Pipeline.Root;

    /// <summary>Reached by lr 0.02 within 12 steps (3.97 at step 12), not by lr 0.0002 (4.15 at step 12): measured on this fixture.</summary>
    public const double Target = 4.05;

    public StudyFixture()
    {
        var lines = File.ReadAllLines(Path.Combine(Root, "heldout.txt")).Take(12);
        File.WriteAllLines(Path.Combine(Root, "heldout.jsonl"), lines.Select(l => JsonSerializer.Serialize(new { text = l })));
        var config = JsonNode.Parse(File.ReadAllText(Pipeline.ConfigPath))!.AsObject();
        config["evaluate"] = JsonNode.Parse("""
        {
          "suites": [
            { "name": "heldout", "type": "perplexity", "role": "old", "path": "heldout.jsonl" },
            { "name": "spell", "type": "cloze", "role": "new", "path": "task.jsonl", "limit": 12, "fields": { "context": "prompt", "target": "response" } }
          ],
          "gates": [ { "name": "heldout-bpb", "suite": "heldout", "metric": "bits_per_byte", "maxDrop": 0.5, "relative": true } ],
          "bootstrapResamples": 100,
          "batchSize": 8,
          "sampleGenerations": 0
        }
        """);
        File.WriteAllText(Pipeline.ConfigPath, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        WriteStudy("0.0002");
    }

    /// <summary>The study file: two cells that differ in the learning rate (and, for "slow", <paramref name="slowRate"/>).</summary>
    public void WriteStudy(string slowRate, string fastRank = "4") => File.WriteAllText(StudyFile, $$"""
        {
          "study": {
            "root": "study",
            "target": { "validationLoss": {{Target.ToString(System.Globalization.CultureInfo.InvariantCulture)}} },
            "stepCap": 12,
            "settings": { "finetune.evalEvery": "2" },
            "cells": [
              { "name": "fast", "set": { "finetune.learningRate": "0.02", "finetune.lora.r": "{{fastRank}}" } },
              { "name": "slow", "set": { "finetune.learningRate": "{{slowRate}}" } }
            ]
          }
        }
        """);

    public string StudyFile => Path.Combine(Root, "study.json");

    /// <summary>Measured on this fixture: "fast" (lr 0.02) has format acc 0.417, 0.417, 0.625 at steps 0, 2, 4; "slow" stays at 0.417.</summary>
    public const double TargetAccuracy = 0.6;

    /// <summary>
    /// A second new suite, "format": for 24 task prompts, the answer in the task's form (" c a t") against the same
    /// letters in capitals, which never occur in training. Learning the task's form shows in its accuracy within a few steps.
    /// </summary>
    public void AddFormatSuite()
    {
        var rows = File.ReadAllLines(Path.Combine(Root, "task.jsonl")).Take(24).Select(l => JsonNode.Parse(l)!);
        File.WriteAllLines(Path.Combine(Root, "format.jsonl"), rows.Select(r =>
        {
            string answer = r["response"]!.GetValue<string>();
            return JsonSerializer.Serialize(new { query = r["prompt"]!.GetValue<string>(), choices = new[] { answer, answer.ToUpperInvariant() }, gold = 0 });
        }));
        var config = JsonNode.Parse(File.ReadAllText(Pipeline.ConfigPath))!.AsObject();
        config["evaluate"]!["suites"]!.AsArray().Add(JsonNode.Parse("""{ "name": "format", "type": "multipleChoice", "role": "new", "path": "format.jsonl" }"""));
        File.WriteAllText(Pipeline.ConfigPath, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>The study file with <paramref name="target"/> (JSON) as its target: "fast" (lr 0.02) and "slow" (lr 0.0002), 12 steps, evaluations every 2.</summary>
    public void WriteStudyWithTarget(string target) => File.WriteAllText(StudyFile, $$"""
        {
          "study": {
            "root": "study",
            "target": {{target}},
            "stepCap": 12,
            "settings": { "finetune.evalEvery": "2" },
            "cells": [
              { "name": "fast", "set": { "finetune.learningRate": "0.02" } },
              { "name": "slow", "set": { "finetune.learningRate": "0.0002" } }
            ]
          }
        }
        """);

    /// <summary>The runner of the study file over the pipeline file, with the study root moved to <paramref name="studyRoot"/>.</summary>
    public StudyRunner Runner(string studyRoot = "study")
    {
        var config = PipelineConfig.Load(Pipeline.ConfigPath, StageRegistry.Sections, useEnvironment: false)
            .WithFile(StudyFile).With(["study.root=" + studyRoot], "test");
        return new StudyRunner(config, NullLogger.Instance);
    }

    public void Dispose() => Pipeline.Dispose();
}
