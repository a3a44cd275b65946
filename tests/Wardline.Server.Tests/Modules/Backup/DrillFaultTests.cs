using Wardline.Backup;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Backup.Infrastructure;
using static Wardline.Server.Tests.Modules.Backup.Infrastructure.BackupTestKit;

namespace Wardline.Server.Tests.Modules.Backup;

/// <summary>
/// A drill that stops on an error nobody expected (a bug, not a damaged or unreachable target) is still a failed drill:
/// recorded in backup_drills and the ledger, its scratch store removed, and the error's message kept out of both.
/// </summary>
public sealed class DrillFaultTests() : StoreAndTarget(StoreKind.Sqlite)
{
    [Fact]
    public async Task A_drill_stopped_by_an_unexpected_error_is_recorded_as_a_failed_drill()
    {
        await using var server = await StartAsync(Store);
        await SeedAsync(server.Client);
        var run = await BackupAsync(server, Target.Store);
        Assert.True(run.Status == "completed", run.Error);
        var scratch = Path.Combine(Target.Folder, "..", Path.GetFileName(Target.Folder) + "-drills");
        var options = new BackupOptions { DrillFolder = scratch };

        var result = await server.Service<BackupDrills>().RunAsync(new BuggyStore(Target.Store), options, "tester", null, CancellationToken.None);

        Assert.Equal("failed", result.Status);
        var problem = Assert.Single(result.Problems);
        Assert.Equal("internal error: InvalidOperationException (the servers' log has the details, event 5011)", problem);
        Assert.Equal(1, await CountAsync(Store, $"SELECT COUNT(*) FROM backup_drills WHERE id = '{result.Id}' AND status = 'failed' AND problems LIKE 'internal error: InvalidOperationException%'"));
        Assert.Equal(1, await CountAsync(Store, "SELECT COUNT(*) FROM ledger_entries WHERE type = 'system' AND event = 'restore-drill' AND outcome = 'failed' AND detail LIKE '%internal error: InvalidOperationException%'"));
        Assert.Equal(0, await CountAsync(Store, $"SELECT COUNT(*) FROM ledger_entries WHERE detail LIKE '%{BuggyStore.Secret}%'"));
        Assert.False(Directory.Exists(scratch) && Directory.EnumerateFileSystemEntries(scratch).Any(), "the drill left its scratch store behind");
        if (Directory.Exists(scratch)) Directory.Delete(scratch, recursive: true);
    }

    /// <summary>A real store whose reads of segments fail as a bug would (not as a target fault): InvalidOperationException.</summary>
    private sealed class BuggyStore(IBackupStore inner) : IBackupStore
    {
        public const string Secret = "injected-bug-message";

        public string Display => inner.Display;

        public BackupImmutability Immutability => inner.Immutability;

        public Task PrepareAsync(CancellationToken ct) => inner.PrepareAsync(ct);

        public Task PutAsync(string name, ReadOnlyMemory<byte> content, DateTimeOffset? retainUntil, CancellationToken ct) => inner.PutAsync(name, content, retainUntil, ct);

        public Task<byte[]> GetAsync(string name, CancellationToken ct) =>
            name.StartsWith("segments/", StringComparison.Ordinal) ? throw new InvalidOperationException(Secret) : inner.GetAsync(name, ct);

        public Task<BackupObjectInfo?> StatAsync(string name, CancellationToken ct) => inner.StatAsync(name, ct);

        public IAsyncEnumerable<BackupObjectInfo> ListAsync(string prefix, CancellationToken ct) => inner.ListAsync(prefix, ct);

        public Task DeleteAsync(string name, CancellationToken ct) => inner.DeleteAsync(name, ct);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
