namespace Forgetless.Model.Architectures;

/// <summary>
/// Mistral: the Llama architecture plus sliding-window attention. A token attends to at most
/// <c>sliding_window</c> previous positions; for sequences no longer than the window that is full causal
/// attention, which is all this implementation does. Longer sequences are refused rather than computed
/// wrongly.
/// </summary>
public sealed class MistralForCausalLM(ModelConfig config, TorchSharp.torch.Device? device = null) : LlamaForCausalLM(nameof(MistralForCausalLM), config, device)
{
    protected override void CheckSequenceLength(int totalLength)
    {
        if (Config.SlidingWindow is { } window && totalLength > window)
            throw new NotSupportedException(
                $"mistral: sequence of {totalLength} tokens exceeds sliding_window {window}; sliding-window attention is not implemented");
    }
}
