using Parquet;
using Parquet.Schema;

namespace Forgetless.Data.Sources;

/// <summary>
/// Columns of a Parquet file, one row group at a time (memory: the mapped columns of the largest row group).
/// A row's number is its 1-based position in the file. Parquet has no async iterator here, so the row-group
/// reads are waited for synchronously; they are coarse (one per column per row group).
/// </summary>
internal static class ParquetSource
{
    public static IEnumerable<SourceRecord> Read(string path, FieldMapping mapping, CancellationToken cancellationToken)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var reader = Open(path, stream, cancellationToken);
        try
        {
            var fields = mapping.FieldNames.Select(name => Find(path, reader.Schema, name)).ToArray();
            long rowBase = 0;
            for (var g = 0; g < reader.RowGroupCount; g++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var columns = new string?[fields.Length][];
                long rows;
                using (var group = reader.OpenRowGroupReader(g))
                {
                    rows = group.RowCount;
                    for (var f = 0; f < fields.Length; f++)
                    {
                        columns[f] = new string?[rows];
                        group.ReadAsync(fields[f], columns[f].AsMemory(), null, cancellationToken).AsTask().GetAwaiter().GetResult();
                    }
                }
                var byName = mapping.FieldNames.Select((name, i) => (name, i)).ToDictionary(x => x.name, x => columns[x.i]);
                for (var r = 0; r < rows; r++)
                {
                    var row = r;
                    yield return mapping.Map(rowBase + r + 1, name => FieldMapping.Field.Of(byName[name][row]));
                }
                rowBase += rows;
            }
        }
        finally
        {
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    internal static ParquetReader Open(string path, Stream stream, CancellationToken cancellationToken)
    {
        try
        {
            return ParquetReader.CreateAsync(stream, leaveStreamOpen: true, cancellationToken: cancellationToken).GetAwaiter().GetResult();
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or NotSupportedException or InvalidOperationException or ArgumentException)
        {
            throw new DataFormatException(path, null, $"not a readable Parquet file ({ex.Message}); expected Parquet.", ex);
        }
    }

    internal static DataField Find(string path, ParquetSchema schema, string name)
    {
        var field = schema.GetDataFields().FirstOrDefault(f => f.Name == name && f.Path.Length == 1);
        if (field is null)
            throw new DataFormatException(path, null,
                $"has no top-level column '{name}'; found {string.Join(", ", schema.GetDataFields().Select(f => $"'{f.Path}'"))}.");
        if (field.IsArray || (field.ClrType != typeof(string) && field.ClrType != typeof(ReadOnlyMemory<char>)))
            throw new DataFormatException(path, null,
                $"column '{name}' holds {(field.IsArray ? "lists of " : "")}{Describe(field.ClrType)}; expected a string column.");
        return field;
    }

    private static string Describe(Type type) => type == typeof(ReadOnlyMemory<char>) ? "strings" : type.Name;
}
