using System.Security.Cryptography;

namespace Forgetless.Packaging;

/// <summary>
/// The last steps every package shares, single adapter or adapter set: the in-toto statement (and its DSSE envelope
/// when a signing key is given), SHA256SUMS over everything, then the deterministic archive of the folder.
/// </summary>
public static class PackageSeal
{
    /// <summary>Writes the statement, signs it, lists the checksums and archives <paramref name="folder"/>; returns the archive's path.</summary>
    public static string Write(string folder, string statement, ECDsa? signingKey, PackageOptions options, string outputDirectory, long? epoch)
    {
        Runs.AtomicFile.WriteAllText(Path.Combine(folder, InTotoStatement.FileName), statement);
        if (signingKey is not null)
        {
            var envelope = Dsse.Sign(System.Text.Encoding.UTF8.GetBytes(statement), Dsse.InTotoPayloadType, signingKey);
            Runs.AtomicFile.WriteAllText(Path.Combine(folder, InTotoStatement.EnvelopeFileName), envelope.ToJsonString() + "\n");
        }
        Sha256Sums.Write(folder);

        string archive = Path.Combine(outputDirectory, options.ArchiveFileName);
        if (options.Archive == ArchiveFormat.Zip) DeterministicArchive.WriteZip(folder, options.Name, archive, epoch);
        else DeterministicArchive.WriteTarGz(folder, options.Name, archive, epoch);
        return archive;
    }
}
