using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Wardline.Policy;
using Wardline.Server.Pipeline;

namespace Wardline.Server.Modules.Access;

/// <summary>
/// The policy in force. Loaded at start (a bad file stops start-up with its file, line and column);
/// afterwards the file is checked for changes every few seconds, and a changed file that does not
/// parse is refused while the previous policy stays in force. Every load and refusal is a security event.
/// </summary>
internal sealed class PolicyHolder : BackgroundService
{
    private const string BuiltInName = "Wardline.Server.Modules.Access.hospital-policy.yaml";

    private readonly string? _path;
    private readonly IAccessRecorder _recorder;
    private readonly TimeProvider _time;
    private readonly ILogger<PolicyHolder> _logger;
    private volatile Policy.Policy _current;
    private DateTime _loadedWriteTime;

    public PolicyHolder(AccessOptions options, string? dataDirectory, IAccessRecorder recorder, TimeProvider time, ILogger<PolicyHolder> logger)
    {
        _recorder = recorder;
        _time = time;
        _logger = logger;
        _path = options.PolicyPath ?? (dataDirectory is null ? null : Path.Combine(dataDirectory, "policy.yaml"));
        if (_path is not null && options.PolicyPath is null && !File.Exists(_path))
        {
            // First start of an embedded store: the built-in policy becomes the institution's file to read and change.
            Directory.CreateDirectory(Path.GetDirectoryName(_path)!);
            File.WriteAllText(_path, BuiltInText());
        }
        if (_path is null)
        {
            _current = Policy.Policy.Parse(BuiltInText(), "built-in hospital-policy.yaml");
        }
        else
        {
            _loadedWriteTime = File.GetLastWriteTimeUtc(_path);
            _current = Policy.Policy.Load(_path);
        }
        Source = _path ?? "built-in";
    }

    public Policy.Policy Current => _current;

    /// <summary>Where the policy comes from: its file, or "built-in".</summary>
    public string Source { get; }

    public static string BuiltInText()
    {
        using var stream = typeof(PolicyHolder).Assembly.GetManifestResourceStream(BuiltInName)
            ?? throw new InvalidOperationException("The built-in policy is missing from the build.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>Loads the file again now. Returns the problem if it was refused (the previous policy stays).</summary>
    public async Task<string?> ReloadAsync(string actor, CancellationToken ct)
    {
        if (_path is null) return null;
        var writeTime = File.GetLastWriteTimeUtc(_path);
        try
        {
            var next = Policy.Policy.Load(_path);
            _loadedWriteTime = writeTime;
            if (next.Digest == _current.Digest) return null;
            _current = next;
            Log.PolicyLoaded(_logger, _path, next.Digest, next.Rules.Count);
            await _recorder.RecordAsync(Event(SecurityEventKind.PolicyLoaded, actor, "loaded", $"{_path} sha256={next.Digest} rules={next.Rules.Count}"), ct);
            return null;
        }
        catch (Exception ex) when (ex is PolicyException or IOException or UnauthorizedAccessException)
        {
            _loadedWriteTime = writeTime;
            Log.PolicyRejected(_logger, ex.Message);
            await _recorder.RecordAsync(Event(SecurityEventKind.PolicyRejected, actor, "refused", ex.Message), ct);
            return ex.Message;
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_path is null) return;
        await _recorder.RecordAsync(Event(SecurityEventKind.PolicyLoaded, "server", "loaded",
            $"{_path} sha256={_current.Digest} rules={_current.Rules.Count}"), stoppingToken);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(2), _time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                if (File.Exists(_path) && File.GetLastWriteTimeUtc(_path) != _loadedWriteTime)
                    await ReloadAsync("file-watch", stoppingToken);
            }
            catch (AccessNotRecordedException)
            {
                // The store is unavailable; the next tick tries again.
            }
        }
    }

    private SecurityEvent Event(SecurityEventKind kind, string actor, string outcome, string detail) =>
        new(_time.GetUtcNow(), kind, null, actor, outcome, detail, null, null);
}
