namespace Wardline.Monitoring.Tests;

/// <summary>
/// The monitor block codec: what it packs comes back member for member, and anything it did not write (cut short, a byte
/// changed, bytes after the end) is refused with <see cref="EventBlockFormatException"/>, never another exception and never
/// a read outside the input.
/// </summary>
public sealed class EventBlockTests
{
    private static List<MonitorEvent> Sample()
    {
        var events = new List<MonitorEvent>();
        for (var i = 0; i < 300; i++)
        {
            events.Add(new MonitorEvent
            {
                Index = 4096 + i,
                // Clocks jump: some entries are stamped before their predecessors.
                AtMs = 1_790_000_000_000 + i * 13 - (i % 17 == 0 ? 5_000 : 0),
                Kind = (EntryKind)(i % 4),
                Event = i % 4 == 0 ? "decision" : i % 4 == 1 ? "SignInFailed" : i % 4 == 2 ? "update" : "monitor-replay",
                User = i % 11 == 0 ? null : "dr.ünal-" + (i % 5),
                Actor = i % 9 == 0 ? "admin" : null,
                Patient = "p-" + (i % 23),
                ResourceType = i % 2 == 0 ? "Observation" : null,
                ResourceId = "obs-" + i,
                Action = "Read",
                Purpose = i % 3 == 0 ? "ETREAT" : null,
                Permitted = i % 3 == 0 ? null : i % 3 == 1,
                Rule = "care-team-read",
                Status = i % 5 == 0 ? null : i % 5 == 1 ? 200 : i % 5 == 2 ? -1 : i % 5 == 3 ? int.MaxValue : int.MinValue,
                Outcome = i % 4 == 1 ? "failed" : null,
                Detail = i % 7 == 0 ? new string('é', 400) + "𝄞" : i % 7 == 1 ? "" : null,
                Client = i % 6 == 0 ? "bedside-app" : null,
                Source = "10.0.0." + (i % 4),
                Correlation = "corr-" + i / 2,
            });
        }
        events.Add(new MonitorEvent { Index = long.MaxValue, AtMs = long.MinValue, Kind = EntryKind.System });
        events.Add(new MonitorEvent { Index = 0, AtMs = long.MaxValue, Kind = EntryKind.Write });
        return events;
    }

    [Fact]
    public void What_is_packed_comes_back_member_for_member()
    {
        var events = Sample();

        var decoded = EventBlock.Decode(EventBlock.Encode(events), new StringPool());

        Assert.Equal(events, decoded);
    }

    [Fact]
    public void An_empty_block_round_trips()
    {
        Assert.Empty(EventBlock.Decode(EventBlock.Encode([]), new StringPool()));
    }

    [Fact]
    public void Repeated_values_share_one_string_across_blocks_up_to_the_pools_bound()
    {
        var pool = new StringPool(limit: 3);
        var a = EventBlock.Decode(EventBlock.Encode(Sample()), pool);
        var b = EventBlock.Decode(EventBlock.Encode(Sample()), pool);

        // The first three distinct values (the first entry's event, actor and patient) are pooled; later ones are made afresh.
        Assert.Same(a[0].Event, b[0].Event);
        Assert.Same(a[0].Patient, b[0].Patient);
        Assert.Equal(a[1].User, b[1].User);
        Assert.NotSame(a[1].User, b[1].User);
        // Correlations and resource ids are mostly unique: never pooled.
        var large = new StringPool();
        var c = EventBlock.Decode(EventBlock.Encode(Sample()), large);
        var d = EventBlock.Decode(EventBlock.Encode(Sample()), large);
        Assert.Same(c[1].User, d[1].User);
        Assert.Equal(c[1].ResourceId, d[1].ResourceId);
        Assert.NotSame(c[1].ResourceId, d[1].ResourceId);
        Assert.NotSame(c[1].Correlation, d[1].Correlation);
    }

    [Fact]
    public void A_block_cut_short_anywhere_is_refused_as_a_format_error()
    {
        var data = EventBlock.Encode(Sample());
        for (var n = 0; n < data.Length; n++)
        {
            Assert.Throws<EventBlockFormatException>(() => EventBlock.Decode(data.AsSpan(0, n), new StringPool()));
        }
    }

    [Fact]
    public void Bytes_after_the_last_event_and_an_unknown_version_are_refused()
    {
        var data = EventBlock.Encode(Sample());

        Assert.Throws<EventBlockFormatException>(() => EventBlock.Decode([.. data, 0], new StringPool()));
        data[0] = 2;
        Assert.Contains("version", Assert.Throws<EventBlockFormatException>(() => EventBlock.Decode(data, new StringPool())).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new byte[] { 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 })] // a count longer than 64 bits
    [InlineData(new byte[] { 1, 0xFF, 0xFF, 0x7F })] // more events than a block may hold
    [InlineData(new byte[] { 1, 1, 0, 0, 0, 0, 0x10, 0 })] // an unknown kind and decision
    [InlineData(new byte[] { 1, 1, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 })] // a string the block does not hold
    [InlineData(new byte[] { 1, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F })] // a string longer than the block
    [InlineData(new byte[] { 1, 0, 2, 1, 1, 0x41 })] // more shared strings than strings
    [InlineData(new byte[] { 1, 1, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 })] // a status out of range
    public void Malformed_blocks_are_refused_as_format_errors(byte[] data)
    {
        Assert.Throws<EventBlockFormatException>(() => EventBlock.Decode(data, new StringPool()));
    }

    [Fact]
    public void Any_changed_byte_decodes_to_other_events_or_is_refused_never_another_failure()
    {
        var events = Sample();
        var data = EventBlock.Encode(events);
        var random = new Random(6);
        for (var round = 0; round < 2_000; round++)
        {
            var copy = (byte[])data.Clone();
            copy[random.Next(copy.Length)] ^= (byte)random.Next(1, 256);
            try
            {
                EventBlock.Decode(copy, new StringPool());
            }
            catch (EventBlockFormatException)
            {
                // Refused: fine.
            }
        }
    }
}
