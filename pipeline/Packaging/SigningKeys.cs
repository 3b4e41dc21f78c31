using System.Security.Cryptography;
using Forgetless.Configuration;

namespace Forgetless.Packaging;

/// <summary>
/// ECDSA keys for signing provenance, as PEM: the private key (SEC1 <c>EC PRIVATE KEY</c> or PKCS#8
/// <c>PRIVATE KEY</c>, unencrypted — keep it in a CI secret) from a file or an environment variable, and the public key
/// (<c>PUBLIC KEY</c>, SubjectPublicKeyInfo) that verifies. P-256 signs with SHA-256, P-384 with SHA-384, P-521 with
/// SHA-512. A key's id is the SHA-256 of its public key (SubjectPublicKeyInfo DER), in hex.
/// </summary>
public static class SigningKeys
{
    public const string EnvironmentPrefix = "env:";

    /// <summary>
    /// The private key named by <c>package.signingKey</c>: <c>env:NAME</c> reads the PEM text from environment variable
    /// NAME; anything else is a file path, relative to <paramref name="baseDirectory"/>. Errors name the setting.
    /// </summary>
    public static ECDsa LoadPrivate(string reference, string baseDirectory)
    {
        string where, pem;
        if (reference.StartsWith(EnvironmentPrefix, StringComparison.Ordinal))
        {
            string name = reference[EnvironmentPrefix.Length..];
            where = $"package.signingKey = '{reference}'";
            pem = Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value
                : throw new ConfigException($"{where}: environment variable {name} is not set (it should hold the PEM text of the signing key)");
        }
        else
        {
            string path = Path.GetFullPath(reference, baseDirectory);
            where = $"package.signingKey = '{reference}' ({path})";
            pem = File.Exists(path) ? File.ReadAllText(path) : throw new ConfigException($"{where}: file not found");
        }
        var key = Import(pem, where, "an ECDSA private key in PEM (BEGIN EC PRIVATE KEY or BEGIN PRIVATE KEY)", message => new ConfigException(message));
        try
        {
            key.ExportParameters(includePrivateParameters: true);
        }
        catch (CryptographicException)
        {
            key.Dispose();
            throw new ConfigException($"{where}: holds only a public key; signing needs the private key");
        }
        return key;
    }

    /// <summary>The public key in a PEM file (what <c>verify --key</c> takes); errors name the file.</summary>
    public static ECDsa LoadPublic(string path)
    {
        if (!File.Exists(path)) throw new PackageException($"--key {path}: file not found");
        return Import(File.ReadAllText(path), $"--key {path}", "an ECDSA public key in PEM (BEGIN PUBLIC KEY)", message => new PackageException(message));
    }

    private static ECDsa Import(string pem, string where, string expected, Func<string, Exception> error)
    {
        if (pem.Contains("ENCRYPTED", StringComparison.Ordinal))
            throw error($"{where}: the key is encrypted; give it unencrypted (keep it in a CI secret or a file only the build can read)");
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            return key;
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            key.Dispose();
            throw error($"{where}: not {expected} ({e.Message})");
        }
    }

    public static string KeyId(ECDsa key) => Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo()));

    public static HashAlgorithmName HashFor(ECDsa key) => key.KeySize switch
    {
        <= 256 => HashAlgorithmName.SHA256,
        <= 384 => HashAlgorithmName.SHA384,
        _ => HashAlgorithmName.SHA512,
    };

    /// <summary>Bytes of one coordinate (r or s) in a raw signature.</summary>
    public static int FieldBytes(ECDsa key) => (key.KeySize + 7) / 8;
}
