using Microsoft.Extensions.Logging;

namespace Wardline.Server.Pipeline;

/// <summary>
/// The FHIR pipeline's diagnostic log. Identifiers only (action, resource type, correlation id):
/// never resource content, names, search values or request bodies.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 2000, Level = LogLevel.Error, Message = "Access records could not be written ({RecordCount} records); the request fails without disclosing anything")]
    public static partial void AccessRecordWriteFailed(ILogger logger, int recordCount, Exception exception);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "Transaction conflict on {Action} {ResourceType} (correlation {CorrelationId}); nothing was written")]
    public static partial void TransactionConflict(ILogger logger, FhirAction action, string? resourceType, string correlationId);
}
