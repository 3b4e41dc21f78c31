using static TorchSharp.torch;

namespace Forgetless.Model;

/// <summary>
/// A module that draws from its own generator (seeded dropout): its state belongs in a resumable checkpoint, a
/// recomputed layer (gradient checkpointing) replays its draws, and it must sit on the device of the tensors it draws for.
/// </summary>
public interface IOwnsGenerator
{
    Generator Generator { get; }

    /// <summary>Moves the generator to <paramref name="device"/>'s kind, keeping its seed; only before its first draw.</summary>
    void PlaceGeneratorOn(Device device);
}
