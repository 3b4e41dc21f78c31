using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forgetless.Model;

/// <summary>
/// A lookup table [num, dim]: row i is the vector of token (or position) i. Ours rather than TorchSharp's
/// <c>nn.Embedding</c>, whose native constructor fills an N(0, 1) table on the CPU even when asked for the meta
/// device — 545 MB allocated and initialised for Qwen2.5's 151,936 × 896 table, for a skeleton that a checkpoint then
/// fills. The table keeps the type it is given (a frozen table may stay in the checkpoint's bf16); rows come out in it.
/// </summary>
public sealed class TokenEmbedding : SingleWeightModule
{
    // Uninitialised: a loader or CausalLM.InitializeWeights gives every row its value.
    public TokenEmbedding(long count, long dim, Device? device = null) : base(nameof(TokenEmbedding), empty(count, dim, device: device))
    {
    }

    /// <summary>Rows [.., dim] for ids [..] (index_select; advanced indexing on the meta device, which has no index_select kernel).</summary>
    public override Tensor forward(Tensor ids) => Devices.DeviceOps.Rows(weight, ids);
}
