using Microsoft.Extensions.Logging;
using Wardline.Ledger;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Pipeline;

namespace Wardline.Server.Modules.Ledger;

/// <summary>
/// The ledger behind <see cref="IAccessRecorder"/>: every access decision and outcome and every security
/// event becomes an entry. Entries are encoded and hashed on the caller's thread, then staged into the
/// store's group commit: concurrent requests share one transaction, one append of the tree and one fsync,
/// and each call completes only once its entries are committed.
/// </summary>
internal sealed class LedgerRecorder(GroupCommitter committer, ILogger<LedgerRecorder> logger) : IAccessRecorder
{
    private readonly Lock _lock = new();
    private List<LedgerRow> _pending = [];
    private Task<Audited<int>>? _flush;

    public async ValueTask RecordAsync(IReadOnlyList<AccessRecord> records, CancellationToken ct)
    {
        var rows = new List<LedgerRow>(records.Count);
        foreach (var r in records) rows.Add(new LedgerRow(ToEntry(r)));
        await StageAsync(rows);
    }

    public async ValueTask RecordAsync(SecurityEvent e, CancellationToken ct) => await StageAsync([new LedgerRow(ToEntry(e))]);

    /// <summary>A system event (ledger started, key rotated, backup taken, ...), recorded like any other.</summary>
    public async ValueTask RecordSystemAsync(string @event, string actor, string outcome, string? detail, CancellationToken ct) =>
        await StageAsync([new LedgerRow(new LedgerEntry { Type = "system", At = DateTimeOffset.UtcNow, Event = @event, Actor = actor, Outcome = outcome, Detail = detail })]);

    /// <summary>
    /// Adds the rows to the pending batch and waits for the flush that carries them. One flush unit per
    /// group commit stages every row queued so far, so the writer spends one unit per group, not per request.
    /// </summary>
    private async Task StageAsync(List<LedgerRow> rows)
    {
        Task<Audited<int>> flush;
        lock (_lock)
        {
            _pending.AddRange(rows);
            flush = _flush ??= committer.RunAsync(Flush, isolated: false);
        }
        try
        {
            await flush;
        }
        catch (Exception ex) when (ex is StoreWriteException or LedgerCorruptException or System.Data.Common.DbException)
        {
            Log.AccessRecordWriteFailed(logger, rows.Count, ex);
            throw new AccessNotRecordedException(ex);
        }
    }

    private Task<int> Flush(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction tx, List<LedgerRow> entries, CancellationToken ct)
    {
        lock (_lock)
        {
            entries.AddRange(_pending);
            _pending = [];
            _flush = null;
        }
        return Task.FromResult(entries.Count);
    }

    internal static LedgerEntry ToEntry(AccessRecord r)
    {
        var i = r.Interaction;
        var resource = r.ResourceRef
            ?? (i.ResourceType is null ? null : i.Id is null ? i.ResourceType : r.Version is { } v ? $"{i.ResourceType}/{i.Id}/_history/{v}" : $"{i.ResourceType}/{i.Id}");
        var patient = r.Patient ?? (i.ResourceType == "Patient" && i.Id is not null ? "Patient/" + i.Id : null);
        return new LedgerEntry
        {
            Type = "access",
            At = r.At,
            Event = r.Phase,
            User = Text(r.User),
            Roles = Texts(r.Roles),
            Departments = Texts(r.Departments),
            Client = Text(r.Client),
            Patient = patient,
            Resource = resource,
            Action = i.Action.ToString(),
            Purpose = r.Purpose,
            Permitted = r.Decision.Permitted,
            Rule = r.Decision.Rule,
            Reason = Text(r.Decision.Reason),
            Status = r.Status,
            Detail = r.Detail,
            Source = Text(r.Source),
            Correlation = r.CorrelationId,
        };
    }

    /// <summary>
    /// Text from outside (a user name typed at sign-in, a reason) may hold a lone UTF-16 surrogate, which has no
    /// UTF-8 form; the entry format refuses it rather than store it lossily, so it is replaced here by U+FFFD.
    /// </summary>
    private static string? Text(string? s) =>
        s is null || s.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') < 0 ? s : System.Text.Encoding.UTF8.GetString(System.Text.Encoding.UTF8.GetBytes(s));

    private static IReadOnlyList<string>? Texts(IReadOnlyList<string>? values) =>
        values is null || values.All(v => Text(v) == v) ? values : [.. values.Select(v => Text(v)!)];

    internal static LedgerEntry ToEntry(SecurityEvent e) => new()
    {
        Type = "security",
        At = e.At,
        Event = e.Kind.ToString(),
        User = Text(e.User),
        Actor = Text(e.Actor),
        Outcome = Text(e.Outcome),
        Detail = Text(e.Detail),
        Source = Text(e.Source),
        Correlation = e.CorrelationId,
    };
}
