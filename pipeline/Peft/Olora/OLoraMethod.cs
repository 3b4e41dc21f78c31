using Forgetless.Configuration;
using Forgetless.Model;
using Forgetless.Model.Safetensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Forgetless.Peft;

/// <summary>
/// O-LoRA's adapter (Wang et al. 2023, "Orthogonal Subspace Learning for Language Model Continual Learning"): each task
/// of a sequence trains a new LoRA block (<c>finetune.lora</c>'s shape) while the blocks of earlier tasks — read from
/// the adapter the run continues — stay frozen (<see cref="OLoraLinear"/>); pair it with the <c>orthogonality</c> term.
/// The folder is one plain PEFT LoRA of rank r_prev + r whose A stacks the blocks and whose B holds them with their
/// scaling folded in, so <see cref="LoraMethod"/> (and PEFT) read it like any LoRA and the next task continues it.
/// </summary>
public sealed class OLoraMethod : LoraMethod
{
    public override string Name => "olora";
    public override string Summary => "O-LoRA: a new LoRA block per task beside the frozen blocks of earlier tasks (pair with the orthogonality term); PEFT's LORA format";

    public override IEnumerable<string> Validate(PluginSections sections)
    {
        foreach (var e in base.Validate(sections)) yield return e;
        var lora = sections.Get<LoraSection>("lora");
        if (lora.UseDora) yield return "lora.useDora = true: O-LoRA stacks plain LoRA blocks; DoRA's magnitude cannot be split per task";
        if (lora.UseRsLora) yield return "lora.useRsLora = true: O-LoRA saves the stacked blocks as one LoRA with a plain α/r scaling";
        if (lora.Dropout > 0) yield return $"lora.dropout = {lora.Dropout}: O-LoRA's blocks are trained without dropout";
    }

    protected override TunedModel Inject(CausalLM model, PluginSections sections, long seed)
    {
        var lora = sections.Get<LoraSection>("lora");
        var adapted = InjectTargets(lora, () => AdapterInjector.Inject(model, lora.Targets(), (path, original) => new OLoraLinear(original, lora.Layer(seed), path)));
        Freezing.OnlyAdapters(model);
        return new TunedModel(model, this, Freezing.Trainable(model), adapted, sections);
    }

    /// <summary>The earlier adapter (a LORA folder) becomes the frozen earlier blocks: A as saved, B times its scaling.</summary>
    protected override void Continue(TunedModel tuned, AdapterFolder.Info earlier)
    {
        RequireType(earlier, "continues the LoRA blocks of an earlier lora or olora run");
        var config = Read(earlier);
        if (config.Options.UseDora) throw new ConfigException($"finetune.initAdapter = {earlier.Folder}: a DoRA adapter cannot be continued by O-LoRA");
        var tensors = SafetensorsFile.Open(earlier.WeightsPath).ReadAll();
        try
        {
            var byName = tensors.ToDictionary(kv => AdapterTensors.NormalizeKey(kv.Key), kv => kv.Value, StringComparer.Ordinal);
            foreach (var (path, layer) in AdapterLayers.Find(tuned.Model))
            {
                if (layer is not OLoraLinear o) continue;
                if (!byName.TryGetValue(path + ".lora_A.weight", out var a) || !byName.TryGetValue(path + ".lora_B.weight", out var b)) continue;
                using var scaling = config.Options.Scaling.ToScalar();
                using var scaled = b.mul(scaling);
                o.SetPrevious(a, scaled);
            }
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    /// <summary>One LoRA of rank r_prev + r: A = [A_prev; A], B = [B_prev / s, B], α = s·(r_prev + r), so its α/r is the new block's s.</summary>
    public override void Save(TunedModel tuned, string folder, string? baseModel)
    {
        var lora = tuned.Sections.Get<LoraSection>("lora");
        var layers = AdapterLayers.Find(tuned.Model).Where(l => l.layer is OLoraLinear).Select(l => (l.path, Layer: (OLoraLinear)l.layer)).ToList();
        int rank = lora.R + (int)layers.Max(l => l.Layer.PreviousA.shape[0]);
        if (layers.Any(l => l.Layer.PreviousA.shape[0] + lora.R != rank))
            throw new InvalidOperationException("O-LoRA: every adapted layer must carry the same earlier rank to be saved as one LoRA");
        double s = layers[0].Layer.Scaling;
        using var scaling = s.ToScalar();
        Directory.CreateDirectory(folder);
        var tensors = new SortedDictionary<string, Tensor>(StringComparer.Ordinal);
        using (no_grad())
            foreach (var (path, layer) in layers)
            {
                tensors[AdapterTensors.KeyPrefix + path + ".lora_A.weight"] = cat([layer.PreviousA, layer.lora_A.weight.detach()], 0);
                tensors[AdapterTensors.KeyPrefix + path + ".lora_B.weight"] = cat([layer.PreviousB.div(scaling), layer.lora_B.weight.detach()], 1);
            }
        try
        {
            SafetensorsWriter.Write(Path.Combine(folder, AdapterTensors.WeightsFile), tensors, SafetensorsDType.Keep, new Dictionary<string, string> { ["format"] = "pt" });
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
        var config = new LoraAdapterConfig
        {
            Targets = lora.Targets(),
            Options = new LoraOptions { R = rank, Alpha = s * rank },
            BaseModelNameOrPath = baseModel,
            FanInFanOut = tuned.AdaptedModules.Any(tuned.Model.FanInFanOutModules.Contains),
        };
        Runs.AtomicFile.WriteAllText(Path.Combine(folder, AdapterFolder.ConfigFile), config.ToJson());
    }
}
