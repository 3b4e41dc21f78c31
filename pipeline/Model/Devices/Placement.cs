using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Model.Devices;

/// <summary>The <c>run.precision</c> choices: the type activations and frozen weights are kept in.</summary>
public enum Precision { Fp32, Bf16, Fp16 }

/// <summary>
/// Where a run's tensors live and in which type they compute: the device (<c>run.device</c>) and the compute type
/// (<c>run.precision</c>). Frozen weights are loaded in the compute type; parameters that train, and so the optimizer's
/// state, are f32; activations flow in the compute type (<see cref="MixedPrecision"/>); logits are f32.
/// </summary>
public sealed record Placement(Device Device, ScalarType ComputeType)
{
    /// <summary>The CPU in f32: what the embedded default runs on, and the default of every API.</summary>
    public static Placement Cpu { get; } = new(CPU, ScalarType.Float32);

    /// <summary>f16 activations underflow without loss scaling (<see cref="Training.LossScaler"/>); bf16 and f32 need none.</summary>
    public bool LossScaling => ComputeType == ScalarType.Float16;

    /// <summary>True on the CPU in f32: nothing is moved or converted, so the CPU path is untouched.</summary>
    public bool IsPlainCpu => Device.type == DeviceType.CPU && ComputeType == ScalarType.Float32;

    public static ScalarType TypeOf(Precision precision) => precision switch
    {
        Precision.Bf16 => ScalarType.BFloat16,
        Precision.Fp16 => ScalarType.Float16,
        _ => ScalarType.Float32,
    };

    /// <summary>The type a checkpoint tensor is loaded in: floating weights in the compute type, anything else as stored.</summary>
    public ScalarType LoadType(ScalarType stored) =>
        stored is ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16 ? ComputeType : stored;

    /// <summary>
    /// Puts a model (with the modules attached to it, e.g. a prefix encoder) on the device: modules whose own parameters
    /// train become f32, everything moves to the device, generators follow, and the model computes in the compute type.
    /// TorchSharp replaces the Parameter objects it converts or moves: take references to parameters after this.
    /// </summary>
    public void Place(CausalLM model, params nn.Module?[] attached)
    {
        model.ComputeType = ComputeType;
        if (model.PrefixKeyValues is IComputesIn prefix) prefix.ComputeType = ComputeType;
        if (IsPlainCpu) return;
        var roots = new List<nn.Module> { model };
        roots.AddRange(attached.Where(a => a is not null)!);
        foreach (var root in roots)
        {
            // named_modules() leaves out the module itself, whose own parameters may train (a prefix's table).
            foreach (var (_, module) in root.named_modules().Prepend(("", root)).ToList())
                if (module.named_parameters(recurse: false).Any(p => p.parameter.requires_grad && p.parameter.dtype != ScalarType.Float32))
                    module.to(ScalarType.Float32);
            root.to(Device);
            foreach (var (_, module) in root.named_modules())
                if (module is IOwnsGenerator owner) owner.PlaceGeneratorOn(Device);
        }
    }
}

/// <summary>A module attached to a model that hands it tensors (a prefix's keys and values) in the model's compute type.</summary>
public interface IComputesIn
{
    ScalarType ComputeType { get; set; }
}
