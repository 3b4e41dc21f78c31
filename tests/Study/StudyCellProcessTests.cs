using System.Text.Json.Nodes;
using Forgetless.Model;
using Forgetless.Study;
using Forgetless.Tests.FineTuning;

namespace Forgetless.Tests.Study;

/// <summary>
/// `forgetless study` runs each cell in a process of its own: the cell's peak memory is its own, and stopping the study
/// stops the cell's process the way Ctrl+C would, leaving a checkpoint the next run resumes from.
/// </summary>
public sealed class StudyCellProcessTests
{
    [Fact]
    public async Task A_small_cell_after_a_large_one_reports_the_smaller_peak()
    {
        using var f = new StudyFixture();
        // The first cell fine-tunes every weight of a 25M-parameter model (weights, gradients and AdamW's two moments:
        // about 400 MB); the second trains LoRA on the 2-layer, 32-wide model. A peak that carried over from one cell to
        // the next would make the second cell's at least the first's.
        FineTuneFixture.WriteModel(Path.Combine(f.Root, "large-model"), seed: 3,
            ModelConfig.Llama(vocabSize: 64, hiddenSize: 1024, numLayers: 2, numHeads: 8, maxPositions: 128));
        File.WriteAllText(Path.Combine(f.Root, "memory-study.json"), """
            {
              "study": {
                "root": "memory-study",
                "target": { "validationLoss": 0.001 },
                "stepCap": 2,
                "settings": { "finetune.evalEvery": "2" },
                "cells": [
                  { "name": "large", "set": { "run.baseModel": "large-model", "finetune.method": "full", "finetune.learningRate": "0.0001" } },
                  { "name": "small", "set": { "finetune.method": "lora" } }
                ]
              }
            }
            """);
        var run = await ForgetlessProcess.RunAsync(f.Root, "study", "--study", "memory-study.json");
        Assert.True(run.ExitCode == 0, run.ToString());

        var cells = JsonNode.Parse(File.ReadAllText(Path.Combine(f.Root, "memory-study", "report", StudyReport.TimingsFile)))!["cells"]!.AsArray();
        long large = cells[0]!["peak_rss_bytes"]!.GetValue<long>();
        long small = cells[1]!["peak_rss_bytes"]!.GetValue<long>();
        Assert.True(small < large, $"small cell's peak {small:N0} B is not below the large cell's {large:N0} B");
        // The large cell's own trainer state alone is 4 × 25M f32 values; its peak holds at least that.
        Assert.True(large > 4L * 25_000_000 * 4, $"large cell's peak {large:N0} B");
        // Each cell's record names its own process's finetune run.
        foreach (var cell in new[] { "large", "small" })
        {
            var record = JsonNode.Parse(File.ReadAllText(Path.Combine(f.Root, "memory-study", cell, CellMemory.FileName)))!;
            Assert.Equal(cell == "large" ? large : small, record["stages"]!["finetune"]!["peak_rss_bytes"]!.GetValue<long>());
        }
        Assert.Contains("| large |", File.ReadAllText(Path.Combine(f.Root, "memory-study", "report", StudyReport.MarkdownFile)));
    }

    [Fact]
    public async Task A_study_stopped_with_SIGTERM_stops_its_cell_at_a_checkpoint_and_the_rerun_resumes_it()
    {
        using var f = new StudyFixture();
        File.WriteAllText(Path.Combine(f.Root, "long-study.json"), """
            {
              "study": {
                "root": "long-study",
                "target": { "validationLoss": 0.001 },
                "stepCap": 400,
                "settings": { "finetune.evalEvery": "200", "finetune.checkpointEvery": "3" },
                "cells": [ { "name": "long", "set": { "finetune.learningRate": "0.0002" } } ]
              }
            }
            """);
        string work = Path.Combine(f.Root, "long-study", "long", ".work");
        using (var study = ForgetlessProcess.Start(f.Root, ["study", "--study", "long-study.json"]))
        {
            var output = ForgetlessProcess.Finish(study, TimeSpan.FromMinutes(3));
            while (!(Directory.Exists(work) && Directory.EnumerateDirectories(work, "finetune-*")
                       .Any(d => File.Exists(Path.Combine(d, Forgetless.FineTuning.Trainer.CheckpointFile)))))
            {
                Assert.False(study.HasExited, "the study ended before its cell wrote a checkpoint:\n" + (study.HasExited ? (await output).ToString() : ""));
                await Task.Delay(20);
            }
            Assert.Equal(0, Signal(study.Id, 15)); // SIGTERM to the study alone, as a CI runner cancelling a job does
            var stopped = await output;
            Assert.True(stopped.ExitCode == Forgetless.Runs.ExitCodes.Cancelled, stopped.ToString());
            Assert.Contains("checkpoint saved", stopped.Output); // the cell's process saved it on the way out
        }
        Assert.False(Directory.Exists(Path.Combine(f.Root, "long-study", "long", "finetune")));

        var rerun = await ForgetlessProcess.RunAsync(f.Root, "study", "--study", "long-study.json");
        Assert.True(rerun.ExitCode == 0, rerun.ToString());
        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(f.Root, "long-study", "long", "finetune", "summary.json")))!;
        Assert.True(summary["resumed_from_step"]!.GetValue<long>() > 0);
        Assert.Equal(400, summary["steps"]!.GetValue<long>());
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    private static extern int Signal(int pid, int signal);

    [Fact]
    public void The_cell_process_gets_the_study_command_line_without_shard_and_diagnostics()
    {
        Assert.Equal(["study", "--study", "s.json", "--set", "a.b=1", "--verbose"],
            Forgetless.Stages.Study.CellProcess.Forwarded(["study", "--study", "s.json", "--shard", "1/2", "--set", "a.b=1", "--diagnostics=d.jsonl", "--verbose"]));
    }
}
