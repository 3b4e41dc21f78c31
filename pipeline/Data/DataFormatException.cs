namespace Forgetless.Data;

/// <summary>
/// Input data a user supplied is not what prepare expects. The message names the file, the line or row
/// (1-based) when there is one, and what was expected.
/// </summary>
public sealed class DataFormatException : UserInputException
{
    public DataFormatException(string file, long? line, string problem, Exception? inner = null)
        : base(Format(file, line, problem), inner)
    {
        File = file;
        Line = line;
        Problem = problem;
    }

    public string File { get; }

    /// <summary>Line of a text file (JSON lines, CSV record start, plain text) or row of a Parquet file; 1-based.</summary>
    public long? Line { get; }

    public string Problem { get; }

    internal static string Format(string file, long? line, string problem) =>
        line is { } l ? $"{file}:{l}: {problem}" : $"{file}: {problem}";
}
