using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace Forgetless.Analyzers;

/// <summary>
/// FL0001: a TorchSharp <c>Scalar</c> that lives for one call only.
/// </summary>
/// <remarks>
/// TorchSharp turns a number passed to a tensor op into a <c>Scalar</c> — a managed object that owns a native
/// <c>at::Scalar</c> and frees it in its finalizer — and hands libtorch only the native pointer. Nothing keeps the
/// managed object reachable during the native call, so a garbage collection started by another thread may finalize it
/// while libtorch still reads it. The freed block is at once reused by the allocator, which overwrites the scalar's
/// type tag: seen in this project's CI as "Unknown scalar type", "Scalar::toFloat: Expected false to be true" and as a
/// test host that died without a word. Some TorchSharp members build such a temporary themselves
/// (<c>x.add(y)</c> is <c>add(y, alpha: 1)</c>, <c>a + b</c> calls it, <c>x * 0.5</c> converts inside,
/// <c>square()</c> is <c>pow(2)</c>); those, listed in TorchSharpTemporaries.txt, are reported too, with the call that
/// passes a held Scalar instead where there is a usual one.
/// A Scalar is held when it is a field or property (<c>Forgetless.Model.Scalars</c>, a module's field) or a
/// <c>using</c> local, which stays reachable until it is disposed after the call.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class TemporaryScalarAnalyzer : DiagnosticAnalyzer
{
    public const string DiagnosticId = "FL0001";

    private static readonly DiagnosticDescriptor Rule = new(
        DiagnosticId,
        title: "A temporary TorchSharp Scalar reaches libtorch",
        messageFormat: "{0} gives libtorch a Scalar that nothing keeps alive during the call, so the GC may free it while libtorch reads it; {1}",
        category: "Reliability",
        DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        description: "TorchSharp passes only the native pointer of a Scalar to libtorch. A Scalar made for one call can be "
            + "finalized by a garbage collection during that call. Pass a Scalar held by a field or a 'using' local.");

    private const string HoldIt = "hold it in a field (Forgetless.Model.Scalars, a module's field) or a 'using var' local";

    private const string ResourceName = "TorchSharpTemporaries.txt";

    private readonly ImmutableHashSet<string> knownMembers;

    /// <summary>With the TorchSharp members this build knows to make a temporary inside (TorchSharpTemporaries.txt).</summary>
    public TemporaryScalarAnalyzer() : this(LoadKnownMembers()) { }

    /// <param name="knownMembers"><see cref="MemberKey"/>s of TorchSharp members that make a temporary Scalar inside.</param>
    public TemporaryScalarAnalyzer(IEnumerable<string> knownMembers) => this.knownMembers = knownMembers.ToImmutableHashSet();

    /// <summary>How a member is named in TorchSharpTemporaries.txt: full type and parameter types, no nullability.</summary>
    public static string MemberKey(ISymbol member) => (member is IMethodSymbol { AssociatedSymbol: IPropertySymbol property } ? property : member)
        .OriginalDefinition.ToDisplayString(KeyFormat);

    private static readonly SymbolDisplayFormat KeyFormat = new(
        globalNamespaceStyle: SymbolDisplayGlobalNamespaceStyle.Omitted,
        typeQualificationStyle: SymbolDisplayTypeQualificationStyle.NameAndContainingTypesAndNamespaces,
        genericsOptions: SymbolDisplayGenericsOptions.IncludeTypeParameters,
        memberOptions: SymbolDisplayMemberOptions.IncludeContainingType | SymbolDisplayMemberOptions.IncludeParameters,
        parameterOptions: SymbolDisplayParameterOptions.IncludeType | SymbolDisplayParameterOptions.IncludeParamsRefOut,
        miscellaneousOptions: SymbolDisplayMiscellaneousOptions.UseSpecialTypes);

    private static IEnumerable<string> LoadKnownMembers()
    {
        using var stream = typeof(TemporaryScalarAnalyzer).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"the analyzer lacks its resource {ResourceName}");
        using var reader = new StreamReader(stream);
        var members = new List<string>();
        for (string? line; (line = reader.ReadLine()) != null;)
            if (line.Length > 0 && line[0] != '#') members.Add(line);
        return members;
    }

    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics => ImmutableArray.Create(Rule);

    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(start =>
        {
            if (start.Compilation.GetTypeByMetadataName("TorchSharp.Scalar") is not { } scalar) return; // no TorchSharp here
            start.RegisterOperationAction(c => Conversion(c, scalar), OperationKind.Conversion);
            start.RegisterOperationAction(c => Invocation(c, scalar), OperationKind.Invocation);
            start.RegisterOperationAction(c => Operator(c, scalar), OperationKind.Binary, OperationKind.CompoundAssignment);
            start.RegisterOperationAction(KnownMember, OperationKind.ObjectCreation, OperationKind.PropertyReference);
        });
    }

    private static bool IsScalar(ITypeSymbol? type, INamedTypeSymbol scalar) => SymbolEqualityComparer.Default.Equals(type, scalar);

    /// <summary>A number made into a Scalar where it is used: <c>x.mul(0.5)</c>, <c>x.clamp_min(eps)</c>.</summary>
    private static void Conversion(OperationAnalysisContext context, INamedTypeSymbol scalar)
    {
        var conversion = (IConversionOperation)context.Operation;
        if (conversion.OperatorMethod is null || !IsScalar(conversion.Type, scalar) || IsScalar(conversion.Operand.Type, scalar)) return;
        if (IsHeld(conversion)) return;
        Report(context, conversion, $"'{conversion.Operand.Syntax}' made into a Scalar here", HoldIt);
    }

    /// <summary>A <c>ToScalar()</c> whose result is not held, or a call of a TorchSharp member that makes a temporary inside.</summary>
    private void Invocation(OperationAnalysisContext context, INamedTypeSymbol scalar)
    {
        var invocation = (IInvocationOperation)context.Operation;
        var method = invocation.TargetMethod;
        string? advice = method.Name == "ToScalar" && IsScalar(method.ReturnType, scalar)
            ? (IsHeld(invocation) ? null : HoldIt)
            : knownMembers.Contains(MemberKey(method)) ? InsideAdvice(method) : null;
        if (advice != null) Report(context, invocation, $"'{method.ContainingType.Name}.{method.Name}'", advice);
    }

    /// <summary>The way out for the members met most, else the general one.</summary>
    private static string InsideAdvice(IMethodSymbol method) => method.Name switch
    {
        "add" or "add_" => $"TorchSharp calls {method.Name}(other, alpha: 1) with a temporary; pass the alpha: {method.Name}(other, Scalars.One)",
        "addcdiv" or "addcdiv_" => $"TorchSharp calls {method.Name}(a, b, value: 1) with a temporary; pass the value: {method.Name}(a, b, Scalars.One)",
        "square" => "TorchSharp runs it as pow(2) with a temporary; use Squared() (Forgetless.Model.Scalars)",
        "vector_norm" or "matrix_norm" => "TorchSharp makes the order a temporary Scalar; use Tensor.norm(2f), which hands libtorch the number",
        _ when method.IsExtensionMethod && method.Name.StartsWith("To", StringComparison.Ordinal) && method.ReturnType.IsValueType =>
            "TorchSharp reads the value through a temporary Scalar; read it with item<T>()",
        _ => InsideTorchSharp,
    };

    private const string InsideTorchSharp =
        "TorchSharp makes a temporary Scalar inside it (TorchSharpTemporaries.txt); call an overload that takes every Scalar from you, held";

    /// <summary>A constructor or property getter of TorchSharp that makes a temporary inside.</summary>
    private void KnownMember(OperationAnalysisContext context)
    {
        ISymbol? member = context.Operation switch
        {
            IObjectCreationOperation creation => creation.Constructor,
            IPropertyReferenceOperation property => property.Property,
            _ => null,
        };
        if (member != null && knownMembers.Contains(MemberKey(member)))
            Report(context, context.Operation, $"'{member.ContainingType.Name}.{member.Name}'", InsideTorchSharp);
    }

    /// <summary>
    /// A tensor operator that makes a temporary inside TorchSharp: every <c>+</c> (it calls <c>add(other)</c>, alpha 1),
    /// any operator with a number as an operand (converted inside), <c>scalar - tensor</c> (<c>neg().add(s)</c>).
    /// </summary>
    private void Operator(OperationAnalysisContext context, INamedTypeSymbol scalar)
    {
        var (method, kind) = context.Operation switch
        {
            IBinaryOperation b => (b.OperatorMethod, b.OperatorKind),
            ICompoundAssignmentOperation c => (c.OperatorMethod, c.OperatorKind),
            _ => (null, default),
        };
        if (method is null || !knownMembers.Contains(MemberKey(method))) return;
        string advice = kind == BinaryOperatorKind.Add ? "write a.add(b, Scalars.One) (a Scalar operand: a.add(s, Scalars.One))"
            : method.Parameters.Any(p => IsNumber(p.Type)) ? "call the method with a held Scalar, e.g. x.mul(Scalars.Half)"
            : kind == BinaryOperatorKind.Subtract && IsScalar(method.Parameters[0].Type, scalar) ? "write x.neg().add(s, Scalars.One)"
            : InsideTorchSharp;
        Report(context, context.Operation, $"the tensor operator '{method.Name}'", advice);
    }

    private static bool IsNumber(ITypeSymbol type) => type.SpecialType is SpecialType.System_Int32 or SpecialType.System_Int64
        or SpecialType.System_Single or SpecialType.System_Double or SpecialType.System_Int16 or SpecialType.System_Byte
        or SpecialType.System_SByte or SpecialType.System_Boolean;

    /// <summary>Whether the Scalar a conversion or call makes is kept reachable: stored in a field or property, or a <c>using</c> local.</summary>
    private static bool IsHeld(IOperation made)
    {
        var parent = made.Parent;
        switch (parent)
        {
            case IFieldInitializerOperation or IPropertyInitializerOperation:
                return true;
            case ISimpleAssignmentOperation assignment when assignment.Value == made:
                return assignment.Target is IFieldReferenceOperation or IPropertyReferenceOperation;
            case IVariableInitializerOperation initializer:
                // declarator → declaration → declaration group → using declaration / using statement
                var group = initializer.Parent?.Parent?.Parent;
                return group?.Parent is IUsingDeclarationOperation or IUsingOperation;
            default:
                return false;
        }
    }

    private static void Report(OperationAnalysisContext context, IOperation operation, string what, string advice) =>
        context.ReportDiagnostic(Diagnostic.Create(Rule, operation.Syntax.GetLocation(), what, advice));
}
