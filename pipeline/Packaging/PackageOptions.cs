using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace Forgetless.Packaging;

public enum ArchiveFormat { TarGz, Zip }

/// <summary>
/// The <c>package</c> section of forgetless.json: what the release package is called and which
/// extra forms (merged model, .nupkg) it carries. Paths are relative to the pipeline file.
/// </summary>
public sealed partial class PackageOptions : Configuration.IValidatableOptions
{
    /// <summary>Package name: the folder under runs/package/ and the archive's base name.</summary>
    public string Name { get; set; } = "forgetless-adapter";

    /// <summary>Semantic version of the package (also the .nupkg version).</summary>
    public string Version { get; set; } = "0.1.0";

    /// <summary><c>tarGz</c> (default) or <c>zip</c>.</summary>
    public ArchiveFormat Archive { get; set; } = ArchiveFormat.TarGz;

    /// <summary>Also write <c>merged/</c>: the base model with the adapter folded in, as an HF model folder.</summary>
    public bool ExportMerged { get; set; }

    /// <summary>Also write <c>NAME.VERSION.nupkg</c> so .NET apps can take the adapter as a package reference.</summary>
    public bool Nupkg { get; set; }

    public string Authors { get; set; } = "Forgetless";

    public string Description { get; set; } = "LoRA/PEFT adapter fine-tuned and gated against forgetting by Forgetless.";

    /// <summary>SPDX license expression of the package (NuGet's license type="expression").</summary>
    public string License { get; set; } = "Apache-2.0";

    /// <summary>
    /// What adapter_config.json's <c>base_model_name_or_path</c> says in the package (e.g. an HF hub id);
    /// empty: the base model folder's name. Never an absolute path, so that the package is portable.
    /// </summary>
    public string BaseModelName { get; set; } = "";

    /// <summary>
    /// An adapter folder to package instead of the candidate stage's output; empty: evaluate's candidate. Its bytes must
    /// be the ones the evaluate stage judged (a copy of that adapter), or the stage refuses.
    /// </summary>
    public string Adapter { get; set; } = "";

    /// <summary>
    /// PEM ECDSA private key that signs the provenance (a DSSE envelope, <c>provenance.intoto.jsonl</c>): a file path
    /// (relative to the pipeline file) or <c>env:VARIABLE</c> holding the PEM text; empty: unsigned. Neither the key nor
    /// where it lies is recorded anywhere: the stage fingerprints the public key's id.
    /// </summary>
    [JsonIgnore]
    public string SigningKey { get; set; } = "";

    /// <summary>The SLSA <c>builder.id</c>: who ran the build and is trusted to have recorded it (e.g. a CI workflow's URI).</summary>
    public string BuilderId { get; set; } = "urn:forgetless:builder:local";

    public IEnumerable<string> Validate()
    {
        if (!NamePattern().IsMatch(Name))
            yield return $"name = '{Name}': use letters, digits, '.', '-' or '_' (it names a folder, an archive and a NuGet id)";
        if (!VersionPattern().IsMatch(Version))
            yield return $"version = '{Version}': expected a semantic version such as 0.1.0 or 1.2.0-rc.1";
        if (string.IsNullOrWhiteSpace(Authors)) yield return "authors: must not be empty (NuGet requires it)";
        if (string.IsNullOrWhiteSpace(Description)) yield return "description: must not be empty (NuGet requires it)";
        if (string.IsNullOrWhiteSpace(License)) yield return "license: must be an SPDX license expression such as Apache-2.0 or MIT";
        if (Path.IsPathRooted(BaseModelName)) yield return $"baseModelName = '{BaseModelName}': give a name (e.g. an HF hub id), not a path";
        if (SigningKey == Packaging.SigningKeys.EnvironmentPrefix) yield return "signingKey = 'env:': name the environment variable (env:NAME)";
        if (!Uri.TryCreate(BuilderId, UriKind.Absolute, out _)) yield return $"builderId = '{BuilderId}': expected an absolute URI (e.g. https://ci.example.com/pipelines/release or urn:…)";
    }

    /// <summary>Canonical JSON (camelCase, enums as names): what the run store fingerprints.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>The archive's file name, e.g. <c>forgetless-adapter-0.1.0.tar.gz</c>.</summary>
    public string ArchiveFileName => $"{Name}-{Version}" + (Archive == ArchiveFormat.Zip ? ".zip" : ".tar.gz");

    public string NupkgFileName => $"{Name}.{Version}.nupkg";

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
    private static partial Regex NamePattern();

    [GeneratedRegex(@"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")]
    private static partial Regex VersionPattern();
}
