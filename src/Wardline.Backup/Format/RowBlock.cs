using System.Buffers.Binary;
using System.Text;

namespace Wardline.Backup.Format;

/// <summary>
/// The plaintext of a segment: blocks of table rows with typed values (docs/formats/backup.md, "Payload").
/// Values are null, 64-bit integers, doubles, UTF-8 text or bytes: what both SQLite and PostgreSQL columns of
/// Wardline's schema hold, so a backup taken from one engine restores into the other.
/// </summary>
internal sealed class RowBlock(string table, string mode, IReadOnlyList<string> columns, IReadOnlyList<string> keyColumns)
{
    /// <summary>Table the rows belong to.</summary>
    public string Table { get; } = table;

    /// <summary>How the rows are applied at restore: <c>insert</c> (append), <c>replace</c> (the table's rows are exactly these), or <c>upsert</c> (the rows of every key in <see cref="Keys"/> are removed, then the rows inserted).</summary>
    public string Mode { get; } = mode;

    public IReadOnlyList<string> Columns { get; } = columns;

    /// <summary>For <c>upsert</c>: the columns that make a key.</summary>
    public IReadOnlyList<string> KeyColumns { get; } = keyColumns;

    public List<object?[]> Rows { get; } = [];

    /// <summary>For <c>upsert</c>: the keys (values of <see cref="KeyColumns"/>) whose rows are replaced, including keys left with no rows.</summary>
    public List<object?[]> Keys { get; } = [];
}

/// <summary>Writes and reads <see cref="RowBlock"/>s.</summary>
internal static class RowCodec
{
    private const byte BlockStart = (byte)'B';
    private const byte RowMark = (byte)'R';
    private const byte KeyMark = (byte)'K';
    private const byte BlockEnd = (byte)'E';

    private const byte Null = 0, Int = 1, Real = 2, Text = 3, Bytes = 4;

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    public static void Write(Stream output, RowBlock block)
    {
        var w = new BinaryWriter(output, StrictUtf8, leaveOpen: true);
        w.Write(BlockStart);
        WriteString(w, block.Table);
        WriteString(w, block.Mode);
        w.Write7BitEncodedInt(block.Columns.Count);
        foreach (var c in block.Columns) WriteString(w, c);
        w.Write7BitEncodedInt(block.KeyColumns.Count);
        foreach (var c in block.KeyColumns) WriteString(w, c);
        foreach (var key in block.Keys)
        {
            if (key.Length != block.KeyColumns.Count) throw new InvalidOperationException($"key shape mismatch in {block.Table}");
            w.Write(KeyMark);
            foreach (var v in key) WriteValue(w, v);
        }
        foreach (var row in block.Rows)
        {
            if (row.Length != block.Columns.Count) throw new InvalidOperationException($"row shape mismatch in {block.Table}");
            w.Write(RowMark);
            foreach (var v in row) WriteValue(w, v);
        }
        w.Write(BlockEnd);
        w.Flush();
    }

    /// <summary>Reads every block; <see cref="BackupFormatException"/> on anything malformed.</summary>
    public static List<RowBlock> ReadAll(ReadOnlySpan<byte> payload)
    {
        var blocks = new List<RowBlock>();
        var r = new SpanReader(payload);
        while (!r.End)
        {
            if (r.Byte() != BlockStart) throw new BackupFormatException("payload: expected a block");
            var table = r.String();
            var mode = r.String();
            var n = r.Count();
            var columns = new string[n];
            for (var i = 0; i < n; i++) columns[i] = r.String();
            var k = r.Count();
            var keyColumns = new string[k];
            for (var i = 0; i < k; i++) keyColumns[i] = r.String();
            var block = new RowBlock(table, mode, columns, keyColumns);
            while (true)
            {
                var mark = r.Byte();
                if (mark == BlockEnd) break;
                if (mark == KeyMark)
                {
                    var key = new object?[k];
                    for (var i = 0; i < k; i++) key[i] = r.Value();
                    block.Keys.Add(key);
                    continue;
                }
                if (mark != RowMark) throw new BackupFormatException($"payload: unexpected byte {mark} in block {table}");
                var row = new object?[n];
                for (var i = 0; i < n; i++) row[i] = r.Value();
                block.Rows.Add(row);
            }
            blocks.Add(block);
        }
        return blocks;
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = StrictUtf8.GetBytes(s);
        w.Write7BitEncodedInt(bytes.Length);
        w.Write(bytes);
    }

    private static void WriteValue(BinaryWriter w, object? v)
    {
        switch (v)
        {
            case null or DBNull:
                w.Write(Null);
                break;
            case long or int or short or byte or bool:
                w.Write(Int);
                w.Write7BitEncodedInt64(v is bool b ? (b ? 1 : 0) : Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture));
                break;
            case double d:
                w.Write(Real);
                w.Write(d);
                break;
            case string s:
                w.Write(Text);
                WriteString(w, s);
                break;
            case byte[] bytes:
                w.Write(Bytes);
                w.Write7BitEncodedInt(bytes.Length);
                w.Write(bytes);
                break;
            default:
                throw new InvalidOperationException($"a value of type {v.GetType().Name} cannot be backed up");
        }
    }

    private ref struct SpanReader(ReadOnlySpan<byte> span)
    {
        private readonly ReadOnlySpan<byte> _span = span;
        private int _pos;

        public readonly bool End => _pos >= _span.Length;

        public byte Byte()
        {
            if (_pos >= _span.Length) throw new BackupFormatException("payload: truncated");
            return _span[_pos++];
        }

        public long VarInt()
        {
            ulong result = 0;
            for (var shift = 0; shift < 70; shift += 7)
            {
                var b = Byte();
                result |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0) return (long)result;
            }
            throw new BackupFormatException("payload: bad integer");
        }

        public int Count()
        {
            var n = VarInt();
            if (n < 0 || n > _span.Length - _pos) throw new BackupFormatException("payload: bad length");
            return (int)n;
        }

        public ReadOnlySpan<byte> Take(int n)
        {
            var s = _span.Slice(_pos, n);
            _pos += n;
            return s;
        }

        public string String()
        {
            try
            {
                return StrictUtf8.GetString(Take(Count()));
            }
            catch (DecoderFallbackException)
            {
                throw new BackupFormatException("payload: text is not UTF-8");
            }
        }

        public object? Value() => Byte() switch
        {
            Null => null,
            Int => VarInt(),
            Real => _pos + 8 <= _span.Length ? BinaryPrimitives.ReadDoubleLittleEndian(Take(8)) : throw new BackupFormatException("payload: truncated"),
            Text => String(),
            Bytes => Take(Count()).ToArray(),
            var t => throw new BackupFormatException($"payload: unknown value type {t}"),
        };
    }
}

/// <summary>A segment or manifest that is malformed, altered, or not made with this keyring; the message names what and where, never content.</summary>
public sealed class BackupFormatException : Exception
{
    public BackupFormatException(string message) : base(message) { }

    public BackupFormatException(string message, Exception inner) : base(message, inner) { }

    public BackupFormatException() : base("backup format error") { }
}
