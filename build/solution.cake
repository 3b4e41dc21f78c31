// Restore, build and test the solution. Stage targets run the built executable (build/forgetless.cake).
Task("Restore")
    .Description("Restore NuGet packages and local tools")
    .Does<BuildParameters>((context, p) => DotNetRestore(p.Solution));

Task("Build")
    .Description("Build the engine, the forgetless executable and the tests")
    .IsDependentOn("Restore")
    .Does<BuildParameters>((context, p) => DotNetBuild(p.Solution, new DotNetBuildSettings
    {
        Configuration = p.Configuration,
        NoRestore = true,
        NoLogo = true,
    }));

// The one place that counts test results; .ci/run relies on this task's closing line and exit code.
Task("Test")
    .Description("Run the test suite; ends with 'N passed, N failed, N skipped' counted from the TRX results and fails on any failure or when no test ran")
    .IsDependentOn("Build")
    .Does<BuildParameters>((context, p) =>
    {
        var results = MakeAbsolute(Directory("./artifacts/test-results"));
        CleanDirectory(results);
        Exception failure = null;
        try
        {
            DotNetTest(p.Solution, new DotNetTestSettings
            {
                Configuration = p.Configuration,
                NoBuild = true,
                NoRestore = true,
                Loggers = new[] { "trx", "console;verbosity=normal" },
                ResultsDirectory = results,
                // If the test host dies (a native crash), vstest names the tests that were running when it did.
                ArgumentCustomization = args => args.Append("--blame"),
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
            int Count(string name) => int.Parse(counters.Attribute(name)?.Value ?? "0");
            passed += Count("passed");
            failed += Count("failed") + Count("error") + Count("timeout") + Count("aborted");
            // vstest leaves the notExecuted counter at 0 for a skipped test: it is the one counted but not executed.
            skipped += Count("total") - Count("executed");
        }
        // Plain Console: Cake's log formatting would colour the numbers and CI reads this line verbatim.
        Console.WriteLine();
        Console.WriteLine($"{passed} passed, {failed} failed, {skipped} skipped");
        if (failed > 0 || failure != null) throw new CakeException(1, "tests failed" + (failure != null ? ": " + failure.Message : ""));
        if (passed == 0) throw new CakeException(1, "no test ran");
    });
