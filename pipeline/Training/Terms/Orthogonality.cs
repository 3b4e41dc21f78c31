using Forgetless.Model;
using System.Globalization;
using Forgetless.Configuration;
using Forgetless.Peft;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Training.Terms;

/// <summary><c>finetune.orthogonality</c>.</summary>
public sealed class OrthogonalitySection : IValidatableOptions
{
    /// <summary>λ of λ·Σ_layers ‖A_prev·Aᵀ‖²_F (O-LoRA's λ1 is 0.5).</summary>
    public double Lambda { get; set; } = 0.5;

    public IEnumerable<string> Validate()
    {
        if (!(Lambda > 0)) yield return $"lambda = {Lambda.ToString(CultureInfo.InvariantCulture)}: must be greater than 0";
    }
}

/// <summary>
/// O-LoRA's orthogonality loss (Wang et al. 2023): λ·Σ_layers ‖A_prev·Aᵀ‖²_F, the squared inner products between the
/// rows of the new LoRA block's A and those of the frozen blocks earlier tasks trained (<see cref="OLoraLinear"/>). Its
/// gradient, 2λ·A·A_prevᵀ·A_prev, pushes A out of the earlier tasks' subspace. Zero (and skipped) on the first task.
/// </summary>
public sealed class Orthogonality(IReadOnlyList<OLoraLinear> layers, double lambda) : TrainingTerm
{
    public override string Name => "orthogonality";
    public override bool ReadsLogits => false;

    public static Orthogonality Create(TermContext context)
    {
        var layers = AdapterLayers.Find(context.Tuned.Model).Select(l => l.layer).OfType<OLoraLinear>().ToList();
        if (layers.Count == 0)
            throw new ConfigException($"finetune.regularizers: orthogonality needs O-LoRA's stacked blocks; set finetune.method = olora (it is {context.Tuned.Method.Name})");
        return new Orthogonality(layers, context.Section<OrthogonalitySection>().Lambda);
    }

    public Tensor Penalty()
    {
        using var scope = NewDisposeScope();
        Tensor total = zeros(1, device: layers[0].lora_A.weight.device).squeeze();
        foreach (var layer in layers)
            if (layer.PreviousA.shape[0] > 0) total = total.add(layer.PreviousA.matmul(layer.lora_A.weight.t()).Squared().sum(), Scalars.One);
        using var strength = lambda.ToScalar();
        return total.mul(strength).MoveToOuterDisposeScope();
    }

    public override TermValue? StepLoss()
    {
        if (layers.All(l => l.PreviousA.shape[0] == 0)) return null;
        var penalty = Penalty();
        return new TermValue(penalty, penalty.detach());
    }
}
