using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Model;

/// <summary>
/// A module whose one parameter is <c>weight</c>, settable like TorchSharp's own modules' parameters: a model loads into
/// a meta skeleton by putting each checkpoint tensor in its module's slot (<see cref="CausalLM"/>'s loader).
/// </summary>
public abstract class SingleWeightModule : nn.Module<Tensor, Tensor>
{
    private Parameter _weight;

    protected SingleWeightModule(string name, Tensor initial) : base(name)
    {
        _weight = new Parameter(initial);
        ConditionallyRegisterParameter(nameof(weight), _weight);
    }

    public Parameter weight
    {
        get => _weight;
        set
        {
            if (ReferenceEquals(value, _weight)) return;
            _weight.Dispose();
            _weight = (Parameter)value.DetachFromDisposeScope();
            ConditionallyRegisterParameter(nameof(weight), _weight);
        }
    }
}
