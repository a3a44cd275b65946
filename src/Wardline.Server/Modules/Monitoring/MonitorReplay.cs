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
    LedgerRecorder recorder, SqlDialect dialect, ILogger<MonitorReplay> logger) : IDisposable
{
    public const int MaxDays = 366;

    private readonly SemaphoreSlim _one = new(1, 1);

    /// <summary>Replays [<paramref name="from"/>, <paramref name="to"/>); throws <see cref="MonitorReplayRefusedException"/> for a bad period.</summary>
    public async Task<ReplayResult> RunAsync(DateTimeOffset from, DateTimeOffset to, string actor, CancellationToken ct)
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
            var engine = new MonitorEngine(config, await loader.LoadAsync(ct), MonitorService.Zone(access));
            long fromMs = from.ToUnixTimeMilliseconds(), toMs = to.ToUnixTimeMilliseconds();
            var warmFrom = fromMs - options.WarmupDays * 86_400_000L;
            long warmed = 0, examined = 0;
            int findingsCount = 0, created = 0, grouped = 0, known = 0;
            var findings = new List<Finding>();
            var after = await LedgerEvents.FirstAtAsync(dialect, warmFrom, ct) - 1;
            while (true)
            {
                var batch = await LedgerEvents.ReadAsync(dialect, after, LedgerEvents.Batch, ct, warmFrom, toMs);
                if (batch.Count == 0) break;
                findings.Clear();
                foreach (var e in batch)
                {
                    if (e.AtMs < fromMs)
                    {
                        engine.Warm(e);
                        warmed++;
                    }
                    else
                    {
                        engine.Examine(e, findings);
                        examined++;
                    }
                }
                after = batch[^1].Index;
                if (findings.Count == 0) continue;
                findingsCount += findings.Count;
                var result = await alerts.RecordFindingsAsync(findings, config, "replay", null, ct);
                created += result.New;
                grouped += result.Grouped;
                known += result.AlreadyKnown;
            }
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
