using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Backup.Infrastructure;
using static Wardline.Server.Tests.Modules.Backup.Infrastructure.BackupTestKit;

namespace Wardline.Server.Tests.Modules.Backup;

/// <summary>
/// Records written through the FHIR API, backed up in full to a real folder, restored into a fresh store of the
/// same engine and of the other one: the restore is proven against the witness, and a server on the restored
/// store answers read, vread, history and searches exactly as the original did.
/// </summary>
public abstract class BackupRoundTripConformance(StoreKind kind)
{
    [Fact]
    public Task Restore_into_a_fresh_store_of_the_same_engine_is_proven_and_answers_as_the_original() => RoundTripAsync(kind);

    [Fact]
    public Task Restore_into_a_fresh_store_of_the_other_engine_is_proven_and_answers_as_the_original() => RoundTripAsync(Other(kind));

    protected async Task RoundTripAsync(StoreKind destinationKind, Wardline.Server.Modules.Backup.BackupOptions? options = null)
    {
        await using var source = await TestStore.CreateAsync(kind);
        await using var destination = await TestStore.CreateAsync(destinationKind);
        await using var target = new FolderTarget();
        List<string> before;
        Seeded seeded;
        Wardline.Backup.Format.Manifest manifest;
        await using (var server = await StartAsync(source))
        {
            seeded = await SeedAsync(server.Client);
            before = await AskAllAsync(server, seeded);
            await server.Service<Wardline.Server.Modules.Ledger.TreeHeads>().PublishAsync(force: true, CancellationToken.None);

            var run = await BackupAsync(server, target.Store, full: true, options);

            Assert.True(run.Status == "completed", run.Error);
            Assert.Equal("full", run.Kind);
            manifest = run.Manifest!;
            var report = await RestoreIntoAsync(target.Store, manifest, destination, source);
            Assert.Empty(report.Damaged);
            Assert.Equal(manifest.Objects.Count, report.Objects);
        }

        var state = await LedgerStateAsync(destination);
        Assert.Equal((manifest.LedgerSize, manifest.LedgerRoot), state);
        if (destinationKind == StoreKind.Sqlite)
        {
            // The file was loaded without a journal: it must be back in WAL mode, and whole.
            Assert.Equal("wal", await Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit.ScalarAsync(destination.Options, "PRAGMA journal_mode"));
            Assert.Equal("ok", await Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit.ScalarAsync(destination.Options, "PRAGMA integrity_check"));
        }
        var verdict = await VerifyAsync(destination, manifest, WitnessPath(source));
        Assert.True(verdict.Proven, string.Join("\n", verdict.Report.Problems));
        Assert.Equal(manifest.LedgerSize, verdict.Report.Size);
        Assert.True(verdict.Report.VersionsChecked >= 12, $"{verdict.Report.VersionsChecked} versions checked");
        // On a new machine without the witness, the authenticated manifest vouches for the restored ledger.
        var withoutWitness = await VerifyAsync(destination, manifest, null);
        Assert.True(withoutWitness.Proven, string.Join("\n", withoutWitness.Report.Problems));
        Assert.Contains("no witness given", withoutWitness.WitnessDescription, StringComparison.Ordinal);

        ReleasePools();
        await using (var restored = await StartAsync(destination))
        {
            var after = await AskAllAsync(restored, seeded);
            Assert.Equal(before, after);
            Assert.Contains(after, a => a.StartsWith($"Observation/{seeded.DeletedObservation} -> 410", StringComparison.Ordinal));
            Assert.Contains(after, a => a.StartsWith($"Patient?name={seeded.Family}", StringComparison.Ordinal) && a.Contains(seeded.OtherPatient, StringComparison.Ordinal));
            // The restored store is writable: a new record goes on after the restored ledger.
            await restored.Client.CreateAsync("Patient", FhirTest.Patient(seeded.Family + "new"));
        }
        ReleasePools();
    }
}

public sealed class SqliteBackupRoundTripTests() : BackupRoundTripConformance(StoreKind.Sqlite)
{
    // The tests above take SQLite's default full backup, a database image; this one its row segments.
    [Fact]
    public Task Row_segment_full_backup_restores_into_a_fresh_store_proven_and_answers_as_the_original() => RoundTripAsync(StoreKind.Sqlite, RowSegments);
}

public sealed class PostgresBackupRoundTripTests() : BackupRoundTripConformance(StoreKind.Postgres);
