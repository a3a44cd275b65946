using System.Security.Cryptography;
using Microsoft.Data.Sqlite;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Backup.Infrastructure;
using static Wardline.Server.Tests.Modules.Backup.Infrastructure.BackupTestKit;

namespace Wardline.Server.Tests.Modules.Backup;

/// <summary>
/// A SQLite store's full backup ships the store's own file, frozen by a read transaction that began while the WAL was
/// wholly checkpointed (ADR 0012): writes and checkpoints must leave the file byte for byte as it was until the image
/// is let go; where the file cannot be frozen, the store is copied instead; either way the backup proves.
/// </summary>
public sealed class SqliteImageFreezeTests() : StoreAndTarget(StoreKind.Sqlite)
{
    [Fact]
    public async Task A_live_image_stays_byte_for_byte_still_while_writes_and_checkpoints_go_on()
    {
        await using var server = await StartAsync(Store);
        var seeded = await SeedAsync(server.Client, observations: 20);
        var dialect = (SqliteDialect)server.Service<SqlDialect>();
        string frozen;
        await using (var image = await SqliteImage.TakeAsync(dialect, "test", null, CancellationToken.None))
        {
            Assert.True(image.Live, "the store's file was copied, not frozen");
            frozen = Hash(image.File, image.Length);
            for (var i = 0; i < 30; i++)
                await server.Client.CreateAsync("Observation", FhirTest.Observation(seeded.Patient, value: 40 + i, date: "2024-06-02T10:00:00Z"));
            var (busy, log, copied) = Checkpoint(dialect, "PASSIVE");

            Assert.Equal(0, busy);
            Assert.True(log > copied, $"the checkpoint copied every frame ({copied} of {log}) into a file that should be frozen");
            Assert.Equal(frozen, Hash(image.File, image.Length));
            Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(dialect.File)!, "*.image-*"));
        }

        // Let go, the image no longer holds the checkpoint back: the writes reach the file.
        var after = Checkpoint(dialect, "PASSIVE");
        Assert.Equal(after.Log, after.Copied);
        using var file = File.OpenHandle(dialect.File, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        Assert.NotEqual(frozen, Hash(file, RandomAccess.GetLength(file)));
    }

    [Fact]
    public async Task An_older_reader_holding_back_the_checkpoint_makes_the_backup_copy_the_store_and_it_still_proves()
    {
        BackupRunResult run;
        await using (var server = await StartAsync(Store))
        {
            var seeded = await SeedAsync(server.Client);
            var dialect = (SqliteDialect)server.Service<SqlDialect>();
            await using var older = (SqliteConnection)await dialect.OpenAsync(CancellationToken.None);
            await using var olderRead = older.BeginTransaction(deferred: true);
            using (var cmd = older.CreateCommand())
            {
                cmd.CommandText = "SELECT COUNT(*) FROM resources";
                cmd.ExecuteScalar();
            }
            await WriteMoreAsync(server.Client, seeded, "2024-04-01");

            await using (var image = await SqliteImage.TakeAsync(dialect, "test", null, CancellationToken.None))
            {
                Assert.False(image.Live, "the file was frozen although a reader held the checkpoint back");
                Assert.Single(Directory.GetFiles(Path.GetDirectoryName(dialect.File)!, "*.image-*"));
            }
            Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(dialect.File)!, "*.image-*"));
            run = await BackupAsync(server, Target.Store, full: true);
        }
        Assert.True(run.Status == "completed", run.Error);
        await using var restored = await TestStore.CreateAsync(Kind);
        await RestoreIntoAsync(Target.Store, run.Manifest!, restored, Store);
        var verdict = await VerifyAsync(restored, run.Manifest!, WitnessPath(Store));
        Assert.True(verdict.Proven, string.Join("\n", verdict.Report.Problems));
        Assert.Equal(0, await CountAsync(restored, "SELECT COUNT(*) FROM backup_runs"));
        ReleasePools();
    }

    [Fact]
    public async Task A_backup_of_the_live_file_restores_without_the_servers_run_log_and_proves()
    {
        BackupRunResult run;
        await using (var server = await StartAsync(Store))
        {
            await SeedAsync(server.Client);
            // What the servers last announced of a target's backups (overdue) describes the source's targets, as the run log does.
            await CountAsync(Store, "INSERT INTO backup_watch (target, overdue) VALUES ('file:///elsewhere', 1) RETURNING 1");
            run = await BackupAsync(server, Target.Store, full: true);
        }
        Assert.True(run.Status == "completed", run.Error);
        Assert.Contains(run.Manifest!.Objects, o => o.Kind == "image");
        Assert.True(await CountAsync(Store, "SELECT COUNT(*) FROM backup_runs") > 0);
        Assert.Equal(1, await CountAsync(Store, "SELECT COUNT(*) FROM backup_watch"));
        await using var restored = await TestStore.CreateAsync(Kind);

        await RestoreIntoAsync(Target.Store, run.Manifest, restored, Store);
        var verdict = await VerifyAsync(restored, run.Manifest, WitnessPath(Store));

        Assert.True(verdict.Proven, string.Join("\n", verdict.Report.Problems));
        Assert.Equal(0, await CountAsync(restored, "SELECT COUNT(*) FROM backup_runs"));
        Assert.Equal(0, await CountAsync(restored, "SELECT COUNT(*) FROM backup_segments"));
        Assert.Equal(0, await CountAsync(restored, "SELECT COUNT(*) FROM backup_watch"));
        ReleasePools();
    }

    private static string Hash(Microsoft.Win32.SafeHandles.SafeFileHandle file, long length)
    {
        using var sha = SHA256.Create();
        var buffer = new byte[1 << 20];
        for (long at = 0; at < length;)
        {
            var n = RandomAccess.Read(file, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - at)), at);
            Assert.True(n > 0, "the file ended early");
            sha.TransformBlock(buffer, 0, n, null, 0);
            at += n;
        }
        sha.TransformFinalBlock([], 0, 0);
        return Convert.ToHexStringLower(sha.Hash!);
    }

    private static (long Busy, long Log, long Copied) Checkpoint(SqliteDialect dialect, string mode)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = dialect.File, Pooling = false }.ToString());
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"PRAGMA wal_checkpoint({mode})";
        using var r = cmd.ExecuteReader();
        Assert.True(r.Read());
        return (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2));
    }
}
