using System.Text;
using System.Xml.Linq;

namespace Forgetless.Packaging;

/// <summary>
/// A .nupkg that carries the adapter as content files: <c>contentFiles/any/any/adapters/NAME/…</c> with
/// buildAction None and copyToOutput true, so a project with a PackageReference gets the adapter folder
/// copied to its output as <c>adapters/NAME/</c>. The zip is as deterministic as the tar.gz.
/// </summary>
public static class NugetPackage
{
    private static readonly XNamespace Nuspec = "http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd";
    private static readonly XNamespace Rels = "http://schemas.openxmlformats.org/package/2006/relationships";
    private static readonly XNamespace Types = "http://schemas.openxmlformats.org/package/2006/content-types";

    public static string ContentFolder(string name) => $"contentFiles/any/any/adapters/{name}/";

    /// <param name="files">Relative paths (under <paramref name="folder"/>) to carry.</param>
    /// <param name="replaced">Contents to carry instead of a file's own bytes (a SHA256SUMS over just these files).</param>
    public static void Write(string path, string folder, IEnumerable<string> files, PackageOptions options,
        IReadOnlyDictionary<string, byte[]>? replaced = null, long? epoch = null)
    {
        string nuspecName = options.Name + ".nuspec";
        var content = files.Order(StringComparer.Ordinal).ToList();
        var nuspec = new XDocument(new XDeclaration("1.0", "utf-8", null),
            new XElement(Nuspec + "package",
                new XElement(Nuspec + "metadata",
                    new XElement(Nuspec + "id", options.Name),
                    new XElement(Nuspec + "version", options.Version),
                    new XElement(Nuspec + "authors", options.Authors),
                    new XElement(Nuspec + "license", new XAttribute("type", "expression"), options.License),
                    new XElement(Nuspec + "description", options.Description),
                    new XElement(Nuspec + "tags", "forgetless peft adapter"),
                    new XElement(Nuspec + "contentFiles",
                        new XElement(Nuspec + "files",
                            new XAttribute("include", $"any/any/adapters/{options.Name}/**"),
                            new XAttribute("buildAction", "None"),
                            new XAttribute("copyToOutput", "true"),
                            new XAttribute("flatten", "false"))))));
        var rels = new XDocument(new XDeclaration("1.0", "utf-8", null),
            new XElement(Rels + "Relationships",
                new XElement(Rels + "Relationship",
                    new XAttribute("Type", "http://schemas.microsoft.com/packaging/2010/07/manifest"),
                    new XAttribute("Target", "/" + nuspecName),
                    new XAttribute("Id", "Rnuspec"))));
        // OPC needs a content type for every part: one per extension, an override for files without one.
        var types = new XElement(Types + "Types",
            new XElement(Types + "Default", new XAttribute("Extension", "rels"), new XAttribute("ContentType", "application/vnd.openxmlformats-package.relationships+xml")),
            new XElement(Types + "Default", new XAttribute("Extension", "nuspec"), new XAttribute("ContentType", "application/octet")));
        foreach (var ext in content.Select(Path.GetExtension).Where(e => !string.IsNullOrEmpty(e)).Select(e => e![1..]).Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.Ordinal))
            if (ext is not ("rels" or "nuspec"))
                types.Add(new XElement(Types + "Default", new XAttribute("Extension", ext), new XAttribute("ContentType", "application/octet")));
        foreach (var file in content.Where(f => string.IsNullOrEmpty(Path.GetExtension(f))))
            types.Add(new XElement(Types + "Override", new XAttribute("PartName", "/" + ContentFolder(options.Name) + file), new XAttribute("ContentType", "application/octet")));

        var entries = new List<(string, Func<Stream>)>
        {
            ("_rels/.rels", () => Xml(rels)),
            (nuspecName, () => Xml(nuspec)),
        };
        entries.AddRange(content.Select(f => (ContentFolder(options.Name) + f, (Func<Stream>)(() =>
            replaced is not null && replaced.TryGetValue(f, out var bytes) ? new MemoryStream(bytes) : File.OpenRead(Path.Combine(folder, f))))));
        entries.Add(("[Content_Types].xml", () => Xml(new XDocument(new XDeclaration("1.0", "utf-8", null), types))));
        DeterministicArchive.WriteZip(path, entries, epoch);
    }

    private static MemoryStream Xml(XDocument doc)
    {
        var text = new StringBuilder();
        using (var writer = new Utf8StringWriter(text)) doc.Save(writer, SaveOptions.None);
        return new MemoryStream(new UTF8Encoding(false).GetBytes(text.ToString().Replace("\r\n", "\n") + "\n"));
    }

    private sealed class Utf8StringWriter(StringBuilder builder) : StringWriter(builder, System.Globalization.CultureInfo.InvariantCulture)
    {
        public override Encoding Encoding => new UTF8Encoding(false);
    }
}
