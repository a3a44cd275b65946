using System.Data.Common;
using System.Text;
using Microsoft.Extensions.Logging;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Pipeline;

/// <summary>
/// Interim durable record of every decision and outcome, until the tamper-evident ledger takes
/// its place behind <see cref="IAccessRecorder"/>. Records go through the store's group commit:
/// concurrent requests share one commit, and a request's records commit in the same transaction
/// as any resource write queued before them.
/// </summary>
internal sealed class AccessLog(GroupCommitter committer, ILogger<AccessLog> logger) : IAccessRecorder
{
    public async ValueTask RecordAsync(IReadOnlyList<AccessRecord> records, CancellationToken ct)
    {
        try
        {
            await committer.RunAsync((c, tx, token) => InsertAsync(c, tx, records, token), isolated: false);
        }
        catch (Exception ex) when (ex is DbException or StoreWriteException)
        {
            Log.AccessRecordWriteFailed(logger, records.Count, ex);
            throw new AccessNotRecordedException(ex);
        }
    }

    private static async Task<int> InsertAsync(DbConnection c, DbTransaction tx, IReadOnlyList<AccessRecord> records, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        var sb = new StringBuilder("INSERT INTO access_log (at, user_name, action, res_type, res_id, phase, permitted, rule, status, resource_ref, correlation, source) VALUES ");
        for (var i = 0; i < records.Count; i++)
        {
            var r = records[i];
            sb.Append(i > 0 ? ", (" : "(");
            object?[] values =
            [
                r.At.ToUnixTimeMilliseconds(), r.User, r.Interaction.Action.ToString(), r.Interaction.ResourceType, r.Interaction.Id,
                r.Phase, r.Decision.Permitted ? 1 : 0, r.Decision.Rule, r.Status, r.ResourceRef, r.CorrelationId, r.Source,
            ];
            for (var j = 0; j < values.Length; j++)
            {
                var name = $"@a{i}_{j}";
                sb.Append(j > 0 ? ", " : "").Append(name);
                RecordStore.Add(cmd, name, values[j]);
            }
            sb.Append(')');
        }
        cmd.CommandText = sb.ToString();
        return await cmd.ExecuteNonQueryAsync(ct);
    }
}

/// <summary>The access could not be recorded, so nothing was disclosed or changed: the request fails with 503.</summary>
internal sealed class AccessNotRecordedException(Exception inner) : Exception("The access could not be recorded.", inner);
