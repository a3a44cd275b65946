using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Wardline.Backup;
using Wardline.Crypto;
using Wardline.Server.Modules.Access.Facts;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Backup;

/// <summary>One drill's outcome, as recorded in backup_drills and the ledger.</summary>
internal sealed record DrillResult(string Id, DateTimeOffset At, string Target, string? Manifest, string Status, long RestoreMs, long VerifyMs, long RtoMs, long RpoMs, long LedgerSize, long Versions, IReadOnlyList<string> Problems, string Trigger);

/// <summary>
/// A restore drill: the newest backup restored into a scratch embedded store, verified as a real restore is,
/// timed (recovery time: restore plus verification) and dated (recovery point: how old the backup's newest data
/// was when the drill began); the result goes in backup_drills and the ledger, and the scratch store is removed.
/// </summary>
internal sealed class BackupDrills(SqlDialect dialect, RecordKeys keys, IWitness witness, LedgerRecorder recorder, FactsExtractor facts, TimeProvider time, ILogger<BackupDrills> logger)
{
    public async Task<DrillResult> RunAsync(IBackupStore store, BackupOptions options, string actor, IProgress<BackupProgress>? progress, CancellationToken ct)
    {
        var started = time.GetUtcNow();
        var id = "drill-" + Wardline.Backup.Format.Manifest.NewId(started);
        var scratch = Path.Combine(options.DrillFolder ?? Path.GetTempPath(), "wardline-" + id);
        var clock = Stopwatch.StartNew();
        DrillResult result;
        try
        {
            var keyring = keys.Keyring;
            var manifest = await BackupRestorer.ChooseAsync(store, new ContentAuthenticator(keyring, BackupCatalog.ManifestPurpose), null, null, ct,
                reason => BackupLog.ManifestSkipped(logger, id, store.Display, reason));
            BackupRestorer.CheckKeys(manifest, keyring);
            Directory.CreateDirectory(scratch);
            await using var target = SqlDialect.Sqlite(Path.Combine(scratch, "wardline.db"));
            var restore = await BackupRestorer.RestoreAsync(store, manifest, target, new EnvelopeCipher(keyring), skipDamaged: false, progress, ct);
            var restoreMs = clock.ElapsedMilliseconds;
            progress?.Report(new BackupProgress("verifying", 0, 1));
            var verdict = await RestoreCheck.VerifyAsync(target, new RecordKeys(keyring, null, NullLogger<RecordKeys>.Instance), witness, manifest, ct,
                options.DrillDerived ? facts : null);
            var total = clock.ElapsedMilliseconds;
            var rpo = (long)Math.Max(0, (started - manifest.Created).TotalMilliseconds);
            result = new DrillResult(id, started, store.Display, manifest.Name, verdict.Proven ? "passed" : "failed", restoreMs, total - restoreMs, total, rpo,
                verdict.Report.Size, verdict.Report.VersionsChecked, verdict.Report.Problems, actor);
            _ = restore;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // A target, format, key or storage fault names itself; anything else is a bug, and the drill is still a failed
            // drill, recorded, in the ledger and mailed like any other (a drill that cannot run proves nothing). A bug's
            // message stays in the log: it was not written for the ledger, so only the exception's type goes there.
            var expected = ex is BackupStoreException or Wardline.Backup.Format.BackupFormatException or BackupRefusedException or KeyringException or System.Data.Common.DbException or IOException;
            if (!expected) BackupLog.DrillError(logger, id, store.Display, ex);
            result = new DrillResult(id, started, store.Display, null, "failed", clock.ElapsedMilliseconds, 0, clock.ElapsedMilliseconds, 0, 0, 0,
                [expected ? ex.Message : "internal error: " + ex.GetType().Name + " (the servers' log has the details, event 5011)"], actor);
        }
        finally
        {
            try
            {
                if (Directory.Exists(scratch)) Directory.Delete(scratch, recursive: true);
            }
            catch (IOException)
            {
                // A scratch store left behind holds only encrypted data; the next drill uses a new folder.
            }
        }
        await RecordAsync(result, ct);
        await recorder.RecordSystemAsync("restore-drill", actor, result.Status == "passed" ? "succeeded" : "failed",
            $"drill {result.Id} of {result.Target}: {result.Status}; backup {result.Manifest ?? "none"}; {result.LedgerSize} entries, {result.Versions} versions verified; RTO {result.RtoMs} ms, RPO {result.RpoMs} ms" +
            (result.Problems.Count > 0 ? $"; {result.Problems.Count} problems, first: {result.Problems[0]}" : ""), ct);
        BackupLog.Drill(logger, id, result.Status, result.LedgerSize, result.RestoreMs, result.VerifyMs, result.RpoMs);
        return result;
    }

    private async Task RecordAsync(DrillResult r, CancellationToken ct)
    {
        await using var gate = await dialect.EnterWriteAsync(ct);
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "INSERT INTO backup_drills (id, at, target, trigger_by, manifest, status, restore_ms, verify_ms, rto_ms, rpo_ms, ledger_size, versions, problems) " +
            "VALUES (@id, @at, @t, @by, @m, @s, @rm, @vm, @rto, @rpo, @z, @v, @p)";
        Migrations.AddParam(cmd, "@id", r.Id);
        Migrations.AddParam(cmd, "@at", r.At.ToUnixTimeMilliseconds());
        Migrations.AddParam(cmd, "@t", r.Target);
        Migrations.AddParam(cmd, "@by", r.Trigger);
        Migrations.AddParam(cmd, "@m", r.Manifest);
        Migrations.AddParam(cmd, "@s", r.Status);
        Migrations.AddParam(cmd, "@rm", r.RestoreMs);
        Migrations.AddParam(cmd, "@vm", r.VerifyMs);
        Migrations.AddParam(cmd, "@rto", r.RtoMs);
        Migrations.AddParam(cmd, "@rpo", r.RpoMs);
        Migrations.AddParam(cmd, "@z", r.LedgerSize);
        Migrations.AddParam(cmd, "@v", r.Versions);
        Migrations.AddParam(cmd, "@p", r.Problems.Count == 0 ? null : string.Join("\n", r.Problems));
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
