using System.Diagnostics;
using Wardline.Server.Hosting;
using Wardline.Server.Tests.EndToEnd;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;

namespace Wardline.Server.Tests.Modules.BackupService;

/// <summary>Two servers on one PostgreSQL, both configured to back up every second: one runs the backups at a time, and every backup restores.</summary>
public sealed class BackupLeaderTests : IAsyncLifetime
{
    private TestStore _store = null!;

    public async Task InitializeAsync() => _store = await TestStore.CreateAsync(StoreKind.Postgres);

    public async Task DisposeAsync() => await _store.DisposeAsync();

    [Fact]
    public async Task Two_servers_on_one_postgresql_never_run_backups_at_the_same_time()
    {
        var target = Path.Combine(_store.Folder, "target");
        WardlineOptions Configured(WardlineOptions o)
        {
            o.Backup.Target = "file://" + target;
            o.Backup.IntervalSeconds = 1;
            o.Backup.DrillIntervalHours = 0;
            return o;
        }
        // The first server creates the keyring and runs the migrations; the second joins it.
        await using var a = await TestServer.StartAsync(Configured(_store.SharedOptions()), "server-a-user");
        await using var b = await TestServer.StartAsync(Configured(_store.SharedOptions()), "server-b-user");
        var clock = Stopwatch.StartNew();
        var writes = 0;
        while (clock.Elapsed < TimeSpan.FromSeconds(8))
        {
            await (writes++ % 2 == 0 ? a : b).Client.CreateAsync("Patient", FhirTest.Patient("Leader" + writes));
            await Task.Delay(100);
        }

        var runs = await QueryAsync(_store.Options, "SELECT started, finished, status, ledger_from, ledger_size FROM backup_runs WHERE trigger_by = 'schedule' ORDER BY started",
            r => (Started: r.GetInt64(0), Finished: r.IsDBNull(1) ? long.MaxValue : r.GetInt64(1), Status: r.GetString(2),
                From: r.IsDBNull(3) ? -1 : r.GetInt64(3), Size: r.IsDBNull(4) ? -1 : r.GetInt64(4)));

        Assert.True(runs.Count >= 3, $"{runs.Count} scheduled runs in {clock.Elapsed}");
        for (var i = 1; i < runs.Count; i++)
        {
            Assert.True(runs[i].Started >= runs[i - 1].Finished, $"run {i} started at {runs[i].Started} before run {i - 1} finished at {runs[i - 1].Finished}");
        }
        Assert.DoesNotContain(runs, r => r.Status == "failed");
        // Each backup ships from where the previous one ended, whichever server took it: no entry is shipped twice or skipped.
        var completed = runs.Where(r => r.Status == "completed").ToList();
        Assert.True(completed.Count >= 2, $"{completed.Count} completed runs of {runs.Count}");
        for (var i = 1; i < completed.Count; i++)
        {
            Assert.True(completed[i].From == completed[i - 1].Size, $"backup {i} ships entries from {completed[i].From}, the previous one ended at {completed[i - 1].Size}");
        }
        var verify = await WardlineCli.RunAsync(["backup", "verify", .. StoreArgs(_store.Options), "--target", "file://" + target]);
        Assert.True(verify.ExitCode == 0, verify.Output);
    }
}
