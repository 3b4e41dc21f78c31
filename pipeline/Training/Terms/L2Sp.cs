using Forgetless.Model;
using System.Globalization;
using Forgetless.Configuration;
using Forgetless.Peft;
using TorchSharp.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Training.Terms;

/// <summary><c>finetune.l2sp</c>.</summary>
public sealed class L2SpSection : IValidatableOptions
{
    public double Lambda { get; set; } = 1e-3;

    public IEnumerable<string> Validate()
    {
        if (!(Lambda > 0)) yield return $"lambda = {Lambda.ToString(CultureInfo.InvariantCulture)}: must be greater than 0";
    }
}

/// <summary>
/// L2-SP (Li et al. 2018): λ·Σ ‖θ − θ₀‖² toward given anchors, or toward zero (plain L2) without them. The method
/// decides the anchor (<see cref="PeftMethod.L2SpAnchor"/>): base weights that train are pulled toward their starting
/// values, adapter tensors toward zero — each one's "no change".
/// </summary>
public sealed class L2Sp : TrainingTerm
{
    private readonly List<(Parameter p, Tensor? anchor)> terms = [];
    public double Lambda { get; }

    public L2Sp(IEnumerable<(string name, Parameter parameter)> parameters, IReadOnlyDictionary<string, Tensor>? anchors, double lambda)
    {
        Lambda = lambda;
        foreach (var (name, p) in parameters)
        {
            Tensor? a = null;
            if (anchors is not null)
            {
                if (!anchors.TryGetValue(name, out var av)) throw new ArgumentException($"L2-SP: no anchor value for '{name}'.");
                if (!av.shape.SequenceEqual(p.shape))
                    throw new ArgumentException($"L2-SP: anchor of '{name}' has shape [{string.Join(", ", av.shape)}], parameter [{string.Join(", ", p.shape)}].");
                a = av.detach().to(p.device, copy: true).DetachFromDisposeScope();
            }
            terms.Add((p, a));
        }
    }

    public override string Name => "l2sp";
    public override bool ReadsLogits => false;

    private Device Device => terms[0].p.device;

    public static L2Sp Create(TermContext context)
    {
        var tuned = context.Tuned;
        var anchors = tuned.Method.L2SpAnchor == L2SpAnchor.StartingValues ? Ewc.Snapshot(tuned.Trainable) : null;
        try
        {
            return new L2Sp(tuned.Trainable, anchors, context.Section<L2SpSection>().Lambda);
        }
        finally
        {
            foreach (var a in anchors?.Values ?? Enumerable.Empty<Tensor>()) a.Dispose();
        }
    }

    public Tensor Penalty()
    {
        using var scope = NewDisposeScope();
        Tensor total = zeros(1, device: Device).squeeze();
        foreach (var (p, a) in terms) total = total.add((a is null ? p.Squared() : p.sub(a).Squared()).sum(), Scalars.One);
        using var lambda = Lambda.ToScalar();
        return total.mul(lambda).MoveToOuterDisposeScope();
    }

    public override TermValue? StepLoss()
    {
        var penalty = Penalty();
        return new TermValue(penalty, penalty.detach());
    }

    public override void Dispose()
    {
        foreach (var (_, a) in terms) a?.Dispose();
        terms.Clear();
    }
}
