using System.Data.Common;
using Microsoft.Extensions.Logging;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Pipeline;

/// <summary>
/// Interim durable record of every decision and outcome, until the tamper-evident ledger takes
/// its place behind <see cref="IAccessRecorder"/>. Records go through the store's group commit:
/// concurrent requests share one commit, and a request's records commit in the same transaction
/// as any resource write queued before them.
/// </summary>
internal sealed class AccessLog(GroupCommitter committer, SqlDialect dialect, ILogger<AccessLog> logger) : IAccessRecorder
{
    private const string Columns = "access_log (at, user_name, action, res_type, res_id, phase, permitted, rule, status, resource_ref, correlation, source, purpose)";

    private readonly Lock _lock = new();
    private List<AccessRecord> _pending = [];
    private Task<int>? _flush;

    /// <summary>
    /// Adds the records to the pending batch and waits for the flush that carries them. One flush
    /// unit per group commit writes every record queued so far in one pass, so the single writer
    /// spends a statement per row, not a statement (and a parse) per request.
    /// </summary>
    public async ValueTask RecordAsync(IReadOnlyList<AccessRecord> records, CancellationToken ct)
    {
        Task<int> flush;
        lock (_lock)
        {
            _pending.AddRange(records);
            flush = _flush ??= committer.RunAsync(FlushAsync, isolated: false);
        }
        try
        {
            await flush;
        }
        catch (Exception ex) when (ex is DbException or StoreWriteException)
        {
            Log.AccessRecordWriteFailed(logger, records.Count, ex);
            throw new AccessNotRecordedException(ex);
        }
    }

    /// <summary>Security events are rare next to accesses: each is its own small unit in the group commit.</summary>
    public async ValueTask RecordAsync(SecurityEvent e, CancellationToken ct)
    {
        try
        {
            await committer.RunAsync(async (c, tx, token) =>
            {
                await dialect.InsertRowsAsync(c, tx,
                    "security_events (at, kind, user_name, actor, outcome, detail, correlation, source)", 8, 1, (_, add) =>
                    {
                        add(e.At.ToUnixTimeMilliseconds()); add(e.Kind.ToString()); add(e.User); add(e.Actor);
                        add(e.Outcome); add(e.Detail); add(e.CorrelationId); add(e.Source);
                    }, token);
                return 1;
            }, isolated: false);
        }
        catch (Exception ex) when (ex is DbException or StoreWriteException)
        {
            Log.AccessRecordWriteFailed(logger, 1, ex);
            throw new AccessNotRecordedException(ex);
        }
    }

    /// <summary>Runs inside the group commit: takes every pending record; later ones wait for the next flush.</summary>
    private async Task<int> FlushAsync(DbConnection c, DbTransaction tx, CancellationToken ct)
    {
        List<AccessRecord> batch;
        lock (_lock)
        {
            batch = _pending;
            _pending = [];
            _flush = null;
        }
        foreach (var chunk in batch.Chunk(1000))
        {
            await InsertAsync(c, tx, chunk, ct);
        }
        return batch.Count;
    }

    private Task InsertAsync(DbConnection c, DbTransaction tx, AccessRecord[] batch, CancellationToken ct) =>
        dialect.InsertRowsAsync(c, tx, Columns, 13, batch.Length, (i, add) =>
        {
            var r = batch[i];
            add(r.At.ToUnixTimeMilliseconds()); add(r.User); add(r.Interaction.Action.ToString()); add(r.Interaction.ResourceType);
            add(r.Interaction.Id); add(r.Phase); add(r.Decision.Permitted ? 1 : 0); add(r.Decision.Rule); add(r.Status);
            add(r.ResourceRef); add(r.CorrelationId); add(r.Source); add(r.Purpose);
        }, ct);
}

/// <summary>The access could not be recorded, so nothing was disclosed or changed: the request fails with 503.</summary>
internal sealed class AccessNotRecordedException(Exception inner) : Exception("The access could not be recorded.", inner);
