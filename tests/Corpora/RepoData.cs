namespace Forgetless.Tests.Corpora;

/// <summary>Finds the committed data/ folder from the test's bin folder.</summary>
internal static class RepoData
{
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Forgetless.sln"))) return dir.FullName;
        }
        throw new DirectoryNotFoundException($"No Forgetless.sln above {AppContext.BaseDirectory}.");
    }
}
