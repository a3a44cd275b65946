using System.Net;
using Wardline.Monitoring;
using Wardline.Server.Modules.Monitoring;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Monitoring.MonitoringServerKit;

namespace Wardline.Server.Tests.Modules.Monitoring;

/// <summary>
/// A replay reads the ledger through its own period reader (on SQLite, the statement stepped through SQLitePCL with
/// shared strings); streaming reads through ADO.NET. Both must see every entry exactly alike, NULLs, non-ASCII text and
/// long values included, or a replay would judge other events than streaming did.
/// </summary>
public abstract class LedgerEventsConformance(StoreKind kind) : MonitoringServerTest(kind, officer: true)
{
    [Fact]
    public async Task The_period_reader_sees_every_entry_as_the_streaming_reader_does()
    {
        var from = DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeMilliseconds();
        var patient = await Server.Client.CreateAsync("Patient", """{"resourceType":"Patient","name":[{"family":"Ñúñez-Øvergård","given":["Zoë"]}]}""");
        Assert.Equal(HttpStatusCode.OK, (await Server.Client.GetAsync("Patient/" + patient)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Server.Client.GetAsync("Patient?family=Ñúñez&given=" + new string('z', 300))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Server.Client.GetAsync("Observation/does-not-exist")).StatusCode);
        await StaffAsync(Server, "dr.unal", "Deniz Ünal");
        await ReplayLastHourAsync(Officer, Server);
        var dialect = Server.Service<SqlDialect>();
        var to = DateTimeOffset.UtcNow.AddMinutes(1).ToUnixTimeMilliseconds();

        var streamed = (await LedgerEvents.ReadAsync(dialect, -1, 100_000, CancellationToken.None)).Where(e => e.AtMs >= from && e.AtMs < to).ToList();
        var period = new List<MonitorEvent>();
        await foreach (var batch in LedgerEvents.ReadPeriodAsync(dialect, await LedgerEvents.IndexAtAsync(dialect, from, CancellationToken.None),
            await LedgerEvents.IndexAtAsync(dialect, to, CancellationToken.None), null, CancellationToken.None)) period.AddRange(batch);

        Assert.True(streamed.Count >= 6, $"only {streamed.Count} entries");
        Assert.Contains(streamed, e => e.Kind == EntryKind.Security);
        Assert.Contains(streamed, e => e.Kind == EntryKind.System);
        Assert.Contains(streamed, e => e.Permitted is null);
        Assert.Equal(streamed, period);
    }

    [Fact]
    public async Task A_times_index_is_the_first_entry_stamped_at_or_after_it_at_either_end_of_the_ledger_and_between()
    {
        var patient = await Server.Client.CreateAsync("Patient", """{"resourceType":"Patient","name":[{"family":"Ng"}]}""");
        for (var i = 0; i < 5; i++) Assert.Equal(HttpStatusCode.OK, (await Server.Client.GetAsync("Patient/" + patient)).StatusCode);
        var dialect = Server.Service<SqlDialect>();
        var entries = (await LedgerEvents.ReadAsync(dialect, -1, 100_000, CancellationToken.None)).ToList();
        Assert.True(entries.Count >= 12, $"{entries.Count} entries");
        Assert.Equal(Enumerable.Range(0, entries.Count).Select(i => (long)i), entries.Select(e => e.Index));

        // Every entry's own time, a moment before it, before the first and after the last. Entries are stamped when they are
        // made and appended in commit order, so neighbours can be a few ms out of order: the index must fall between the first
        // entry stamped at or after the time and the one after the last stamped before it (the same index where they agree).
        foreach (var at in entries.SelectMany(e => new[] { e.AtMs, e.AtMs - 1 }).Append(entries[^1].AtMs + 1).Append(0L))
        {
            var first = entries.FindIndex(e => e.AtMs >= at) is var f and >= 0 ? f : entries.Count;
            var afterLastBefore = entries.FindLastIndex(e => e.AtMs < at) + 1;
            var found = await LedgerEvents.IndexAtAsync(dialect, at, CancellationToken.None);
            Assert.InRange(found, Math.Min(first, afterLastBefore), Math.Max(first, afterLastBefore));
        }
    }
}

public sealed class LedgerEventsOnSqlite() : LedgerEventsConformance(StoreKind.Sqlite);

public sealed class LedgerEventsOnPostgres() : LedgerEventsConformance(StoreKind.Postgres);
