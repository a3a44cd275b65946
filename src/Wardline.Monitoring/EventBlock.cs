using System.Buffers;
using System.Text;

namespace Wardline.Monitoring;

/// <summary>A monitor block that does not decode: truncated, an unknown version, a count or reference out of range.</summary>
internal sealed class EventBlockFormatException(string message) : FormatException(message);

/// <summary>
/// A run of ledger entries as the detections see them (<see cref="MonitorEvent"/>), packed for a replay to read back at a
/// small part of the cost of the ledger's rows (docs/formats/monitor-block.md): each distinct string once in a table, then
/// each event as a few variable-length integers that point into it. Pure and bounded: <see cref="Decode"/> reads nothing
/// outside its input and throws <see cref="EventBlockFormatException"/> on anything it did not write.
/// </summary>
internal static class EventBlock
{
    public const byte Version = 1;

    /// <summary>Most events a block may hold (a block is one aligned range of 4,096 ledger entries; the bound is for decoding).</summary>
    public const int MaxEvents = 1 << 16;

    /// <summary>The string members of an event, in the order they are written.</summary>
    private const int StringFields = 14;

    public static byte[] Encode(IReadOnlyList<MonitorEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (events.Count > MaxEvents) throw new ArgumentException($"a block holds at most {MaxEvents} events", nameof(events));
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        var table = new List<string>();
        var refs = new int[events.Count * StringFields];
        // First the values that repeat across blocks (a decoder shares one string per value), then those of the members that
        // are mostly unique (resource id, detail, correlation), which a decoder makes afresh without looking them up.
        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            var f = i * StringFields;
            refs[f] = Ref(e.Event);
            refs[f + 1] = Ref(e.User);
            refs[f + 2] = Ref(e.Actor);
            refs[f + 3] = Ref(e.Patient);
            refs[f + 4] = Ref(e.ResourceType);
            refs[f + 6] = Ref(e.Action);
            refs[f + 7] = Ref(e.Purpose);
            refs[f + 8] = Ref(e.Rule);
            refs[f + 9] = Ref(e.Outcome);
            refs[f + 11] = Ref(e.Client);
            refs[f + 12] = Ref(e.Source);
        }
        var shared = table.Count;
        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            var f = i * StringFields;
            refs[f + 5] = Ref(e.ResourceId);
            refs[f + 10] = Ref(e.Detail);
            refs[f + 13] = Ref(e.Correlation);
        }

        var w = new ArrayBufferWriter<byte>(64 + events.Count * 24);
        w.Write([Version]);
        WriteVar(w, (ulong)events.Count);
        WriteVar(w, (ulong)shared);
        WriteVar(w, (ulong)table.Count);
        foreach (var s in table)
        {
            var n = Encoding.UTF8.GetByteCount(s);
            WriteVar(w, (ulong)n);
            Encoding.UTF8.GetBytes(s, w.GetSpan(n));
            w.Advance(n);
        }
        long prevIndex = 0, prevAt = 0;
        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            WriteVar(w, ZigZag(e.Index - prevIndex));
            WriteVar(w, ZigZag(e.AtMs - prevAt));
            prevIndex = e.Index;
            prevAt = e.AtMs;
            var permitted = e.Permitted switch { null => 0, false => 1, true => 2 };
            w.Write([(byte)((byte)e.Kind | permitted << 2)]);
            WriteVar(w, e.Status is { } s ? ZigZag(s) + 1 : 0);
            for (var f = 0; f < StringFields; f++) WriteVar(w, (ulong)refs[i * StringFields + f]);
        }
        return w.WrittenSpan.ToArray();

        int Ref(string? s)
        {
            if (s is null) return 0;
            if (!ids.TryGetValue(s, out var id))
            {
                id = table.Count;
                ids.Add(s, id);
                table.Add(s);
            }
            return id + 1;
        }
    }

    /// <summary>The events of <paramref name="data"/>, their strings shared through <paramref name="strings"/> with earlier blocks'.</summary>
    public static List<MonitorEvent> Decode(ReadOnlySpan<byte> data, StringPool strings)
    {
        ArgumentNullException.ThrowIfNull(strings);
        var r = new Reader(data);
        if (r.Byte() != Version) throw new EventBlockFormatException("The monitor block is of an unknown version.");
        var count = r.Count(MaxEvents, "events");
        var shared = r.Count(MaxEvents * StringFields, "strings");
        var tableCount = r.Count(MaxEvents * StringFields, "strings");
        if (shared > tableCount) throw new EventBlockFormatException("The monitor block claims more shared strings than strings.");
        var table = new string[tableCount];
        for (var i = 0; i < tableCount; i++)
        {
            var utf8 = r.Bytes(r.Count(int.MaxValue, "string bytes"));
            table[i] = i < shared ? strings.Get(utf8) : Encoding.UTF8.GetString(utf8);
        }
        var events = new List<MonitorEvent>(count);
        long index = 0, at = 0;
        for (var i = 0; i < count; i++)
        {
            index += UnZigZag(r.Var());
            at += UnZigZag(r.Var());
            var flags = r.Byte();
            if (flags > (2 << 2 | 3)) throw new EventBlockFormatException("The monitor block holds an event of an unknown kind.");
            var statusCode = r.Var();
            int? status = null;
            if (statusCode != 0)
            {
                var code = UnZigZag(statusCode - 1);
                if (code is < int.MinValue or > int.MaxValue) throw new EventBlockFormatException("The monitor block holds a status out of range.");
                status = (int)code;
            }
            events.Add(new MonitorEvent
            {
                Index = index,
                AtMs = at,
                Kind = (EntryKind)(flags & 3),
                Permitted = (flags >> 2) switch { 0 => null, 1 => false, 2 => true, _ => throw new EventBlockFormatException("The monitor block holds an event of an unknown decision.") },
                Status = status,
                Event = String(ref r),
                User = String(ref r),
                Actor = String(ref r),
                Patient = String(ref r),
                ResourceType = String(ref r),
                ResourceId = String(ref r),
                Action = String(ref r),
                Purpose = String(ref r),
                Rule = String(ref r),
                Outcome = String(ref r),
                Detail = String(ref r),
                Client = String(ref r),
                Source = String(ref r),
                Correlation = String(ref r),
            });
        }
        if (!r.AtEnd) throw new EventBlockFormatException("The monitor block has bytes after its last event.");
        return events;

        string? String(ref Reader r)
        {
            var id = r.Var();
            if (id == 0) return null;
            if (id > (ulong)table.Length) throw new EventBlockFormatException("The monitor block refers to a string it does not hold.");
            return table[(int)id - 1];
        }
    }

    private static ulong ZigZag(long v) => (ulong)((v << 1) ^ (v >> 63));

    private static long UnZigZag(ulong v) => (long)(v >> 1) ^ -(long)(v & 1);

    private static void WriteVar(ArrayBufferWriter<byte> w, ulong v)
    {
        var span = w.GetSpan(10);
        var n = 0;
        while (v >= 0x80)
        {
            span[n++] = (byte)(v | 0x80);
            v >>= 7;
        }
        span[n++] = (byte)v;
        w.Advance(n);
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _at;

        public readonly bool AtEnd => _at == _data.Length;

        public byte Byte()
        {
            if (_at >= _data.Length) throw Truncated();
            return _data[_at++];
        }

        public ulong Var()
        {
            ulong v = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                var b = Byte();
                v |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80)
                {
                    if (shift == 63 && b > 1) break;
                    return v;
                }
            }
            throw new EventBlockFormatException("The monitor block holds a number longer than 64 bits.");
        }

        public int Count(int max, string what)
        {
            var v = Var();
            if (v > (ulong)max) throw new EventBlockFormatException($"The monitor block claims more {what} than a block may hold.");
            return (int)v;
        }

        public ReadOnlySpan<byte> Bytes(int n)
        {
            if (n > _data.Length - _at) throw Truncated();
            var s = _data.Slice(_at, n);
            _at += n;
            return s;
        }

        private static EventBlockFormatException Truncated() => new("The monitor block is truncated.");
    }
}

/// <summary>
/// One string per distinct value across the blocks a reader decodes (user names, event kinds and actions repeat on almost
/// every entry), up to a bound, after which new values are made afresh. Not thread-safe: one per reader.
/// </summary>
internal sealed class StringPool(int limit = 1_000_000)
{
    private const int Longest = 256;

    private readonly Dictionary<string, string> _known = new(StringComparer.Ordinal);

    public string Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > Longest) return Encoding.UTF8.GetString(utf8);
        Span<char> chars = stackalloc char[Longest];
        var n = Encoding.UTF8.GetChars(utf8, chars);
        var lookup = _known.GetAlternateLookup<ReadOnlySpan<char>>();
        if (lookup.TryGetValue(chars[..n], out var known)) return known;
        var text = new string(chars[..n]);
        if (_known.Count < limit) _known[text] = text;
        return text;
    }
}
