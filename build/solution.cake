// Restore, build and test the solution. The solution is built once per invocation; stage
// targets run the built executable directly instead of `dotnet run` (no rebuild per stage).
Task("Restore")
    .Description("Restore NuGet packages and local tools")
    .Does(() => DotNetRestore(solution));

Task("Build")
    .Description("Build the engine, the forgetless executable and the tests")
    .IsDependentOn("Restore")
    .Does(() => DotNetBuild(solution, new DotNetBuildSettings
    {
        Configuration = configuration,
        NoRestore = true,
        NoLogo = true,
    }));

Task("Test")
    .Description("Run the test suite; prints 'N passed, N failed' and fails on any failure")
    .IsDependentOn("Build")
    .Does(() =>
    {
        var results = MakeAbsolute(Directory("./artifacts/test-results"));
        CleanDirectory(results);
        Exception failure = null;
        try
        {
            DotNetTest(solution, new DotNetTestSettings
            {
                Configuration = configuration,
                NoBuild = true,
                NoRestore = true,
                Loggers = new[] { "trx", "console;verbosity=normal" },
                ResultsDirectory = results,
            });
        }
        catch (Exception e)
        {
            failure = e;
        }
        // Count from the test results themselves, not from the runner's prose.
        int passed = 0, failed = 0, skipped = 0;
        foreach (var trx in GetFiles(results.FullPath + "/**/*.trx"))
        {
            var counters = System.Xml.Linq.XDocument.Load(trx.FullPath).Descendants()
                .First(e => e.Name.LocalName == "Counters");
            passed += int.Parse(counters.Attribute("passed").Value);
            failed += int.Parse(counters.Attribute("failed").Value) + int.Parse(counters.Attribute("error").Value)
                      + int.Parse(counters.Attribute("timeout").Value) + int.Parse(counters.Attribute("aborted").Value);
            skipped += int.Parse(counters.Attribute("notExecuted").Value);
        }
        // Plain Console: Cake's log formatting would colour the numbers and CI reads this line verbatim.
        Console.WriteLine();
        Console.WriteLine($"{passed} passed, {failed} failed, {skipped} skipped");
        if (failed > 0 || failure != null) throw new CakeException(1, "tests failed" + (failure != null ? ": " + failure.Message : ""));
        if (passed == 0) throw new CakeException(1, "no test ran");
    });
