using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Wardline.Monitoring;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Monitoring;

/// <summary>What the streaming detector is doing, for GET /monitor/status and the console.</summary>
internal sealed record MonitorStatus(
    bool Enabled,
    bool Running,
    bool Leader,
    long? Cursor,
    long LedgerSize,
    long Lag,
    DateTimeOffset? LastCycle,
    string? LastCycleError,
    string ConfigPath,
    string ConfigFingerprint,
    string? ConfigError,
    IReadOnlyList<string> ActiveDetections,
    int Staff,
    int Patients,
    int Relationships,
    DateTimeOffset? DirectoryLoaded);

/// <summary>
/// Streaming detection: examines new ledger entries as they commit and records what the detections find. The cursor
/// (monitor_state 'stream') is the last index examined and moves in the same transaction as the alerts, so a crash
/// neither loses nor repeats a finding; on first start it is the ledger's size (history is for replays). The engine
/// warms on <see cref="MonitoringOptions.WarmupDays"/> of entries before the cursor, so baselines hold from the first
/// entry. The organisation model is reloaded every minute, and sooner (at most every 5 s) after entries that change
/// it. A failing cycle is logged and retried; it never stops the server. With several servers on one PostgreSQL,
/// one runs it (an advisory lock), the others wait.
/// </summary>
internal sealed class MonitorService(
    MonitoringOptions options, AccessOptions access, MonitorConfigSource configs, DirectoryLoader loader, AlertStore alerts,
    MonitorBlocks blocks, SqlDialect dialect, TimeProvider time, ILogger<MonitorService> logger) : BackgroundService
{
    private static readonly TimeSpan DirectoryMaxAge = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan DirectoryMinAge = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ConfigCheckEvery = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan BlocksEvery = TimeSpan.FromSeconds(1);

    /// <summary>Monitor blocks built at most each <see cref="BlocksEvery"/>: a catch-up of history costs a few percent of a core.</summary>
    internal const int BlocksAtOnce = 4;

    private static readonly HashSet<string> DirectoryTypes = new(StringComparer.Ordinal)
    {
        "Encounter", "CareTeam", "EpisodeOfCare", "Appointment", "ServiceRequest", "Patient", "Practitioner",
    };

    private MonitorEngine? _engine;
    private OrgDirectory _directory = OrgDirectory.Empty;
    private DateTimeOffset? _directoryAt;
    private bool _directoryStale;
    private long _coveredBelow;
    private long? _cursor;
    private long _ledgerSize;
    private DateTimeOffset? _lastCycle;
    private string? _lastError;
    private bool _leader;
    private bool _running;
    private DateTimeOffset _lastConfigCheck = DateTimeOffset.MinValue;

    public MonitorStatus Status
    {
        get
        {
            var config = configs.Current;
            var directory = _directory;
            return new MonitorStatus(true, _running, _leader, _cursor, _ledgerSize, _cursor is { } c ? Math.Max(0, _ledgerSize - 1 - c) : _ledgerSize, _lastCycle, _lastError,
                configs.Path, config.Fingerprint, configs.LastError,
                _engine?.ActiveDetections ?? [.. config.Detections.Values.Where(d => d.Enabled).Select(d => d.Id).Order(StringComparer.Ordinal)],
                directory.StaffCount, directory.PatientCount, directory.RelationshipCount, _directoryAt);
        }
    }

    /// <summary>The time zone working hours are judged in when the configuration names none.</summary>
    internal TimeZoneInfo DefaultZone => Zone(access);

    internal static TimeZoneInfo Zone(AccessOptions access)
    {
        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(access.TimeZone);
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            return TimeZoneInfo.Utc;
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var leader = await LeaderLock.TryTakeAsync(dialect, "wardline.monitor", stoppingToken);
                if (leader is null)
                {
                    if (_leader || !_running) MonitoringLog.NotLeader(logger);
                    _leader = false;
                    _running = true;
                    await Task.Delay(TimeSpan.FromSeconds(5), time, stoppingToken);
                    continue;
                }
                _leader = true;
                _running = true;
                // Monitor blocks are built beside the detection, on a loop of their own, so no entry waits for them.
                using var blocksStop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                var building = BuildBlocksAsync(blocksStop.Token);
                try
                {
                    await RunAsync(stoppingToken);
                }
                finally
                {
                    await blocksStop.CancelAsync();
                    await building;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Whatever failed (the database, a detection's bug), the next attempt starts afresh: the engine is rebuilt
                // and warmed from the committed cursor, so nothing is examined twice or skipped.
                _lastError = ex.GetType().Name;
                MonitoringLog.CycleFailed(logger, _cursor ?? -1, ex.GetType().Name, ex);
                _engine = null;
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(2), time, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task RunAsync(CancellationToken ct)
    {
        await configs.CheckAsync(ct);
        _lastConfigCheck = time.GetUtcNow();
        var generation = configs.Generation;
        await ReloadDirectoryAsync(ct);
        _ledgerSize = await LedgerEvents.SizeAsync(dialect, ct);
        var cursor = await alerts.CursorAsync(ct) ?? _ledgerSize - 1;
        _cursor = cursor;
        var warmed = await WarmAsync(cursor, ct);
        MonitoringLog.Started(logger, cursor, warmed);
        var findings = new List<Finding>();
        while (!ct.IsCancellationRequested)
        {
            var now = time.GetUtcNow();
            if (now - _lastConfigCheck >= ConfigCheckEvery)
            {
                _lastConfigCheck = now;
                await configs.CheckAsync(ct);
                if (configs.Generation != generation)
                {
                    // A new configuration: a new engine, warmed again on the history before the cursor.
                    generation = configs.Generation;
                    await WarmAsync(_cursor!.Value, ct);
                }
            }
            if (_directoryStale)
            {
                // Entries after a change to the organisation model wait for a model that includes it (at most 5 s), so a
                // record created and opened at once is judged with the record known; one reload covers all that waited.
                var wait = DirectoryMinAge - (now - _directoryAt!.Value);
                if (wait > TimeSpan.Zero) await Task.Delay(wait, time, ct);
                await ReloadDirectoryAsync(ct);
                _engine!.Directory = _directory;
            }
            else if (_directoryAt is { } loaded && now - loaded >= DirectoryMaxAge)
            {
                await ReloadDirectoryAsync(ct);
                _engine!.Directory = _directory;
            }
            var batch = await LedgerEvents.ReadAsync(dialect, _cursor!.Value, LedgerEvents.Batch, ct);
            _lastCycle = time.GetUtcNow();
            if (batch.Count == 0)
            {
                _ledgerSize = await LedgerEvents.SizeAsync(dialect, ct);
                _lastError = null;
                await Task.Delay(TimeSpan.FromMilliseconds(options.PollMilliseconds), time, ct);
                continue;
            }
            // The model holds every change committed before its load (entries below _coveredBelow); the first later
            // change ends this batch, and what follows it is examined after the next reload.
            var stop = batch.Count;
            for (var i = 0; i < batch.Count; i++)
            {
                if (batch[i].Index >= _coveredBelow && ChangesDirectory(batch[i]))
                {
                    stop = i + 1;
                    _directoryStale = true;
                    break;
                }
            }
            if (stop < batch.Count) batch.RemoveRange(stop, batch.Count - stop);
            findings.Clear();
            foreach (var e in batch) _engine!.Examine(e, findings);
            var last = batch[^1].Index;
            var result = await alerts.RecordFindingsAsync(findings, _engine!.Config, "stream", last, ct);
            _cursor = last;
            _ledgerSize = Math.Max(_ledgerSize, last + 1);
            _lastError = null;
            if (result.New + result.Grouped > 0) MonitoringLog.Examined(logger, last, result.New, result.Grouped);
        }
    }

    /// <summary>Builds a fresh engine with the configuration in force and warms it on the entries of the warm-up period before the cursor.</summary>
    private async Task<long> WarmAsync(long cursor, CancellationToken ct)
    {
        _engine = new MonitorEngine(configs.Current, _directory, DefaultZone);
        if (options.WarmupDays == 0 || cursor < 0) return 0;
        var end = await LedgerEvents.TimeOfAsync(dialect, cursor, ct) ?? time.GetUtcNow().ToUnixTimeMilliseconds();
        var from = end - options.WarmupDays * 86_400_000L;
        var first = await LedgerEvents.IndexAtAsync(dialect, from, ct);
        long warmed = 0;
        await foreach (var batch in LedgerEvents.ReadPeriodAsync(dialect, first, cursor + 1, blocks, ct))
        {
            foreach (var e in batch) _engine.Warm(e);
            warmed += batch.Count;
        }
        return warmed;
    }

    /// <summary>
    /// While this server leads: packs the entries behind the ledger's edge into monitor blocks for replays and warm-ups, at most
    /// <see cref="BlocksAtOnce"/> each <see cref="BlocksEvery"/>. A failure costs only speed (it is logged and tried again); the
    /// loop ends, without throwing, when <paramref name="ct"/> is cancelled.
    /// </summary>
    private async Task BuildBlocksAsync(CancellationToken ct)
    {
        await Task.Yield();
        while (true)
        {
            try
            {
                await blocks.BuildAsync(BlocksAtOnce, ct);
                await Task.Delay(BlocksEvery, time, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                MonitoringLog.BlockBuildFailed(logger, ex.GetType().Name, ex);
                try
                {
                    await Task.Delay(BlocksEvery, time, ct);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task ReloadDirectoryAsync(CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        // Read the ledger's size first: every change recorded below it is committed, so the model loaded next holds it.
        var size = await LedgerEvents.SizeAsync(dialect, ct);
        _directory = await loader.LoadAsync(ct);
        _coveredBelow = size;
        _directoryAt = time.GetUtcNow();
        _directoryStale = false;
        MonitoringLog.DirectoryLoaded(logger, _directory.StaffCount, _directory.PatientCount, _directory.RelationshipCount, clock.ElapsedMilliseconds);
    }

    private static bool ChangesDirectory(MonitorEvent e) => e.Kind switch
    {
        EntryKind.Write => e.ResourceType is { } t && DirectoryTypes.Contains(t),
        EntryKind.Security => e.Event is { } ev && ev.StartsWith("Account", StringComparison.Ordinal),
        _ => false,
    };
}
