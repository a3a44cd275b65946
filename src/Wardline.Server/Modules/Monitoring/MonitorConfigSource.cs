using Microsoft.Extensions.Logging;
using Wardline.Monitoring;
using Wardline.Server.Pipeline;

namespace Wardline.Server.Modules.Monitoring;

/// <summary>
/// The monitoring configuration in force: the file at <see cref="MonitoringOptions.ConfigPath"/> (or the built-in one),
/// reloaded when its last-write time changes. A file with a problem is refused whole, with the parser's positioned
/// message, recorded as MonitorConfigRejected; the previous configuration stays in force. A good one is recorded as
/// MonitorConfigLoaded. Thread-safe: readers take <see cref="Current"/>, one checker at a time reloads.
/// </summary>
internal sealed class MonitorConfigSource(MonitoringOptions options, IAccessRecorder recorder, TimeProvider time, ILogger<MonitorConfigSource> logger) : IDisposable
{
    private readonly SemaphoreSlim _check = new(1, 1);
    private volatile MonitorConfig? _current;
    private DateTime _seen = DateTime.MinValue;
    private long _seenLength = -1;
    private volatile string? _error;

    /// <summary>Where the configuration comes from: the file's path, or "built in".</summary>
    public string Path => options.ConfigPath ?? "built in";

    /// <summary>The configuration in force (the built-in one until a file has been loaded).</summary>
    public MonitorConfig Current => _current ?? MonitorConfig.Default;

    /// <summary>Why the latest edit of the file was refused, while that edit stays on disk; null when the file in force is the file on disk.</summary>
    public string? LastError => _error;

    /// <summary>Changed after a new configuration is loaded.</summary>
    public int Generation { get; private set; }

    /// <summary>Loads the configuration if the file changed since the last check; true when a new one is now in force.</summary>
    public async Task<bool> CheckAsync(CancellationToken ct)
    {
        await _check.WaitAsync(ct);
        try
        {
            if (options.ConfigPath is not { } path)
            {
                if (_current is not null) return false;
                // The built-in configuration is part of this Wardline's version, which the ledger records at start.
                _current = MonitorConfig.Default;
                Generation++;
                return true;
            }
            var info = new FileInfo(path);
            info.Refresh();
            var stamp = info.Exists ? info.LastWriteTimeUtc : DateTime.MinValue;
            var length = info.Exists ? info.Length : -1;
            if (_current is not null && stamp == _seen && length == _seenLength) return false;
            _seen = stamp;
            _seenLength = length;
            MonitorConfig config;
            try
            {
                if (!info.Exists) throw new MonitorConfigException($"{path}: the file does not exist");
                config = MonitorConfig.Parse(await File.ReadAllTextAsync(path, ct), path);
            }
            catch (Exception ex) when (ex is MonitorConfigException or IOException or UnauthorizedAccessException)
            {
                var problem = ex is MonitorConfigException ? ex.Message : $"{path}: the file cannot be read ({ex.GetType().Name})";
                _error = problem;
                MonitoringLog.ConfigRejected(logger, problem);
                await recorder.RecordAsync(new SecurityEvent(time.GetUtcNow(), SecurityEventKind.MonitorConfigRejected, null, "monitor", "refused", problem, null, null), ct);
                if (_current is null)
                {
                    // Nothing in force yet: the built-in configuration runs until the file is mended.
                    _current = MonitorConfig.Default;
                    Generation++;
                    return true;
                }
                return false;
            }
            _error = null;
            if (_current is { } old && old.Fingerprint == config.Fingerprint) return false;
            await LoadedAsync(config, ct);
            return true;
        }
        finally
        {
            _check.Release();
        }
    }

    private async Task LoadedAsync(MonitorConfig config, CancellationToken ct)
    {
        var on = config.Detections.Values.Count(d => d.Enabled);
        // Recorded before it is in force: no alert names a configuration the ledger does not show being loaded.
        await recorder.RecordAsync(new SecurityEvent(time.GetUtcNow(), SecurityEventKind.MonitorConfigLoaded, null, "monitor", "loaded",
            $"{Path} fingerprint {config.Fingerprint}, {on} detections on", null, null), ct);
        _current = config;
        Generation++;
        MonitoringLog.ConfigLoaded(logger, Path, config.Fingerprint, on);
    }

    public void Dispose() => _check.Dispose();
}
