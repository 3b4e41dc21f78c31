using Forgetless.Model.Devices;
using static TorchSharp.torch;

namespace Forgetless.Model;

/// <summary>
/// Builds some modules of a model straight from their checkpoint tensors while it loads, instead of the dense module
/// the architecture declares: qlora's NF4 store, so that no dense copy of the quantized weights ever exists (loading
/// f32 first would need the whole model in f32 before the first layer is quantized).
/// </summary>
public interface IModuleLoader
{
    /// <summary>True for the modules this loader builds (e.g. every Linear but lm_head).</summary>
    bool Claims(string path, nn.Module module);

    /// <summary>
    /// The module to put at <paramref name="path"/>, built from its weight [out, in] and bias [out] (or null), both f32 on
    /// the CPU and owned by the caller.
    /// </summary>
    nn.Module<Tensor, Tensor> Build(string path, Tensor weight, Tensor? bias, Placement placement);

    /// <summary>
    /// The type a parameter this loader does not build is loaded in, given the type the checkpoint stores it in; null:
    /// the placement's compute type, as for every other loader. (qlora keeps its frozen embeddings in the checkpoint's
    /// 16-bit type, as transformers loads a bitsandbytes model with torch_dtype = bfloat16.)
    /// </summary>
    ScalarType? ParameterType(string name, nn.Module owner, ScalarType stored) => null;
}
