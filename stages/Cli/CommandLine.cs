namespace Forgetless.Stages.Cli;

/// <summary>
/// The parsed command line: <c>forgetless VERB [positional...] [--flag] [--name value] [--set key=value]...</c>.
/// Parsing knows no verbs; each verb reads the options it understands and rejects the rest.
/// </summary>
public sealed class CommandLine
{
    private readonly Dictionary<string, List<string>> options = new(StringComparer.Ordinal);
    private readonly HashSet<string> flags = new(StringComparer.Ordinal);
    private readonly HashSet<string> used = new(StringComparer.Ordinal);

    public string Verb { get; private init; } = "";
    public IReadOnlyList<string> Positional { get; private init; } = [];
    /// <summary>The command line as given, verb first (to start this command again, e.g. a study's cell in a process of its own).</summary>
    public IReadOnlyList<string> Arguments { get; private init; } = [];

    /// <summary>Options that never take a value.</summary>
    private static readonly HashSet<string> KnownFlags = ["force", "check", "help", "verbose", "greedy", "merged", "rerun-gates", "all", "wait", "memory"];

    public static CommandLine Parse(IReadOnlyList<string> args)
    {
        bool hasVerb = args.Count > 0 && !args[0].StartsWith('-');
        var positional = new List<string>();
        var result = new CommandLine { Verb = hasVerb ? args[0] : "help", Positional = positional, Arguments = args.ToArray() };
        for (int i = hasVerb ? 1 : 0; i < args.Count; i++)
        {
            string arg = args[i] == "-h" ? "--help" : args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
            {
                positional.Add(arg);
                continue;
            }
            string name = arg[2..];
            string? value = null;
            int eq = name.IndexOf('=');
            if (eq > 0)
                (name, value) = (name[..eq], name[(eq + 1)..]);
            bool nextIsValue = i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal);
            if (value is null && (KnownFlags.Contains(name) || !nextIsValue))
            {
                // A value-less option; if the verb expects a value, Option() says so.
                result.flags.Add(name);
                continue;
            }
            value ??= args[++i];
            if (!result.options.TryGetValue(name, out var list)) result.options[name] = list = [];
            list.Add(value);
        }
        return result;
    }

    public bool Flag(string name)
    {
        used.Add(name);
        return flags.Contains(name);
    }

    public string? Option(string name)
    {
        used.Add(name);
        if (flags.Contains(name) && !KnownFlags.Contains(name)) throw new UsageException($"--{name} needs a value");
        return options.TryGetValue(name, out var values) ? values[^1] : null;
    }

    public string RequiredOption(string name) =>
        Option(name) ?? throw new UsageException($"{Verb}: --{name} is required");

    public IReadOnlyList<string> Options(string name)
    {
        used.Add(name);
        if (flags.Contains(name) && !KnownFlags.Contains(name)) throw new UsageException($"--{name} needs a value");
        return options.TryGetValue(name, out var values) ? values : [];
    }

    /// <summary>Fails on options that the verb did not ask for, so a typo is never silently ignored.</summary>
    public void RejectUnused()
    {
        var unknown = options.Keys.Concat(flags).Where(k => !used.Contains(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        if (unknown.Count == 0) return;
        string? guess = Configuration.NearestName.Find(unknown[0], used);
        throw new UsageException($"{Verb}: unknown option --{unknown[0]}" + (guess is not null ? $" (did you mean --{guess}?)" : ""));
    }
}

/// <summary>A mistake on the command line; exits with <see cref="Runs.ExitCodes.Usage"/>.</summary>
public sealed class UsageException(string message) : Exception(message);
