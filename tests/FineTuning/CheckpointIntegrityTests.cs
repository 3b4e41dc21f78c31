using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Model.Safetensors;
using Forgetless.Peft;
using Forgetless.Tests.Peft;
using Forgetless.Training;
using Forgetless.Training.Terms;
using Microsoft.Extensions.Logging.Abstractions;
using static TorchSharp.torch;

namespace Forgetless.Tests.FineTuning;

/// <summary>
/// Issue 20, item 5: a checkpoint carries its own digest and is checked before a resume. A damaged one (flipped bits
/// on disk) is set aside, and training restarts from the last good checkpoint or from zero — ending with the bytes of an
/// uninterrupted run instead of resuming silently into another adapter, or failing forever on a flipped exponent.
/// </summary>
[Collection(TorchSerial.Name)]
public sealed class CheckpointIntegrityTests : IDisposable
{
    private const int Steps = 12;
    private readonly FineTuneFixture f = new();

    public void Dispose() => f.Dispose();

    private static readonly List<PreparedRow> Rows = Enumerable.Range(0, 16).Select(i => new PreparedRow(
        Enumerable.Range(0, 12).Select(t => (i * 3 + t) % 20).ToArray(), Enumerable.Repeat(true, 12).ToArray(), 12, "task")).ToList();

    /// <summary>Trains in <paramref name="work"/>; <paramref name="stopAfter"/> cancels after that step (the trainer then checkpoints).</summary>
    private Dictionary<string, float[]> Train(string work, long? stopAfter = null)
    {
        random.manual_seed(5);
        var options = f.Options($"finetune.steps={Steps}", "finetune.checkpointEvery=3", "finetune.lora.dropout=0.1");
        using var tuned = options.Apply(ModelFolder.LoadModel(f.ModelDirectory), seed: 3);
        using var cts = new CancellationTokenSource();
        var trainer = new Trainer(options.Training, tuned, new PreparedBatches(Rows, 36, 1), new LossProbe(Rows[..2], Rows[..2]), [new TaskLoss()], NullLogger.Instance)
        {
            AfterStep = step => { if (step == stopAfter) cts.Cancel(); },
        };
        Directory.CreateDirectory(work);
        trainer.Run(work, cts.Token);
        return tuned.Trainable.ToDictionary(t => t.name, t => t.parameter.detach().cpu().data<float>().ToArray());
    }

    private string Interrupted(string name)
    {
        string work = Path.Combine(f.Root, name);
        var act = () => Train(work, stopAfter: 7);
        act.Should().Throw<OperationCanceledException>();
        File.Exists(Path.Combine(work, Trainer.CheckpointFile)).Should().BeTrue();
        return work;
    }

    /// <summary>Flips one bit of the first float of the first trainable tensor stored in the checkpoint.</summary>
    private static void FlipBit(string checkpoint, int byteOfFloat, byte mask)
    {
        var file = SafetensorsFile.Open(checkpoint);
        var entry = file.Entries.Values.Where(e => e.Name.StartsWith("param/", StringComparison.Ordinal)).OrderBy(e => e.Name, StringComparer.Ordinal).First();
        var bytes = File.ReadAllBytes(checkpoint);
        long dataStart = 8 + BitConverter.ToInt64(bytes, 0);
        bytes[dataStart + entry.Begin + byteOfFloat] ^= mask;
        File.WriteAllBytes(checkpoint, bytes);
    }

    private static void ShouldEqual(Dictionary<string, float[]> actual, Dictionary<string, float[]> expected)
    {
        actual.Keys.Should().BeEquivalentTo(expected.Keys);
        foreach (var (name, values) in expected) actual[name].Should().Equal(values, $"{name} ends as in an uninterrupted run");
    }

    [Fact]
    public void A_checkpoint_with_flipped_mantissa_bits_is_set_aside_and_training_resumes_from_the_last_good_one()
    {
        var straight = Train(Path.Combine(f.Root, "straight"));
        string work = Interrupted("flipped-mantissa");
        string checkpoint = Path.Combine(work, Trainer.CheckpointFile);
        FlipBit(checkpoint, byteOfFloat: 2, mask: 0x40); // the top mantissa bit: the value changes by up to half

        ShouldEqual(Train(work), straight);
        Directory.GetFiles(work, Trainer.CheckpointFile + ".damaged*").Should().ContainSingle("the damaged checkpoint is kept aside for inspection");
    }

    [Fact]
    public void A_checkpoint_with_a_flipped_exponent_and_no_earlier_one_restarts_from_zero_instead_of_failing_forever()
    {
        var straight = Train(Path.Combine(f.Root, "straight"));
        string work = Interrupted("flipped-exponent");
        foreach (var older in Directory.GetFiles(work, "*.safetensors").Where(p => Path.GetFileName(p) != Trainer.CheckpointFile)) File.Delete(older);
        FlipBit(Path.Combine(work, Trainer.CheckpointFile), byteOfFloat: 3, mask: 0x40); // the top exponent bit: 1e38-scale values

        ShouldEqual(Train(work), straight);
    }

    [Fact]
    public void Every_checkpoint_carries_a_digest_of_its_own_bytes()
    {
        string work = Interrupted("digest");
        string checkpoint = Path.Combine(work, Trainer.CheckpointFile);
        TrainingCheckpoint.Damage(checkpoint).Should().BeNull();
        var digest = SafetensorsFile.Open(checkpoint).Metadata[TrainingCheckpoint.DigestKey];

        // The digest is SHA-256 of the file with its own 64 hex digits read as zeros (computed here independently).
        var bytes = File.ReadAllBytes(checkpoint);
        var text = System.Text.Encoding.ASCII.GetBytes(digest);
        int at = bytes.AsSpan().IndexOf(text);
        at.Should().BeGreaterThan(8);
        System.Text.Encoding.ASCII.GetBytes(new string('0', 64)).CopyTo(bytes, at);
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)).Should().Be(digest);

        File.WriteAllBytes(checkpoint, File.ReadAllBytes(checkpoint)[..^1]);
        TrainingCheckpoint.Damage(checkpoint).Should().NotBeNull();
    }
}
