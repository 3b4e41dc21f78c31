using System.Collections.Immutable;
using Forgetless.Analyzers;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;

namespace Forgetless.Tests.Analyzers;

/// <summary>FL0001 on small programs compiled against the real TorchSharp: what it reports and what it lets pass.</summary>
public sealed class TemporaryScalarAnalyzerTests
{
    private const string Prelude = """
        using System;
        using TorchSharp;
        using static TorchSharp.torch;
        static class Held { public static readonly Scalar Zero = 0.ToScalar(), Half = 0.5.ToScalar(), One = 1.ToScalar(); }
        sealed class Module { private readonly Scalar scale; public Module(double s) { scale = s.ToScalar(); } public Tensor Run(Tensor x) => x.mul(scale); }
        static class Code
        {
            static Tensor Run(Tensor x, Tensor y, double lr)
            {

        """;

    private const string Postlude = """

                return x;
            }
        }
        """;

    private static async Task<IReadOnlyList<Diagnostic>> Analyze(string body)
    {
        var tree = CSharpSyntaxTree.ParseText(Prelude + body + Postlude);
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Select(path => MetadataReference.CreateFromFile(path))
            .Append(MetadataReference.CreateFromFile(typeof(TorchSharp.torch).Assembly.Location));
        var compilation = CSharpCompilation.Create("Probe", [tree], references, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).Should().BeEmpty("the probe program must compile");
        var diagnostics = await compilation.WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new TemporaryScalarAnalyzer()))
            .GetAnalyzerDiagnosticsAsync();
        return diagnostics;
    }

    [Theory]
    [InlineData("x = x.mul(0.5);")]                                  // a number made into a Scalar for one call
    [InlineData("x = x.clamp_min(lr);")]
    [InlineData("var s = lr.ToScalar(); x = x.mul(s);")]             // a plain local: dead once its handle is read
    [InlineData("x = x.mul(lr.ToScalar());")]
    [InlineData("x = x + y;")]                                       // operator + is add(y) is add(y, alpha: 1)
    [InlineData("x += y;")]
    [InlineData("x = x * 2;")]                                       // a number operand is converted inside TorchSharp
    [InlineData("x = 1.0 - x;")]
    [InlineData("x = x.add(y);")]
    [InlineData("x.add_(y);")]
    [InlineData("x = x.addcdiv(y, y);")]
    [InlineData("x = x.square();")]
    [InlineData("x = linalg.vector_norm(x, 2);")]
    [InlineData("double d = x.ToDouble();")]
    [InlineData("using Scalar stop = 10; x = arange(stop, ScalarType.Int64);")]   // from the list: arange(0, stop, 1) inside
    [InlineData("x = x - 1.5;")]
    public async Task A_scalar_that_lives_for_one_call_is_reported(string body)
    {
        var diagnostics = await Analyze(body);
        diagnostics.Should().ContainSingle().Which.Id.Should().Be(TemporaryScalarAnalyzer.DiagnosticId);
        diagnostics[0].Severity.Should().Be(DiagnosticSeverity.Error);
    }

    [Theory]
    [InlineData("x = x.mul(Held.Half);")]                            // a static field
    [InlineData("x = new Module(lr).Run(x);")]                       // a module's field
    [InlineData("using var s = lr.ToScalar(); x = x.mul(s);")]       // a using local, disposed after the call
    [InlineData("using (Scalar s = lr) x = x.mul(s);")]
    [InlineData("x = x.add(y, Held.One);")]
    [InlineData("x = x.add(Held.Half, Held.One);")]
    [InlineData("x = x * y; x = x - y; x = x / y;")]                 // tensor-tensor operators other than + make no Scalar
    [InlineData("x = x.pow(Held.Half).norm(2f);")]                   // norm hands libtorch the number itself
    [InlineData("float f = x.item<float>();")]
    [InlineData("using Scalar stop = 10; x = arange(Held.Zero, stop, Held.One, ScalarType.Int64);")]
    public async Task A_held_scalar_or_an_op_without_one_passes(string body) =>
        (await Analyze(body)).Should().BeEmpty();

    [Fact]
    public async Task The_message_names_what_made_the_scalar_and_the_way_out()
    {
        var diagnostics = await Analyze("x = x + y; x = x.mul(lr);");
        diagnostics.Select(d => d.GetMessage()).Should().SatisfyRespectively(
            m => m.Should().Contain("op_Addition").And.Contain("a.add(b, Scalars.One)"),
            m => m.Should().Contain("'lr' made into a Scalar").And.Contain("using var"));
    }

    [Fact]
    public void The_list_of_members_that_make_a_temporary_inside_is_for_the_TorchSharp_the_project_uses()
    {
        using var stream = typeof(TemporaryScalarAnalyzer).Assembly.GetManifestResourceStream("TorchSharpTemporaries.txt")!;
        var lines = new StreamReader(stream).ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string version = typeof(TorchSharp.torch).Assembly.GetName().Version!.ToString(3);
        lines.Should().Contain(l => l.StartsWith('#') && l.Contains($"NuGet Version {version} "),
            "after a TorchSharp upgrade, run build/torchsharp-temporaries on that version's source");
        lines.Should().Contain("TorchSharp.torch.Tensor.add(TorchSharp.torch.Tensor)")
            .And.Contain("TorchSharp.torch.Tensor.operator +(TorchSharp.torch.Tensor, TorchSharp.torch.Tensor)")
            .And.NotContain("TorchSharp.torch.Tensor.add(TorchSharp.torch.Tensor, TorchSharp.Scalar)");
    }
}
