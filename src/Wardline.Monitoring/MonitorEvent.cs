namespace Wardline.Monitoring;

/// <summary>The ledger entry types (docs/formats/ledger-entry.md, member <c>type</c>).</summary>
internal enum EntryKind : byte
{
    Access,
    Security,
    Write,
    System,
}

/// <summary>
/// One ledger entry as the detections see it: the entry's identifiers, with the patient as a bare id and
/// the resource split into type and id. Built by the server from <c>ledger_entries</c>' columns, by the
/// evaluation's generator, and by tests. Holds no clinical content, because entries hold none.
/// </summary>
internal sealed record MonitorEvent
{
    /// <summary>The entry's ledger index: evidence names it, and an inclusion proof is asked for it.</summary>
    public required long Index { get; init; }

    /// <summary>The entry's time, Unix milliseconds (UTC).</summary>
    public required long AtMs { get; init; }

    public required EntryKind Kind { get; init; }

    /// <summary>access: decision, outcome, request, review, explain, audit; security: the event kind (SignInFailed, ...); write: create, update, delete; system: the event.</summary>
    public string? Event { get; init; }

    /// <summary>The account the entry is about.</summary>
    public string? User { get; init; }

    /// <summary>Who caused a security or system event, when not the user.</summary>
    public string? Actor { get; init; }

    /// <summary>The patient's logical id (without "Patient/").</summary>
    public string? Patient { get; init; }

    public string? ResourceType { get; init; }

    /// <summary>The resource's logical id, without a version.</summary>
    public string? ResourceId { get; init; }

    /// <summary>The FHIR interaction: Read, VRead, Search, History, Create, Update, Delete, Bundle.</summary>
    public string? Action { get; init; }

    /// <summary>The declared purpose of use; ETREAT marks break-glass.</summary>
    public string? Purpose { get; init; }

    public bool? Permitted { get; init; }

    public string? Rule { get; init; }

    /// <summary>The HTTP status of an access outcome.</summary>
    public int? Status { get; init; }

    /// <summary>A security or system event's outcome (succeeded, failed, refused, ...).</summary>
    public string? Outcome { get; init; }

    /// <summary>A security event's identifiers and reasons; a search outcome's parameter names ("params=family,given").</summary>
    public string? Detail { get; init; }

    public string? Client { get; init; }

    public string? Source { get; init; }

    /// <summary>Ties the decisions and the outcome of one request.</summary>
    public string? Correlation { get; init; }

    public DateTimeOffset At => DateTimeOffset.FromUnixTimeMilliseconds(AtMs);

    public bool IsAccess => Kind == EntryKind.Access;

    /// <summary>A decision that let a user see or change one patient's data.</summary>
    public bool IsPermittedPatientDecision => Kind == EntryKind.Access && Permitted == true && Patient is not null && Event == "decision";
}
