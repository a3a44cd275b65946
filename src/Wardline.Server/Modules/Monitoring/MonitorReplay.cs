using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Wardline.Monitoring;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Monitoring;

/// <summary>A replay that was not run, with the reason in words (a period that is empty, reversed or too long).</summary>
internal sealed class MonitorReplayRefusedException(string message) : Exception(message);

/// <summary>
/// Batch detection: re-examines a period of the ledger after a rule change, with a fresh engine on the configuration
/// and organisation model in force, warmed on <see cref="MonitoringOptions.WarmupDays"/> before the period exactly as
/// streaming is, so it finds what streaming would have. Findings recorded before are not raised again (alert entries
/// are keyed by detection and ledger index). The run is a system entry in the ledger ("monitor-replay"). One at a time.
/// </summary>
internal sealed class MonitorReplay(
    MonitoringOptions options, AccessOptions access, MonitorConfigSource configs, DirectoryLoader loader, AlertStore alerts,
    LedgerRecorder recorder, MonitorBlocks blocks, SqlDialect dialect, ILogger<MonitorReplay> logger) : IDisposable
{
    public const int MaxDays = 366;

    private readonly SemaphoreSlim _one = new(1, 1);

    /// <summary>Where the last run's time went (for the benchmark, bench/Wardline.Bench MonitorReplayBenchmark).</summary>
    internal ReplayTimings? LastTimings { get; private set; }

    /// <summary>Replays [<paramref name="from"/>, <paramref name="to"/>); throws <see cref="MonitorReplayRefusedException"/> for a bad period.</summary>
    public Task<ReplayResult> RunAsync(DateTimeOffset from, DateTimeOffset to, string actor, CancellationToken ct) =>
        RunAsync(from, to, actor, null, ct);

    /// <summary>As <see cref="RunAsync(DateTimeOffset, DateTimeOffset, string, CancellationToken)"/>, judging by <paramref name="directory"/> instead of the store's organisation model when given (the benchmark's synthetic hospital).</summary>
    internal async Task<ReplayResult> RunAsync(DateTimeOffset from, DateTimeOffset to, string actor, OrgDirectory? directory, CancellationToken ct)
    {
        if (to <= from) throw new MonitorReplayRefusedException("The end of the period must be after its start.");
        if (to - from > TimeSpan.FromDays(MaxDays)) throw new MonitorReplayRefusedException($"A replay covers at most {MaxDays} days; split a longer period.");
        await _one.WaitAsync(ct);
        try
        {
            var clock = Stopwatch.StartNew();
            await configs.CheckAsync(ct);
            // A configured file with a problem: the replay would run other rules than the operator wrote. Refuse.
            if (configs.LastError is { } problem) throw new MonitorReplayRefusedException(problem);
            var config = configs.Current;
            // The detections dealt out over the cores: the reading is cheap (monitor blocks), the detections are the work.
            var engine = new SplitEngine(config, directory ?? await loader.LoadAsync(ct), MonitorService.Zone(access), Math.Clamp(Environment.ProcessorCount, 1, 4));
            long fromMs = from.ToUnixTimeMilliseconds(), toMs = to.ToUnixTimeMilliseconds();
            var warmFrom = fromMs - options.WarmupDays * 86_400_000L;
            long warmed = 0, examined = 0;
            int findingsCount = 0, created = 0, grouped = 0, known = 0;
            var findings = new List<Finding>();
            long tRead = 0, tExamine = 0, tRecord = 0;
            var batches = 0;
            Task<RecordResult>? recording = null;
            void Tally(RecordResult result)
            {
                created += result.New;
                grouped += result.Grouped;
                known += result.AlreadyKnown;
            }
            try
            {
                // The period is its entries by index, between the first stamped at its start and the first stamped at its end:
                // an entry inside it whose clock jumped outside it is examined all the same, as streaming examined it.
                var warmIdx = await LedgerEvents.IndexAtAsync(dialect, warmFrom, ct);
                var fromIdx = await LedgerEvents.IndexAtAsync(dialect, fromMs, ct);
                var toIdx = await LedgerEvents.IndexAtAsync(dialect, toMs, ct);
                var rows = LedgerEvents.ReadPeriodAsync(dialect, warmIdx, toIdx, blocks, ct).GetAsyncEnumerator(ct);
                await using var rowsDisposal = rows;
                while (true)
                {
                    var t0 = Stopwatch.GetTimestamp();
                    var more = await rows.MoveNextAsync();
                    var t1 = Stopwatch.GetTimestamp();
                    tRead += t1 - t0;
                    if (!more) break;
                    var batch = rows.Current;
                    batches++;
                    findings.Clear();
                    var warming = batch[^1].Index < fromIdx ? batch.Count : batch[0].Index >= fromIdx ? 0 : batch.FindIndex(e => e.Index >= fromIdx);
                    warmed += warming;
                    examined += batch.Count - warming;
                    await engine.RunAsync(batch, fromIdx, findings);
                    var t2 = Stopwatch.GetTimestamp();
                    tExamine += t2 - t1;
                    if (findings.Count == 0) continue;
                    findingsCount += findings.Count;
                    // Findings are recorded one batch at a time and in order, as before, but while the engine examines the next batch.
                    if (recording is not null) Tally(await recording);
                    tRecord += Stopwatch.GetTimestamp() - t2;
                    recording = alerts.RecordFindingsAsync(findings, config, "replay", null, ct);
                    findings = [];
                }
            }
            catch when (recording is { IsCompleted: false })
            {
                // A failed read or a cancellation: the findings being recorded finish before the next replay may start.
                await Task.WhenAny(recording!);
                throw;
            }
            var t3 = Stopwatch.GetTimestamp();
            if (recording is not null) Tally(await recording);
            tRecord += Stopwatch.GetTimestamp() - t3;
            LastTimings = new ReplayTimings(Stopwatch.GetElapsedTime(0, tRead), Stopwatch.GetElapsedTime(0, tExamine), Stopwatch.GetElapsedTime(0, tRecord), batches);
            await recorder.RecordSystemAsync("monitor-replay", actor, "succeeded", string.Create(CultureInfo.InvariantCulture,
                $"from {from:O} to {to:O}, {examined} entries, {created} new alerts (configuration {config.Fingerprint})"), ct);
            MonitoringLog.Replayed(logger, from, to, actor, examined, created);
            return new ReplayResult(warmed, examined, findingsCount, created, grouped, known, clock.Elapsed);
        }
        finally
        {
            _one.Release();
        }
    }

    public void Dispose() => _one.Dispose();
}

/// <summary>Where a replay's time went: waiting for rows (read and decoded on the pool meanwhile), the engine, waiting for findings to be recorded as alerts (also overlapped with the engine).</summary>
internal sealed record ReplayTimings(TimeSpan Read, TimeSpan Examine, TimeSpan Record, int Batches);
