using Microsoft.Extensions.Logging;

namespace Wardline.Server.Modules.Backup;

internal static partial class BackupLog
{
    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "Backup {RunId} ({Kind}) to {Target} completed: entries {From}..{Size}, {Stored} objects stored ({Bytes} bytes), {Reused} reused")]
    public static partial void Completed(ILogger logger, string runId, string kind, string target, long from, long size, int stored, int reused, long bytes);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Error, Message = "Backup {RunId} to {Target} failed: {Reason}")]
    public static partial void Failed(ILogger logger, string runId, string target, string reason);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Debug, Message = "Backup {RunId}: stored {Name} ({Bytes} bytes)")]
    public static partial void SegmentStored(ILogger logger, string runId, string name, long bytes);

    [LoggerMessage(EventId = 5004, Level = LogLevel.Information, Message = "Restore drill {DrillId} {Status}: restored {Size} entries in {RestoreMs} ms, verified in {VerifyMs} ms, recovery point {RpoMs} ms old")]
    public static partial void Drill(ILogger logger, string drillId, string status, long size, long restoreMs, long verifyMs, long rpoMs);

    [LoggerMessage(EventId = 5006, Level = LogLevel.Error, Message = "Backup alert \"{Subject}\" could not be e-mailed ({Error})")]
    public static partial void AlertFailed(ILogger logger, string subject, string error);

    [LoggerMessage(EventId = 5007, Level = LogLevel.Error, Message = "A backup cycle to {Target} failed ({Error}): {Reason}")]
    public static partial void CycleFailed(ILogger logger, string target, string error, string reason);

    [LoggerMessage(EventId = 5005, Level = LogLevel.Information, Message = "Backup retention removed {Manifests} manifests and {Objects} objects from {Target}; {Locked} kept because the target holds them locked; {Unreadable} manifests could not be read and were left (while any is there, no segment is removed: it may list them)")]
    public static partial void Pruned(ILogger logger, string target, int manifests, int objects, int locked, int unreadable);

    [LoggerMessage(EventId = 5008, Level = LogLevel.Information, Message = "Backup {RunId} to {Target}: retention is running there ({Lease}), so nothing a failed run stored is reused; this run uploads afresh")]
    public static partial void NotReusing(ILogger logger, string runId, string target, string lease);

    [LoggerMessage(EventId = 5010, Level = LogLevel.Warning, Message = "Backup {RunId} to {Target}: a manifest there was passed over ({Reason}); the chain continues from the newest one this keyring signed")]
    public static partial void ManifestSkipped(ILogger logger, string runId, string target, string reason);

    [LoggerMessage(EventId = 5009, Level = LogLevel.Information, Message = "Backup retention on {Target} removed no segment: a backup is running there ({Lease}); the next prune removes them")]
    public static partial void PruneDeferred(ILogger logger, string target, string lease);

    [LoggerMessage(EventId = 5011, Level = LogLevel.Error, Message = "Restore drill {DrillId} of {Target} stopped on an unexpected error; it is recorded as failed")]
    public static partial void DrillError(ILogger logger, string drillId, string target, Exception exception);
}
