using Microsoft.Extensions.Logging;

namespace Wardline.Server.Modules.Records;

/// <summary>
/// The Records module's diagnostic log. Identifiers only: never resource content, names, search
/// values or request bodies. This is not the audit record (that is the access log / ledger).
/// </summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1000, Level = LogLevel.Information,
        Message = "Wardline started on {Store}, schema version {SchemaVersion} ({MigrationsApplied} migrations applied now); active key-encryption key {KekId}")]
    public static partial void ServerStarted(ILogger logger, string store, int schemaVersion, int migrationsApplied, string kekId);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Keyring reloaded; active key-encryption key {KekId}")]
    public static partial void KeyringReloaded(ILogger logger, string kekId);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "Import of {File} refused with {ReasonCount} reasons ({Imported} resources imported)")]
    public static partial void ImportFileRefused(ILogger logger, string file, int reasonCount, int imported);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "An imported file hit a transaction conflict with a concurrent writer; nothing of it was written")]
    public static partial void ImportTransactionConflict(ILogger logger);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Information, Message = "Access facts computed for {Count} resources stored before they existed")]
    public static partial void FactsBackfilled(ILogger logger, int count);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Information, Message = "Re-indexed {Count} {ResourceType} resources for search parameters added since they were stored")]
    public static partial void Reindexed(ILogger logger, string resourceType, int count);
}
