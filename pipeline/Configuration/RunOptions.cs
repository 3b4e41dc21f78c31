namespace Forgetless.Configuration;

public enum DeviceChoice { Auto, Cpu, Cuda }

/// <summary>The <c>run</c> section: where outputs go, the base model, the seed and the device.</summary>
public sealed class RunOptions : IValidatableOptions
{
    /// <summary>Folder that holds every stage's outputs (relative to the pipeline file).</summary>
    public string Root { get; set; } = "runs";

    /// <summary>Hugging Face model folder of the base model (the teacher, and what adapters attach to).</summary>
    public string BaseModel { get; set; } = "data/models/forgetless-base";

    /// <summary>Seed for every random choice in the pipeline; same seed and inputs give the same bytes.</summary>
    public int Seed { get; set; } = 1234;

    public DeviceChoice Device { get; set; } = DeviceChoice.Auto;

    /// <summary>
    /// Compute threads for libtorch; 0: the cores this process may use (its CPU affinity, capped by a cgroup CPU quota;
    /// see <see cref="TorchThreads"/>), or <c>OMP_NUM_THREADS</c> when that is set.
    /// </summary>
    public int Threads { get; set; }

    /// <summary>
    /// Folder of the content-keyed caches (base-model scores, Fisher, teacher passes); empty: ROOT/.cache. Runs that
    /// share a base model can share it (a study's cells do), so the base model is scored once.
    /// </summary>
    [DoesNotChangeResults] // every entry is keyed by the hash of what it was computed from
    public string CacheRoot { get; set; } = "";

    /// <summary>
    /// The type of frozen weights and activations: fp32, bf16 or fp16 (with loss scaling). Trainable parameters and
    /// optimizer state are f32 whatever it is. On the CPU half precision runs libtorch's slow fallback kernels
    /// (50–300× slower than f32 here), so it is used there only with <see cref="ForcePrecision"/>.
    /// </summary>
    public Model.Devices.Precision Precision { get; set; } = Model.Devices.Precision.Fp32;

    /// <summary>Use <see cref="Precision"/> on the CPU too (tests of the half-precision path; slow).</summary>
    public bool ForcePrecision { get; set; }

    /// <summary>Memory the run may use, in GB (0: the device's own: GPU memory, or the memory available on the CPU).</summary>
    public double MaxMemoryGb { get; set; }

    /// <summary>Also write training and evaluation metrics as TensorBoard event files under <c>ROOT/tensorboard/</c>.</summary>
    [DoesNotChangeResults]
    public bool Tensorboard { get; set; }

    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(Root)) yield return "root: must name a folder";
        if (string.IsNullOrWhiteSpace(BaseModel)) yield return "baseModel: must name a Hugging Face model folder";
        if (Threads < 0) yield return $"threads = {Threads}: must be 0 (default) or a positive number";
        if (MaxMemoryGb < 0 || double.IsNaN(MaxMemoryGb)) yield return $"maxMemoryGb = {MaxMemoryGb.ToString(System.Globalization.CultureInfo.InvariantCulture)}: must be 0 (the device's memory) or more";
    }
}
