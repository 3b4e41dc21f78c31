using System.Collections.Concurrent;
using TorchSharp;

namespace Forgetless.Model;

/// <summary>
/// Scalars that live as long as the process, for the constants of hot paths.
/// </summary>
/// <remarks>
/// Why: TorchSharp turns a <c>double</c> or <c>int</c> passed to a tensor op (<c>x.mul(0.5)</c>, <c>x.pow(2)</c>,
/// <c>alpha: 1 - beta</c>) into a temporary <see cref="Scalar"/> and hands libtorch only its native handle. Nothing
/// keeps the temporary reachable during the native call, so the GC may finalize it — freeing the native value — while
/// libtorch still reads it: seen as rare "Scalar::toFloat: Expected false to be true" and "Unknown scalar type"
/// crashes. A Scalar that is a static field (here), a module's field (RmsNorm's eps) or a <c>using</c> local
/// disposed after the call stays reachable for the whole call. TorchSharp members that build such a temporary
/// themselves (<c>x.add(y)</c> is <c>add(y, alpha: 1)</c>, <c>a + b</c>, <c>x.square()</c>,
/// <c>linalg.vector_norm(x, 2)</c>) are not called. The build enforces both: analyzer FL0001
/// (analyzers/TemporaryScalarAnalyzer.cs; docs/extending.md lists what to write instead).
/// </remarks>
public static class Scalars
{
    public static readonly Scalar Zero = 0.ToScalar();
    public static readonly Scalar One = 1.ToScalar();
    public static readonly Scalar MinusOne = (-1).ToScalar();
    public static readonly Scalar Two = 2.ToScalar();
    public static readonly Scalar Half = 0.5.ToScalar();

    /// <summary>
    /// x², the op of <c>x.square()</c>, which TorchSharp runs as <c>pow(2)</c> with a temporary Scalar (see the remarks:
    /// seen as "Unknown scalar type" in the EWC Fisher's <c>g.square()</c>).
    /// </summary>
    public static torch.Tensor Squared(this torch.Tensor x) => x.pow(Two);

    /// <summary>
    /// A held Scalar for a constant — a literal, a fixed setting: made on first use and kept for the life of the
    /// process, one per distinct value and kind. Not for a value that changes from step to step (every distinct value
    /// would stay): hold those in a <c>using var</c> local.
    /// </summary>
    public static Scalar Of(double value) => Doubles.GetOrAdd(value, MakeDouble);

    /// <inheritdoc cref="Of(double)"/>
    public static Scalar Of(long value) => Longs.GetOrAdd(value, MakeLong);

    private static readonly ConcurrentDictionary<double, Scalar> Doubles = new();
    private static readonly ConcurrentDictionary<long, Scalar> Longs = new();

#pragma warning disable FL0001 // made here to be kept: the dictionaries hold every Scalar they hand out
    private static Scalar MakeDouble(double value) => value.ToScalar();
    private static Scalar MakeLong(long value) => value.ToScalar();
#pragma warning restore FL0001
}
