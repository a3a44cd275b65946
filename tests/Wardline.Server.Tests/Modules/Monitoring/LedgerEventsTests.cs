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

        var streamed = (await LedgerEvents.ReadAsync(dialect, -1, 100_000, CancellationToken.None, from, to)).ToList();
        var period = new List<MonitorEvent>();
        await foreach (var batch in LedgerEvents.ReadPeriodAsync(dialect, await LedgerEvents.IndexAtAsync(dialect, from, CancellationToken.None),
            await LedgerEvents.IndexAtAsync(dialect, to, CancellationToken.None), CancellationToken.None)) period.AddRange(batch);

        Assert.True(streamed.Count >= 6, $"only {streamed.Count} entries");
        Assert.Contains(streamed, e => e.Kind == EntryKind.Security);
        Assert.Contains(streamed, e => e.Kind == EntryKind.System);
        Assert.Contains(streamed, e => e.Permitted is null);
        Assert.Equal(streamed, period);
    }
}

public sealed class LedgerEventsOnSqlite() : LedgerEventsConformance(StoreKind.Sqlite);

public sealed class LedgerEventsOnPostgres() : LedgerEventsConformance(StoreKind.Postgres);
