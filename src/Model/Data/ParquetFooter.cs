namespace MixupBert.Model.Data;

/// <summary>
/// Checks that a parquet file's footer (its Thrift compact-protocol FileMetaData) ends within its
/// declared length before Parquet.Net reads it. Parquet.Net 6.1.0 reads a byte past the end of the
/// footer as 0xFF, a varint continuation, and so loops forever on a footer whose struct never ends
/// (found by fuzzing: one flipped stop byte). This walk is bounded: every read checks the end.
/// </summary>
internal static class ParquetFooter
{
    private const int MaxDepth = 64;

    /// <summary>Throws <see cref="DataFormatException"/> when the footer cannot be walked within its bytes.</summary>
    public static void Check(string path)
    {
        byte[] footer = ReadFooter(path);
        var walker = new Walker(path, footer);
        walker.SkipStruct(0);
    }

    private static byte[] ReadFooter(string path)
    {
        using var fs = File.OpenRead(path);
        // "PAR1", data, footer, footer length (int32 LE), "PAR1"
        if (fs.Length < 12) throw new DataFormatException($"{path}: not a parquet file ({fs.Length} bytes, too short)");
        fs.Seek(-8, SeekOrigin.End);
        Span<byte> tail = stackalloc byte[8];
        fs.ReadExactly(tail);
        if (!tail[4..].SequenceEqual("PAR1"u8)) throw new DataFormatException($"{path}: not a parquet file (it does not end with PAR1)");
        int length = BitConverter.ToInt32(tail[..4]);
        if (length <= 0 || length > fs.Length - 12)
            throw new DataFormatException($"{path}: parquet footer length {length} does not fit in the file ({fs.Length} bytes): the file is truncated or corrupt");
        var footer = new byte[length];
        fs.Seek(-8 - length, SeekOrigin.End);
        fs.ReadExactly(footer);
        return footer;
    }

    /// <summary>Skips Thrift compact-protocol values, refusing any that would run past the footer.</summary>
    private sealed class Walker(string path, byte[] bytes)
    {
        private int position;

        private DataFormatException Corrupt(string what) =>
            new($"{path}: the parquet footer is corrupt: {what} at byte {position} of its {bytes.Length}");

        private byte NextByte() => position < bytes.Length ? bytes[position++] : throw Corrupt("metadata runs past its end");

        private void Skip(long count)
        {
            if (count < 0 || count > bytes.Length - position) throw Corrupt($"a {count}-byte value runs past its end");
            position += (int)count;
        }

        private ulong VarInt()
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                byte b = NextByte();
                value |= (ulong)(b & 0x7f) << shift;
                if ((b & 0x80) == 0) return value;
            }
            throw Corrupt("a varint longer than 10 bytes");
        }

        /// <summary>A count of values that each take at least one byte, so it cannot exceed the bytes left.</summary>
        private int Count(ulong n) => n <= (ulong)(bytes.Length - position) ? (int)n : throw Corrupt($"a count of {n} elements");

        public void SkipStruct(int depth)
        {
            if (depth > MaxDepth) throw Corrupt($"structs nested more than {MaxDepth} deep");
            while (true)
            {
                byte header = NextByte();
                if (header == 0) return; // stop: the struct ends
                if (header >> 4 == 0) VarInt(); // no field-id delta: the id follows as a varint
                SkipValue(header & 0x0f, depth, inList: false);
            }
        }

        private void SkipValue(int type, int depth, bool inList)
        {
            switch (type)
            {
                case 1 or 2: if (inList) Skip(1); break; // booleans: in a field header's type, or one byte in a list
                case 3: Skip(1); break;
                case 4 or 5 or 6: VarInt(); break;
                case 7: Skip(8); break;
                case 8: Skip((long)Math.Min(VarInt(), long.MaxValue)); break;
                case 9 or 10:
                    {
                        byte sizeAndType = NextByte();
                        int n = sizeAndType >> 4 == 15 ? Count(VarInt()) : sizeAndType >> 4;
                        for (int i = 0; i < n; i++) SkipValue(sizeAndType & 0x0f, depth + 1, inList: true);
                        break;
                    }
                case 11:
                    {
                        int n = Count(VarInt());
                        if (n == 0) break;
                        byte types = NextByte();
                        for (int i = 0; i < n; i++) { SkipValue(types >> 4, depth + 1, true); SkipValue(types & 0x0f, depth + 1, true); }
                        break;
                    }
                case 12: SkipStruct(depth + 1); break;
                case 13: Skip(16); break;
                default: throw Corrupt($"unknown Thrift type {type}");
            }
        }
    }
}
