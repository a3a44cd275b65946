using System.Data.Common;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Wardline.Ledger;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Ledger.Export;

/// <summary>
/// Sends the ledger to each configured target, at least once and in index order: reads the entries after
/// the target's cursor in batches, writes and flushes each batch, and advances the cursor only for batches
/// that were flushed (fsync'd, for a file) and, on TCP, then stood for the settle time on a connection the
/// SIEM had not closed. On any fault it reconnects with back-off (1 s doubling to 60 s) and sends again
/// from the cursor, so a SIEM may see an entry twice but never misses one; after a restart it resumes
/// from the stored cursor.
/// </summary>
internal sealed class SiemExporter(SqlDialect dialect, LedgerOptions options, TimeProvider time, ILogger<SiemExporter> logger) : BackgroundService
{
    internal static readonly TimeSpan Poll = TimeSpan.FromSeconds(1);
    internal static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(1);
    internal static readonly TimeSpan LastRetry = TimeSpan.FromSeconds(60);

    /// <summary>How often a server that found a target taken by another server tries again.</summary>
    private static readonly TimeSpan StandBy = TimeSpan.FromSeconds(5);

    /// <summary>A SIEM that stops reading for this long is treated as gone.</summary>
    private static readonly TimeSpan WriteTimeout = TimeSpan.FromSeconds(30);

    private readonly string _host = SiemFormat.HostName(Dns.GetHostName());

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.Exports.Count == 0) return;
        await Task.Yield();
        await Task.WhenAll(options.Exports.Select(t => RunAsync(t, stoppingToken)));
    }

    private async Task RunAsync(LedgerExportOptions target, CancellationToken stop)
    {
        var name = target.Name!;
        var retry = FirstRetry;
        var acknowledged = -1L;
        var standingBy = false;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await using var cursor = await ExportCursor.OpenAsync(dialect, name, time, stop);
                if (cursor is null)
                {
                    if (!standingBy) ExportLog.StandingBy(logger, name);
                    standingBy = true;
                    await Task.Delay(StandBy, time, stop);
                    continue;
                }
                standingBy = false;
                acknowledged = cursor.Acknowledged;
                await using var sink = await OpenSinkAsync(target, stop);
                ExportLog.Started(logger, name, cursor.Acknowledged + 1);
                await PumpAsync(target, cursor, sink, () =>
                {
                    retry = FirstRetry;
                    acknowledged = cursor.Acknowledged;
                }, stop);
                return;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is SocketException or IOException or DbException or OperationCanceledException or AuthenticationException)
            {
                ExportLog.Fault(logger, name, ex.Message, acknowledged, retry.TotalSeconds);
            }
            catch (Exception ex)
            {
                ExportLog.Failed(logger, name, acknowledged, retry.TotalSeconds, ex);
            }
            try
            {
                await Task.Delay(retry, time, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            retry = retry * 2 < LastRetry ? retry * 2 : LastRetry;
        }
    }

    private static async Task<IExportSink> OpenSinkAsync(LedgerExportOptions target, CancellationToken ct)
    {
        if (target.Transport == "file") return FileExportSink.Open(target.Path!);
        if (!LedgerExportOptions.TryParseAddress(target.Address, out var host, out var port))
            throw new InvalidOperationException("The address was validated at start.");
        return await TcpExportSink.ConnectAsync(host, port, target.Transport == "tls" ? SiemTls.ClientOptions(target.Tls, host) : null, ct);
    }

    /// <summary>Sends until stopped or until the sink or the database fails (the caller reconnects).</summary>
    private async Task PumpAsync(LedgerExportOptions target, ExportCursor cursor, IExportSink sink, Action acknowledged, CancellationToken stop)
    {
        var jsonl = target.Format == "jsonl";
        var sent = cursor.Acknowledged;
        // Flushed batches waiting out the settle time: the last index of each and when it was flushed.
        var unsettled = new Queue<(long Last, long At)>();
        try
        {
            while (true)
            {
                await SettleAsync(cursor, sink, unsettled, all: false, acknowledged, stop);
                var batch = await cursor.ReadAsync(sent, target.BatchSize, stop);
                if (batch.Count == 0)
                {
                    if (!sink.IsOpen()) throw new IOException("the SIEM closed the connection");
                    var wait = unsettled.TryPeek(out var oldest) ? sink.Settle - time.GetElapsedTime(oldest.At) : Poll;
                    await Task.Delay(wait < TimeSpan.FromMilliseconds(10) ? TimeSpan.FromMilliseconds(10) : wait > Poll ? Poll : wait, time, stop);
                    continue;
                }
                using (var timeout = new CancellationTokenSource(WriteTimeout))
                {
                    foreach (var row in batch)
                    {
                        var bytes = jsonl ? SiemFormat.JsonLine(row.Index, row.Bytes) : SiemFormat.Frame(SiemFormat.Syslog(row.Index, LedgerEntry.Decode(row.Bytes), _host));
                        await sink.WriteAsync(bytes, timeout.Token);
                    }
                    await sink.FlushAsync(timeout.Token);
                }
                sent = batch[^1].Index;
                unsettled.Enqueue((sent, time.GetTimestamp()));
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested && unsettled.Count > 0)
        {
            // Stopping: the last batches get their settle time (bounded), so a restart sends few entries again.
            var wait = sink.Settle - time.GetElapsedTime(unsettled.Last().At);
            try
            {
                if (wait > TimeSpan.Zero) await Task.Delay(wait > Poll ? Poll : wait, time, CancellationToken.None);
                await SettleAsync(cursor, sink, unsettled, all: true, acknowledged, CancellationToken.None);
            }
            catch (Exception ex) when (ex is IOException or DbException)
            {
                // Not acknowledged: sent again after the restart.
            }
            throw;
        }
    }

    /// <summary>Acknowledges the batches that have stood their settle time (or all, when stopping) on a connection still open.</summary>
    private async Task SettleAsync(ExportCursor cursor, IExportSink sink, Queue<(long Last, long At)> unsettled, bool all, Action acknowledged, CancellationToken ct)
    {
        if (unsettled.Count == 0) return;
        if (!sink.IsOpen()) throw new IOException("the SIEM closed the connection");
        long? upTo = null;
        while (unsettled.TryPeek(out var batch) && (all || time.GetElapsedTime(batch.At) >= sink.Settle))
        {
            upTo = batch.Last;
            unsettled.Dequeue();
        }
        if (upTo is not { } index) return;
        await cursor.AcknowledgeAsync(index, ct);
        acknowledged();
        ExportLog.Acknowledged(logger, target: cursor.Name, index);
    }
}
