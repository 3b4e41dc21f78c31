using Forgetless.Model;
using Forgetless.Peft;

namespace Forgetless.Packaging;

/// <summary>
/// Writes an adapter folder into a package the way its consumers expect it. The adapter is first applied to the base
/// model (so a package is never written for an adapter that does not fit its base), then its method exports it
/// (<see cref="PeftMethod.Export"/>: LoRA rewritten to exactly PEFT's files, other methods copied byte for byte with
/// a sorted config and the portable base model name).
/// </summary>
public static class AdapterExport
{
    /// <summary>Writes the package's adapter files into <paramref name="target"/>. Returns the peft_type.</summary>
    public static string Write(string adapterFolder, string baseModel, string baseModelName, string target)
    {
        var info = AdapterFolder.Describe(adapterFolder);
        var method = AdapterFolder.MethodOf(info);
        Directory.CreateDirectory(target);
        using var model = ModelFolder.LoadModel(baseModel);
        method.Load(model, info);
        method.Export(info, model, baseModelName, target);
        return info.PeftType;
    }
}
