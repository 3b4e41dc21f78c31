using System.Globalization;
using Forgetless.Configuration;
using Forgetless.Model;

namespace Forgetless.Peft;

/// <summary>
/// LoRA (Hu et al. 2021), with DoRA (Liu et al. 2024) and rsLoRA (Kalajdzievski 2023) as switches: a low-rank
/// update B·A beside each target projection (<see cref="LoraLinear"/>). Writes and reads PEFT's LORA folder
/// exactly (<see cref="LoraAdapterConfig"/>), also folders other tools wrote; merges by folding s·B·A into W.
/// </summary>
public class LoraMethod : PeftMethod
{
    public override string Name => "lora";
    public override string Summary => "low-rank update B·A on the target projections (DoRA, rsLoRA as switches); PEFT's LORA format";
    public override string PeftType => LoraAdapterConfig.PeftType;
    public override IReadOnlyList<(string Name, Type Options)> Sections => [("lora", typeof(LoraSection))];

    protected override TunedModel Inject(CausalLM model, PluginSections sections, long seed)
    {
        var lora = sections.Get<LoraSection>("lora");
        var adapted = InjectTargets(lora, () => Lora.Apply(model, lora.Targets(), lora.Layer(seed)));
        Freezing.OnlyAdapters(model);
        return new TunedModel(model, this, Freezing.Trainable(model), adapted, sections);
    }

    /// <summary>Runs an injection; a target that matches nothing or is not linear becomes a config error naming the key.</summary>
    protected static IReadOnlyList<string> InjectTargets(LoraSection lora, Func<IReadOnlyList<string>> inject) =>
        AdapterInjector.AsConfigError(lora.TargetKey, lora.Targets(), inject);

    public override void Save(TunedModel tuned, string folder, string? baseModel)
    {
        var lora = tuned.Sections.Get<LoraSection>("lora");
        var config = new LoraAdapterConfig
        {
            Targets = lora.Targets(),
            Options = lora.Layer(0),
            BaseModelNameOrPath = baseModel,
            FanInFanOut = tuned.AdaptedModules.Any(tuned.Model.FanInFanOutModules.Contains),
        };
        Write(folder, tuned.Model, config);
        AtomicWrite(Path.Combine(folder, "README.md"), ShortCard(config));
    }

    public override void Load(CausalLM model, AdapterFolder.Info folder) => LoadInto(model, folder);

    /// <summary>
    /// Injects LoRA into any module tree as the folder's config says and loads its tensors; <paramref name="defaultTargets"/>
    /// stands in for a missing target_modules (PEFT's per-model default). Returns the config.
    /// </summary>
    public static LoraAdapterConfig LoadInto(TorchSharp.torch.nn.Module model, AdapterFolder.Info folder, IReadOnlyList<string>? defaultTargets = null)
    {
        var config = Read(folder, defaultTargets);
        Lora.Apply(model, config.Targets, config.Options);
        AdapterTensors.LoadWeights(folder.Folder, model);
        return config;
    }

    /// <summary>Rewritten from the adapter as loaded, so the package holds exactly PEFT's files (no <c>.default</c> infix, fan_in_fan_out set for GPT-2 Conv1D targets).</summary>
    public override void Export(AdapterFolder.Info folder, CausalLM adapted, string baseModelName, string target)
    {
        var adaptedPaths = AdapterLayers.Find(adapted).Select(l => l.path).ToList();
        Write(target, adapted, Read(folder) with
        {
            BaseModelNameOrPath = baseModelName,
            FanInFanOut = adaptedPaths.Any(adapted.FanInFanOutModules.Contains),
            InferenceMode = true,
        });
    }

    public override void Merge(CausalLM adapted) => Lora.MergeAll(adapted);

    /// <summary>The folder's config; <paramref name="defaultTargets"/> stands in for a missing target_modules (PEFT's per-model default).</summary>
    public static LoraAdapterConfig Read(AdapterFolder.Info folder, IReadOnlyList<string>? defaultTargets = null) =>
        LoraAdapterConfig.FromJson(folder.Config.ToJsonString(), folder.ConfigPath, defaultTargets);

    /// <summary>Writes a PEFT LoRA folder (config + tensors). Same adapter and config → same bytes.</summary>
    public static void Write(string folder, TorchSharp.torch.nn.Module model, LoraAdapterConfig config)
    {
        AdapterTensors.SaveWeights(folder, model);
        AtomicWrite(Path.Combine(folder, AdapterFolder.ConfigFile), config.ToJson());
    }

    /// <summary>The short card PEFT's save_pretrained puts beside a LoRA adapter (a package replaces it with its own).</summary>
    private static string ShortCard(LoraAdapterConfig c) => string.Create(CultureInfo.InvariantCulture,
        $"""
        ---
        library_name: peft
        base_model: {c.BaseModelNameOrPath ?? "unknown"}
        ---

        # LoRA adapter

        Written by Forgetless. r={c.Options.R}, lora_alpha={c.Options.Alpha}, use_rslora={c.Options.UseRsLora}, use_dora={c.Options.UseDora}, target_modules={c.Targets}.

        """);

    private static void AtomicWrite(string path, string text) => Runs.AtomicFile.WriteAllText(path, text);
}
