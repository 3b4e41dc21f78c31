namespace Forgetless.Model.Architectures;

/// <summary>
/// Qwen2: the Llama architecture with biases on q_proj, k_proj and v_proj (none on o_proj or the MLP).
/// <see cref="ModelConfigJson"/> sets <see cref="ModelConfig.AttentionBias"/> for model_type qwen2.
/// Qwen2's sliding-window option is off in released checkpoints and not implemented.
/// </summary>
public sealed class Qwen2ForCausalLM(ModelConfig config, TorchSharp.torch.Device? device = null) : LlamaForCausalLM(nameof(Qwen2ForCausalLM), config, device);
