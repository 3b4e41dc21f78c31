namespace Forgetless.Model.Safetensors;

/// <summary>
/// Element types we read (and, for F32/BF16, write). Compute is always F32. <see cref="Keep"/> is a write
/// option only: each tensor is stored in its own dtype (F32, I64, I32, U8, I8), as training checkpoints need
/// for step counters and generator state.
/// </summary>
public enum SafetensorsDType
{
    F32,
    F16,
    BF16,
    Keep,
}

internal static class SafetensorsDTypes
{
    public static bool TryParse(string name, out SafetensorsDType dtype)
    {
        switch (name)
        {
            case "F32": dtype = SafetensorsDType.F32; return true;
            case "F16": dtype = SafetensorsDType.F16; return true;
            case "BF16": dtype = SafetensorsDType.BF16; return true;
            default: dtype = default; return false;
        }
    }

    public static int Size(this SafetensorsDType d) => d == SafetensorsDType.F32 ? 4 : 2;

    /// <summary>Bytes per element of every dtype the format defines, so that foreign tensors can still be validated.</summary>
    public static int? AnySize(string name) => name switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" or "F8_E4M3" or "F8_E5M2" => 1,
        _ => null,
    };
}
