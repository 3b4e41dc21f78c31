using Forgetless.Model;
using Forgetless.Peft;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Training;

/// <summary>One parameter group: its tensors (with their model paths), learning rate and weight decay.</summary>
public sealed record ParamGroup(string Name, IReadOnlyList<(string name, Parameter parameter)> Parameters, double LearningRate, double WeightDecay);

public sealed record AdamWOptions
{
    public double LearningRate { get; init; } = 1e-4;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Eps { get; init; } = 1e-8;
    public double WeightDecay { get; init; } = 0.01;
}

/// <summary>
/// AdamW (Loshchilov and Hutter; the update of torch.optim.AdamW without amsgrad):
/// p ← p·(1 − lr·wd); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
/// p ← p − lr/(1−β1^t) · m / (√v/√(1−β2^t) + eps), with a step count t per tensor.
/// Our own implementation, so its whole state (m, v, t per named tensor) saves to safetensors and a resumed run
/// continues bit-identically. The learning rate of each step is group lr × the factor passed to <see cref="Step"/>.
/// </summary>
public sealed class AdamWOptimizer : IDisposable
{
    private readonly AdamWOptions options;
    private readonly Dictionary<string, (Tensor m, Tensor v, long step)> state = new(StringComparer.Ordinal);

    public IReadOnlyList<ParamGroup> Groups { get; }

    public AdamWOptimizer(IEnumerable<ParamGroup> groups, AdamWOptions options)
    {
        this.options = options;
        Groups = groups.ToList();
        var names = Groups.SelectMany(g => g.Parameters.Select(p => p.name)).ToList();
        var dup = names.GroupBy(n => n).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new ArgumentException($"Parameter '{dup.Key}' is in more than one group.");
    }

    /// <summary>
    /// The usual split: tensors with 2+ dimensions get weight decay; 1-D tensors (norm scales, biases, DoRA magnitudes)
    /// do not. Pass only the trainable parameters (e.g. <see cref="Freezing.Trainable"/>).
    /// </summary>
    public static AdamWOptimizer ForParameters(IEnumerable<(string name, Parameter parameter)> trainable, AdamWOptions options)
    {
        var list = trainable.ToList();
        if (list.Count == 0) throw new ArgumentException("No trainable parameters were given to the optimizer.");
        return new AdamWOptimizer(
        [
            new ParamGroup("decay", list.Where(p => p.parameter.dim() >= 2).ToList(), options.LearningRate, options.WeightDecay),
            new ParamGroup("no_decay", list.Where(p => p.parameter.dim() < 2).ToList(), options.LearningRate, 0),
        ], options);
    }

    public IEnumerable<(string name, Parameter parameter)> Parameters => Groups.SelectMany(g => g.Parameters);

    public void ZeroGrad()
    {
        foreach (var (_, p) in Parameters)
            if (p.grad is { } g) g.zero_();
    }

    /// <summary>One update of every tensor that has a gradient; the learning rate is group lr × <paramref name="lrFactor"/>.</summary>
    public void Step(double lrFactor = 1.0)
    {
        using var _ = no_grad();
        double b1 = options.Beta1, b2 = options.Beta2;
        foreach (var group in Groups)
        {
            var lr = group.LearningRate * lrFactor;
            foreach (var (name, p) in group.Parameters)
            {
                var grad = p.grad;
                if (grad is null) continue;
                using var scope = NewDisposeScope();
                if (!state.TryGetValue(name, out var s))
                {
                    s = (zeros_like(p).DetachFromDisposeScope(), zeros_like(p).DetachFromDisposeScope(), 0);
                }
                var t = s.step + 1;
                var bc1 = 1 - Math.Pow(b1, t);
                var bc2Sqrt = Math.Sqrt(1 - Math.Pow(b2, t));
                // Scalars held for the whole call (Forgetless.Model.Scalars: a temporary one can be finalized mid-call).
                using Scalar decay = (1 - lr * group.WeightDecay).ToScalar(), beta1 = b1.ToScalar(), rest1 = (1 - b1).ToScalar(),
                    beta2 = b2.ToScalar(), rest2 = (1 - b2).ToScalar(), bc2 = bc2Sqrt.ToScalar(), eps = options.Eps.ToScalar(),
                    stepSize = (-lr / bc1).ToScalar();
                if (group.WeightDecay != 0) p.mul_(decay);
                s.m.mul_(beta1).add_(grad, alpha: rest1);
                s.v.mul_(beta2).addcmul_(grad, grad, value: rest2);
                var denom = s.v.sqrt().div_(bc2).add_(eps, Scalars.One);
                p.addcdiv_(s.m, denom, value: stepSize);
                state[name] = (s.m, s.v, t);
            }
        }
    }

    /// <summary>The optimizer state as named tensors: <c>exp_avg/NAME</c>, <c>exp_avg_sq/NAME</c>, <c>step/NAME</c> (I64).</summary>
    public Dictionary<string, Tensor> StateTensors()
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, s) in state)
        {
            result["exp_avg/" + name] = s.m;
            result["exp_avg_sq/" + name] = s.v;
            result["step/" + name] = tensor(new[] { s.step });
        }
        return result;
    }

    /// <summary>Replaces the state from <see cref="StateTensors"/> output; names and shapes must match this optimizer's tensors.</summary>
    public void LoadStateTensors(IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        var byName = Parameters.ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        foreach (var s in state.Values) { s.m.Dispose(); s.v.Dispose(); }
        state.Clear();
        foreach (var key in tensors.Keys.Where(k => k.StartsWith("step/", StringComparison.Ordinal)))
        {
            var name = key["step/".Length..];
            if (!byName.TryGetValue(name, out var p))
                throw new InvalidOperationException($"{source}: optimizer state for '{name}', which this optimizer does not train.");
            Tensor Get(string prefix)
            {
                if (!tensors.TryGetValue(prefix + name, out var t))
                    throw new InvalidOperationException($"{source}: '{prefix}{name}' is missing.");
                if (!t.shape.SequenceEqual(p.shape))
                    throw new InvalidOperationException(
                        $"{source}: '{prefix}{name}' has shape [{string.Join(", ", t.shape)}] but the parameter has [{string.Join(", ", p.shape)}].");
                return t.detach().to(p.device, copy: true).DetachFromDisposeScope();
            }
            state[name] = (Get("exp_avg/"), Get("exp_avg_sq/"), tensors[key].item<long>());
        }
    }

    public void Dispose()
    {
        foreach (var s in state.Values) { s.m.Dispose(); s.v.Dispose(); }
        state.Clear();
    }
}
