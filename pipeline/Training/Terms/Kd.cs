using Forgetless.Model.Devices;
using System.Globalization;
using Forgetless.Configuration;
using Forgetless.Model;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Training.Terms;

/// <summary><c>finetune.kd</c>: distillation against a live teacher on replay rows.</summary>
public sealed class KdSection : IValidatableOptions, IDeclaresInputFolders
{
    /// <summary>w: replay rows train on (1 − w)·CE + w·KD.</summary>
    public double Weight { get; set; } = 0.5;
    public double Temperature { get; set; } = 2.0;
    /// <summary>
    /// An adapter folder the teacher is the base model with (e.g. the previous task's adapter in a task sequence, so
    /// the student stays close to the model it was); empty: the base model itself.
    /// </summary>
    public string TeacherAdapter { get; set; } = "";

    public IEnumerable<(string Key, string Folder)> InputFolders(Func<string, string> resolve)
    {
        if (TeacherAdapter.Length > 0) yield return ("finetune.kd.teacherAdapter", resolve(TeacherAdapter));
    }

    public IEnumerable<string> Validate()
    {
        if (!(Weight > 0) || Weight > 1) yield return $"weight = {F(Weight)}: must be in (0, 1] (loss = (1 − w)·CE + w·KD on replay rows)";
        if (!(Temperature > 0)) yield return $"temperature = {F(Temperature)}: must be greater than 0";
    }

    private static string F(double v) => v.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// Knowledge distillation against a live teacher (the frozen base model, loaded beside the student): on replay rows,
/// w·KL(teacher_T ‖ student_T)·T² (<see cref="Distillation.Loss"/>), while the task term keeps (1 − w) of their
/// cross-entropy. Costs one teacher forward over the replay rows of each micro-batch.
/// </summary>
public sealed class Kd : TrainingTerm
{
    private readonly CausalLM teacher;
    private readonly KdOptions options;
    private readonly double weight;

    public Kd(CausalLM teacher, KdOptions options, double weight)
    {
        this.teacher = teacher;
        this.options = options;
        this.weight = weight;
        foreach (var p in teacher.parameters()) p.requires_grad = false;
        teacher.eval();
    }

    public override string Name => "kd";
    public override double ReplayCrossEntropyShare => weight;

    /// <summary>The finetune kd term: the base model (with <c>kd.teacherAdapter</c> when set) as teacher, forward KL at the configured temperature.</summary>
    public static Kd Create(TermContext context)
    {
        var section = context.Section<KdSection>();
        if (context.ReplayRows.Count == 0)
            context.Logger.LogWarning("finetune: kd is on, but the training data has no replay rows (kind replay/generated); it will never apply");
        var teacher = ModelFolder.LoadModel(context.BaseModelDirectory, context.Placement);
        if (section.TeacherAdapter.Length > 0)
        {
            var folder = context.ResolvePath(section.TeacherAdapter);
            Peft.AdapterFolder.Apply(teacher, folder);
            context.Placement.Place(teacher, teacher.PrefixKeyValues as nn.Module);
            context.Logger.LogInformation("finetune: kd teacher is the base model with the adapter {Folder}", folder);
        }
        return new Kd(teacher, new KdOptions { Divergence = KdDivergence.ForwardKl, Temperature = section.Temperature }, section.Weight);
    }

    public override TermValue? BatchLoss(TermBatch batch)
    {
        if (!batch.HasReplay) return null;
        var tokens = batch.Tokens;
        var replay = batch.ReplayIndices();
        var width = tokens.Targets.shape[1];
        Tensor teacherLogits;
        using (no_grad())
        {
            using var layout = tokens.Layout?.Rows(replay);
            teacherLogits = teacher.Forward(DeviceOps.Rows(tokens.Inputs, replay), layout: layout);
        }
        var kd = Distillation.Loss(DeviceOps.Rows(batch.Logits, replay).narrow(1, 0, width), teacherLogits.narrow(1, 0, width),
            DeviceOps.Rows(tokens.TargetMask, replay), options);
        using var share = (weight / batch.MicroBatches).ToScalar();
        return new TermValue(kd.mul(share), kd.detach(), batch.MicroBatches);
    }

    public override void Dispose() => teacher.Dispose();
}
