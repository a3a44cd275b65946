using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Pipeline;

/// <summary>
/// Interim durable record of every decision and outcome, until the tamper-evident ledger takes
/// its place behind <see cref="IAccessRecorder"/>. Concurrent requests are group-committed: one
/// writer drains everything queued, commits it in one transaction, then releases all waiters,
/// so durability costs one commit per group rather than one per request.
/// </summary>
internal sealed class AccessLog(SqlDialect dialect) : BackgroundService, IAccessRecorder
{
    private const int MaxGroup = 512;

    private readonly Channel<(AccessRecord Record, TaskCompletionSource Done)> _queue =
        Channel.CreateUnbounded<(AccessRecord, TaskCompletionSource)>(new UnboundedChannelOptions { SingleReader = true });

    public async ValueTask RecordAsync(AccessRecord record, CancellationToken ct)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_queue.Writer.TryWrite((record, done)))
        {
            throw new InvalidOperationException("The access record is closed; the server is stopping.");
        }
        // Not cancellable on purpose: once queued, the record is written whether or not the client waits.
        await done.Task;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var group = new List<(AccessRecord Record, TaskCompletionSource Done)>(MaxGroup);
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync(CancellationToken.None))
        {
            while (group.Count < MaxGroup && reader.TryRead(out var item))
            {
                group.Add(item);
            }
            try
            {
                await WriteAsync(group);
                foreach (var (_, done) in group) done.TrySetResult();
            }
            catch (Exception ex)
            {
                // The waiting requests fail: nothing is disclosed without its record.
                foreach (var (_, done) in group) done.TrySetException(new InvalidOperationException("The access could not be recorded.", ex));
            }
            group.Clear();
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _queue.Writer.TryComplete();
        await base.StopAsync(cancellationToken);
    }

    private async Task WriteAsync(List<(AccessRecord Record, TaskCompletionSource Done)> group)
    {
        await using var gate = await dialect.EnterWriteAsync(CancellationToken.None);
        await using var c = await dialect.OpenAsync(CancellationToken.None);
        await using var tx = await dialect.BeginWriteTransactionAsync(c, CancellationToken.None);
        foreach (var chunk in group.Chunk(64))
        {
            await using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            var sb = new StringBuilder("INSERT INTO access_log (at, user_name, action, res_type, res_id, phase, permitted, rule, status, resource_ref, correlation, source) VALUES ");
            for (var i = 0; i < chunk.Length; i++)
            {
                var r = chunk[i].Record;
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
            await cmd.ExecuteNonQueryAsync(CancellationToken.None);
        }
        await tx.CommitAsync(CancellationToken.None);
    }
}
