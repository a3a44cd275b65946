using System.Net;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;
using static Wardline.Server.Tests.Modules.Monitoring.MonitoringServerKit;

namespace Wardline.Server.Tests.Modules.Monitoring;

/// <summary>
/// An alert's detail names the patients whose records the user touched, so whoever views it is in those patients'
/// accounting of disclosures, as with the timelines: "who looked at my record" includes the officer who looked at the
/// evidence. The queue shows counts only (no group key, which can name a patient) and is not recorded, unless it is
/// asked for one patient's alerts.
/// </summary>
public abstract class AlertDisclosureConformance(StoreKind kind) : MonitoringServerTest(kind, officer: true)
{
    private Task<long> OfficerReadsOfAsync(string patient) => CountAsync(Store.Options,
        $"SELECT COUNT(*) FROM ledger_entries WHERE type = 'access' AND event = 'audit' AND user_name = 'privacy.olu' AND patient = 'Patient/{patient}'");

    [Fact]
    public async Task Viewing_an_alerts_detail_or_a_patients_alerts_is_recorded_as_a_read_of_the_patients_audit_trail_and_the_queue_is_not()
    {
        var own = await ReadOwnRecordAsync(Server);
        await ReplayLastHourAsync(Officer, Server);

        var queue = await JsonAsync(await Officer.GetAsync(Monitor(Server, "alerts?detection=self-access")));
        var afterQueue = await OfficerReadsOfAsync(own);
        var id = (long)queue["alerts"]!.AsArray()[0]!["id"]!;
        var detail = await JsonAsync(await Officer.GetAsync(Monitor(Server, $"alerts/{id}")));
        var afterDetail = await OfficerReadsOfAsync(own);
        var byPatient = await JsonAsync(await Officer.GetAsync(Monitor(Server, "alerts?patient=" + own)));
        var afterByPatient = await OfficerReadsOfAsync(own);
        var missing = await Officer.GetAsync(Monitor(Server, "alerts/999999"));

        Assert.Equal(0, afterQueue);
        Assert.DoesNotContain(own, queue.ToJsonString(), StringComparison.Ordinal);
        Assert.Contains(detail["entries"]!.AsArray(), e => (string?)e!["patient"] == own);
        Assert.Equal(own, (string?)detail["alert"]!["groupKey"]);
        Assert.Equal(1, afterDetail);
        Assert.Single(byPatient["alerts"]!.AsArray());
        Assert.Equal(2, afterByPatient);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal(2, await OfficerReadsOfAsync(own));
    }
}

public sealed class AlertDisclosureOnSqlite() : AlertDisclosureConformance(StoreKind.Sqlite);

public sealed class AlertDisclosureOnPostgres() : AlertDisclosureConformance(StoreKind.Postgres);
