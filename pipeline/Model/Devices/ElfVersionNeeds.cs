using System.Buffers.Binary;
using System.Text;

namespace Forgetless.Model.Devices;

/// <summary>
/// Reads the version requirements (<c>.gnu.version_r</c>) of a 64-bit little-endian ELF shared library: for each
/// required version name (e.g. GLIBCXX_3.4.32), whether it is marked weak (VER_FLG_WEAK). Written from the ELF
/// specification (Elf64_Shdr, Elf64_Verneed, Elf64_Vernaux), apart from the build task that sets the flag
/// (build/TorchSharpNative.targets), so that `forgetless doctor` and the tool's test check that task's work.
/// </summary>
public static class ElfVersionNeeds
{
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlgWeak = 0x2;

    public static IReadOnlyDictionary<string, bool> WeakByName(byte[] elf)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != 'E' || elf[2] != 'L' || elf[3] != 'F' || elf[4] != 2 || elf[5] != 1)
            throw new InvalidDataException("not a 64-bit little-endian ELF file");
        var span = elf.AsSpan();
        long sectionTable = BinaryPrimitives.ReadInt64LittleEndian(span[0x28..]);
        int entrySize = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3A..]);
        int count = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3C..]);
        var result = new Dictionary<string, bool>(StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            var header = span[(int)(sectionTable + (long)i * entrySize)..];
            if (BinaryPrimitives.ReadUInt32LittleEndian(header[4..]) != ShtGnuVerneed) continue;
            long offset = BinaryPrimitives.ReadInt64LittleEndian(header[0x18..]);
            int linkedStrings = (int)BinaryPrimitives.ReadUInt32LittleEndian(header[0x28..]);
            int needs = (int)BinaryPrimitives.ReadUInt32LittleEndian(header[0x2C..]); // sh_info: number of Verneed entries
            long strings = BinaryPrimitives.ReadInt64LittleEndian(span[(int)(sectionTable + (long)linkedStrings * entrySize + 0x18)..]);
            long need = offset;
            for (int n = 0; n < needs; n++)
            {
                int auxCount = BinaryPrimitives.ReadUInt16LittleEndian(span[(int)(need + 2)..]);
                long aux = need + BinaryPrimitives.ReadUInt32LittleEndian(span[(int)(need + 8)..]);
                for (int a = 0; a < auxCount; a++)
                {
                    ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(span[(int)(aux + 4)..]);
                    long name = strings + BinaryPrimitives.ReadUInt32LittleEndian(span[(int)(aux + 8)..]);
                    int end = span[(int)name..].IndexOf((byte)0);
                    result[Encoding.ASCII.GetString(span.Slice((int)name, end))] = (flags & VerFlgWeak) != 0;
                    aux += BinaryPrimitives.ReadUInt32LittleEndian(span[(int)(aux + 12)..]);
                }
                need += BinaryPrimitives.ReadUInt32LittleEndian(span[(int)(need + 12)..]);
            }
        }
        return result;
    }
}
