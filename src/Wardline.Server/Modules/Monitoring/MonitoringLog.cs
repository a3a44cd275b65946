using Microsoft.Extensions.Logging;

namespace Wardline.Server.Modules.Monitoring;

/// <summary>Monitoring's log messages (event ids 6001-6099): identifiers, counts and positions only, never names, notes or evidence.</summary>
internal static partial class MonitoringLog
{
    [LoggerMessage(EventId = 6001, Level = LogLevel.Information, Message = "Monitoring configuration {Path} loaded (fingerprint {Fingerprint}, {Detections} detections on)")]
    public static partial void ConfigLoaded(ILogger logger, string path, string fingerprint, int detections);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Error, Message = "Monitoring configuration refused; the previous one stays in force: {Problem}")]
    public static partial void ConfigRejected(ILogger logger, string problem);

    [LoggerMessage(EventId = 6003, Level = LogLevel.Information, Message = "Streaming detection started at ledger index {Cursor} after warming on {Warmed} entries")]
    public static partial void Started(ILogger logger, long cursor, long warmed);

    [LoggerMessage(EventId = 6004, Level = LogLevel.Error, Message = "A monitoring cycle after ledger index {Cursor} failed ({Error}); it is retried")]
    public static partial void CycleFailed(ILogger logger, long cursor, string error, Exception exception);

    [LoggerMessage(EventId = 6005, Level = LogLevel.Information, Message = "Entries up to {Cursor} examined: {New} new alerts, {Grouped} findings grouped into open alerts")]
    public static partial void Examined(ILogger logger, long cursor, int @new, int grouped);

    [LoggerMessage(EventId = 6006, Level = LogLevel.Debug, Message = "Organisation model reloaded: {Staff} staff, {Patients} patients, {Relationships} relationships in {Ms} ms")]
    public static partial void DirectoryLoaded(ILogger logger, int staff, int patients, int relationships, long ms);

    [LoggerMessage(EventId = 6007, Level = LogLevel.Information, Message = "Replay of {From} .. {To} by {Actor}: {Entries} entries examined, {New} new alerts")]
    public static partial void Replayed(ILogger logger, DateTimeOffset from, DateTimeOffset to, string actor, long entries, int @new);

    [LoggerMessage(EventId = 6008, Level = LogLevel.Information, Message = "Another server runs streaming detection on this store; this one waits")]
    public static partial void NotLeader(ILogger logger);

    [LoggerMessage(EventId = 6009, Level = LogLevel.Warning, Message = "Monitor block {Block} does not verify against the ledger (changed, made without this keyring, or from another history); its entries are read from the ledger's rows")]
    public static partial void BlockRejected(ILogger logger, long block);

    [LoggerMessage(EventId = 6010, Level = LogLevel.Error, Message = "Monitor block {Block} verifies but does not decode; its entries are read from the ledger's rows")]
    public static partial void BlockUndecodable(ILogger logger, long block);

    [LoggerMessage(EventId = 6011, Level = LogLevel.Warning, Message = "Monitor blocks: the ledger's entries are not contiguous at block {Block} (entry {Index}); no block is built from there")]
    public static partial void BlockGap(ILogger logger, long block, long index);

    [LoggerMessage(EventId = 6012, Level = LogLevel.Warning, Message = "Building monitor blocks failed ({Error}); detection goes on, and the blocks are tried again later")]
    public static partial void BlockBuildFailed(ILogger logger, string error, Exception exception);
}
