using System.Security.Cryptography;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Wardline.Ledger;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Ledger;

/// <summary>
/// Starts the ledger with the server: checks the tree (read-only if it fails), records the versions stored before the
/// ledger existed, then signs and publishes a tree head every interval while entries arrive.
/// </summary>
internal sealed class LedgerService(
    LedgerIntegrity integrity, LedgerVerifier verifier, TreeHeads heads, SqlDialect dialect, RecordKeys keys,
    GroupCommitter committer, LedgerOptions options, ILogger<LedgerService> logger) : BackgroundService
{
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        // StoreInitializer, registered before this service, has brought the schema up to date. The check comes first: on a
        // ledger that fails it (emptied behind the witness's back, say) nothing is appended, not even the earlier versions.
        await integrity.CheckAsync(verifier, cancellationToken);
        if (integrity.Problem is null)
        {
            await RecordEarlierVersionsAsync(cancellationToken);
            try
            {
                await heads.PublishAsync(force: false, cancellationToken);
            }
            catch (WitnessUnavailableException ex)
            {
                // The check read the witness; writing to it failed (an outage, credentials that cannot create). The ledger is
                // sound, so the server serves; the next interval tries again, and the log says why no head was published.
                LedgerLog.PublishFailed(logger, ex);
            }
        }
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.HeadIntervalSeconds));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (integrity.Problem is not null) continue;
            try
            {
                if (await heads.PublishAsync(force: false, stoppingToken) is { } head) LedgerLog.Published(logger, head.Size);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LedgerLog.PublishFailed(logger, ex);
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        // A last head covers what this server appended since the previous one.
        if (integrity.Problem is null)
        {
            try
            {
                await heads.PublishAsync(force: false, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LedgerLog.PublishFailed(logger, ex);
            }
        }
    }

    /// <summary>
    /// A store that predates the ledger: every version already stored gets its write entry (with its
    /// content's hash) when the ledger starts empty, so verification covers it from then on.
    /// </summary>
    private async Task RecordEarlierVersionsAsync(CancellationToken ct)
    {
        if ((await integrity.StateAsync(ct)).Size != 0) return;
        var at = DateTimeOffset.UtcNow;
        var rows = new List<LedgerRow>();
        await using (var c = await dialect.OpenAsync(ct))
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT v.res_type, v.res_id, v.version, v.last_updated, v.deleted, v.body, k.wrapped " +
                "FROM resource_versions v JOIN data_keys k ON k.res_type = v.res_type AND k.res_id = v.res_id ORDER BY v.last_updated, v.res_type, v.res_id, v.version";
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                var v = new StoredVersion(r.GetString(0), r.GetString(1), r.GetInt32(2), r.GetInt64(3), r.GetInt32(4) != 0,
                    r.IsDBNull(5) ? null : (byte[])r.GetValue(5), (byte[])r.GetValue(6));
                var json = keys.Open(v);
                rows.Add(new LedgerRow(new LedgerEntry
                {
                    Type = "write",
                    At = at,
                    Event = v.Deleted ? "delete" : v.Version == 1 ? "create" : "update",
                    User = "operator",
                    Resource = $"{v.Type}/{v.Id}/_history/{v.Version}",
                    Sha256 = json is null ? null : Convert.ToHexStringLower(SHA256.HashData(json)),
                    Detail = "stored before the ledger started; recorded when it did",
                }));
            }
        }
        foreach (var chunk in rows.Chunk(5000))
        {
            await committer.RunAsync((c, tx, entries, token) =>
            {
                entries.AddRange(chunk);
                return Task.FromResult(chunk.Length);
            }, isolated: false);
        }
    }
}
