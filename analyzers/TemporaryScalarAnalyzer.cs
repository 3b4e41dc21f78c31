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
/// <c>square()</c> is <c>pow(2)</c>); those are reported too, with the call that passes a held Scalar instead.
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
            var types = TorchTypes.Find(start.Compilation);
            if (types is null) return; // the project does not use TorchSharp
            start.RegisterOperationAction(c => Conversion(c, types), OperationKind.Conversion);
            start.RegisterOperationAction(c => Invocation(c, types), OperationKind.Invocation);
            start.RegisterOperationAction(c => Operator(c, types), OperationKind.Binary, OperationKind.CompoundAssignment);
            start.RegisterOperationAction(KnownMember, OperationKind.ObjectCreation, OperationKind.PropertyReference);
        });
    }

    private sealed class TorchTypes
    {
        public INamedTypeSymbol Scalar = null!, Tensor = null!, Torch = null!, Extensions = null!;
        public INamedTypeSymbol? Linalg;

        public static TorchTypes? Find(Compilation compilation)
        {
            var scalar = compilation.GetTypeByMetadataName("TorchSharp.Scalar");
            var torch = compilation.GetTypeByMetadataName("TorchSharp.torch");
            var tensor = compilation.GetTypeByMetadataName("TorchSharp.torch+Tensor");
            var extensions = compilation.GetTypeByMetadataName("TorchSharp.TensorExtensionMethods");
            if (scalar is null || torch is null || tensor is null || extensions is null) return null;
            return new TorchTypes
            {
                Scalar = scalar, Tensor = tensor, Torch = torch, Extensions = extensions,
                Linalg = compilation.GetTypeByMetadataName("TorchSharp.torch+linalg"),
            };
        }

        public bool IsScalar(ITypeSymbol? type) => SymbolEqualityComparer.Default.Equals(type, Scalar);
    }

    /// <summary>A number made into a Scalar where it is used: <c>x.mul(0.5)</c>, <c>x.clamp_min(eps)</c>.</summary>
    private static void Conversion(OperationAnalysisContext context, TorchTypes types)
    {
        var conversion = (IConversionOperation)context.Operation;
        if (conversion.OperatorMethod is null || !types.IsScalar(conversion.Type) || types.IsScalar(conversion.Operand.Type)) return;
        if (IsHeld(conversion)) return;
        Report(context, conversion, $"'{conversion.Operand.Syntax}' made into a Scalar here", HoldIt);
    }

    private void Invocation(OperationAnalysisContext context, TorchTypes types)
    {
        var invocation = (IInvocationOperation)context.Operation;
        var method = invocation.TargetMethod;
        var owner = method.ContainingType;
        int arity = method.Parameters.Length;
        string? advice = null;

        if (method.Name == "ToScalar" && types.IsScalar(method.ReturnType))
        {
            if (!IsHeld(invocation)) advice = HoldIt;
        }
        else if (SymbolEqualityComparer.Default.Equals(owner, types.Tensor))
        {
            advice = (method.Name, arity) switch
            {
                ("add" or "add_", 1) => $"TorchSharp calls {method.Name}(other, alpha: 1) with a temporary; pass the alpha: {method.Name}(other, Scalars.One)",
                ("addcdiv" or "addcdiv_", 2) => $"TorchSharp calls {method.Name}(a, b, value: 1) with a temporary; pass the value: {method.Name}(a, b, Scalars.One)",
                ("square" or "square_", 0) => "TorchSharp runs it as pow(2) with a temporary; use Squared() (Forgetless.Model.Scalars)",
                _ => null,
            };
        }
        else if (SymbolEqualityComparer.Default.Equals(owner, types.Torch))
        {
            advice = (method.Name, arity) switch
            {
                ("add" or "add_", 2) => "TorchSharp calls add(other, alpha: 1) with a temporary; call left.add(right, Scalars.One)",
                ("square", 1) => "TorchSharp runs it as pow(2) with a temporary; use Squared() (Forgetless.Model.Scalars)",
                _ => null,
            };
        }
        else if (SymbolEqualityComparer.Default.Equals(owner, types.Linalg) && method.Name is "vector_norm" or "matrix_norm")
        {
            advice = "TorchSharp makes the order a temporary Scalar; compute the norm from held Scalars (x.Squared().sum().sqrt())";
        }
        else if (SymbolEqualityComparer.Default.Equals(owner, types.Extensions) && method.Name.StartsWith("To", System.StringComparison.Ordinal)
                 && arity == 1 && SymbolEqualityComparer.Default.Equals(method.Parameters[0].Type, types.Tensor) && method.ReturnType.IsValueType)
        {
            advice = $"TorchSharp reads the value through a temporary Scalar; read it with item<T>()";
        }

        if (advice == null && method.Name != "ToScalar" && knownMembers.Contains(MemberKey(method))) advice = InsideTorchSharp;
        if (advice != null) Report(context, invocation, $"'{method.ContainingType.Name}.{method.Name}'", advice);
    }

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
    /// Tensor operators that make a temporary inside TorchSharp: every <c>+</c> (it calls <c>add(other)</c>, alpha 1),
    /// any operator with a number as an operand (converted inside), and <c>scalar - tensor</c> (<c>neg().add(s)</c>).
    /// </summary>
    private void Operator(OperationAnalysisContext context, TorchTypes types)
    {
        var (method, kind) = context.Operation switch
        {
            IBinaryOperation b => (b.OperatorMethod, b.OperatorKind),
            ICompoundAssignmentOperation c => (c.OperatorMethod, c.OperatorKind),
            _ => (null, default),
        };
        if (method is null || !SymbolEqualityComparer.Default.Equals(method.ContainingType, types.Tensor)) return;
        bool numberOperand = method.Parameters.Any(p => IsNumber(p.Type));
        bool scalarMinusTensor = kind == BinaryOperatorKind.Subtract && types.IsScalar(method.Parameters[0].Type);
        if (kind != BinaryOperatorKind.Add && !numberOperand && !scalarMinusTensor)
        {
            if (knownMembers.Contains(MemberKey(method))) Report(context, context.Operation, $"the tensor operator '{method.Name}'", InsideTorchSharp);
            return;
        }
        string advice = kind == BinaryOperatorKind.Add
            ? "write a.add(b, Scalars.One) (a Scalar operand: a.add(s, Scalars.One))"
            : numberOperand ? "call the method with a held Scalar, e.g. x.mul(Scalars.Half)" : "write x.neg().add(s, Scalars.One)";
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
