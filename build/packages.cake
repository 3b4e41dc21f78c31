// The packages that take Forgetless to other repositories (docs/use-in-your-repository.md):
//   forgetless, forgetless.linux-x64   the dotnet tool: the stages project packed (build/ForgetlessTool.targets)
//   Forgetless.Sdk                      the MSBuild project SDK for .fgproj adapter projects (sdk/)
// `dotnet cake --target=Pack` writes them to artifacts/packages, a folder feed `dotnet tool install --add-source` reads.
Task("Pack")
    .Description("Pack the forgetless dotnet tool (with libtorch and the example data; --torch-backend=cuda for the CUDA variant, forgetless-cuda) and the Forgetless.Sdk MSBuild SDK into artifacts/packages")
    .IsDependentOn("Build")
    .Does<BuildParameters>((context, p) =>
    {
        var output = MakeAbsolute(Directory("./artifacts/packages"));
        CleanDirectory(output);
        var settings = new DotNetPackSettings
        {
            Configuration = p.Configuration,
            OutputDirectory = output,
            NoLogo = true,
        };
        // Only when it differs from the default: another global property would rebuild what Build just built.
        if (p.TorchBackend != "cpu") settings.MSBuildSettings = new DotNetMSBuildSettings().WithProperty("TorchBackend", p.TorchBackend);
        DotNetPack("./stages/Forgetless.Stages.csproj", settings);
        DotNetPack("./sdk/Forgetless.Sdk.csproj", settings);
        foreach (var package in GetFiles(output.FullPath + "/*.nupkg"))
            Information("{0,-44} {1,8:F1} MB", package.GetFilename(), new System.IO.FileInfo(package.FullPath).Length / 1e6);
    });
