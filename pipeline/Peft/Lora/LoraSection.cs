using System.Globalization;
using Forgetless.Configuration;

namespace Forgetless.Peft;

/// <summary>
/// <c>finetune.lora</c>: the LoRA adapter (PEFT's LoraConfig). qlora reads it too, for the adapter on its NF4 base.
/// DoRA and rsLoRA are switches of this section.
/// </summary>
public sealed class LoraSection : IValidatableOptions
{
    public int R { get; set; } = 8;
    public double Alpha { get; set; } = 16;
    public double Dropout { get; set; }
    /// <summary>PEFT target_modules as a list of names (suffix match).</summary>
    public List<string> TargetModules { get; set; } = ["q_proj", "v_proj"];
    /// <summary>PEFT target_modules as a full-match regex; when set it replaces <see cref="TargetModules"/>.</summary>
    public string? TargetRegex { get; set; }
    public List<int>? LayersToTransform { get; set; }
    public bool UseRsLora { get; set; }
    public bool UseDora { get; set; }

    /// <summary>The key a target mistake is reported under.</summary>
    public string TargetKey => string.IsNullOrEmpty(TargetRegex) ? "finetune.lora.targetModules" : "finetune.lora.targetRegex";

    /// <summary>The PEFT-style target description.</summary>
    public ModuleTargets Targets() => !string.IsNullOrEmpty(TargetRegex)
        ? ModuleTargets.FullMatch(TargetRegex)
        : new ModuleTargets { Names = TargetModules.ToArray(), LayersToTransform = LayersToTransform?.ToArray() };

    public LoraOptions Layer(long seed) => new()
    {
        R = R, Alpha = Alpha, Dropout = Dropout, UseRsLora = UseRsLora, UseDora = UseDora, Seed = seed,
    };

    public IEnumerable<string> Validate()
    {
        if (R <= 0) yield return $"r = {R}: must be a positive whole number";
        if (!(Alpha > 0)) yield return $"alpha = {F(Alpha)}: must be greater than 0";
        if (Dropout is < 0 or >= 1 || double.IsNaN(Dropout)) yield return $"dropout = {F(Dropout)}: must be in [0, 1)";
        if (string.IsNullOrEmpty(TargetRegex) && TargetModules.Count == 0)
            yield return "targetModules: is empty; name the projections to adapt (e.g. [q_proj, v_proj]) or set lora.targetRegex";
        if (!string.IsNullOrEmpty(TargetRegex))
        {
            string? problem = null;
            try { _ = new System.Text.RegularExpressions.Regex(TargetRegex); }
            catch (ArgumentException e) { problem = e.Message; }
            if (problem is not null) yield return $"targetRegex = '{TargetRegex}': not a valid regular expression ({problem})";
            if (LayersToTransform is not null) yield return "layersToTransform: works only with lora.targetModules, not with lora.targetRegex (as in PEFT)";
        }
    }

    private static string F(double v) => v.ToString(CultureInfo.InvariantCulture);
}
