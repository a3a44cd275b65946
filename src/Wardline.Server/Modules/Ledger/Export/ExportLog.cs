using Microsoft.Extensions.Logging;

namespace Wardline.Server.Modules.Ledger.Export;

/// <summary>The exporter's messages: target names and index numbers only, never an entry's content.</summary>
internal static partial class ExportLog
{
    [LoggerMessage(EventId = 4101, Level = LogLevel.Information, Message = "Ledger export {Target}: connected, sending from index {Next}")]
    public static partial void Started(ILogger logger, string target, long next);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Warning, Message = "Ledger export {Target}: {Error}; acknowledged up to index {Acknowledged}, retrying in {Seconds} s")]
    public static partial void Fault(ILogger logger, string target, string error, long acknowledged, double seconds);

    [LoggerMessage(EventId = 4103, Level = LogLevel.Error, Message = "Ledger export {Target}: unexpected failure; acknowledged up to index {Acknowledged}, retrying in {Seconds} s")]
    public static partial void Failed(ILogger logger, string target, long acknowledged, double seconds, Exception exception);

    [LoggerMessage(EventId = 4104, Level = LogLevel.Information, Message = "Ledger export {Target}: another server holds it; standing by")]
    public static partial void StandingBy(ILogger logger, string target);

    [LoggerMessage(EventId = 4105, Level = LogLevel.Debug, Message = "Ledger export {Target}: acknowledged up to index {Acknowledged}")]
    public static partial void Acknowledged(ILogger logger, string target, long acknowledged);
}
