namespace Wardline.Monitoring.Detections;

/// <summary>
/// An update or deletion of a clinical record after it was final: a diagnosis confirmed, a report
/// final, a prescription active. Tampering with a diagnosis or prescription is the silent attack on
/// care; a correction is legitimate, but it should be seen. The previous status is learned from the
/// ledger's own write entries (detail <c>status=&lt;code&gt;</c>), so a write whose resource has no
/// earlier write in the examined history (or warm-up) is not judged. The state holds the type, id and
/// status, last author and time of each watched resource whose last known status is final-like, nothing
/// else. An update by the author of the final version within a few hours of writing it is their own
/// correction (a typo fixed, a dose re-entered) and is not judged; a deletion always is. Grouped per
/// resource: the edits of one record within the grouping window are one case.
/// </summary>
internal sealed class FinalRecordChange : Detection
{
    private static readonly DetectionInfo Description = new(
        "final-record-change", "Change to a final record", Severity.High, Suppressible: false,
        "A final diagnosis, report, result, allergy, procedure or imaging record, or an active prescription, was changed or deleted by someone other than its author, or later than the author's correction period, or deleted by anyone. A changed diagnosis or prescription is how records are tampered with, so every one is shown. Judged only when an earlier write of the same record is in the examined history (its status comes from there).",
        [new DetectionParameter("own-correction-hours", 24, 0, 720,
            "an update by the author of the final version within this many hours of writing it is their own correction, not judged (0: judge every change)")]);

    private readonly Dictionary<(string Type, string Id), (string Status, string? Author, long AtMs)> _final = [];
    private long _ownCorrectionMs;

    public override DetectionInfo Info => Description;

    /// <summary>Entries known to hold a final-like status (for tests and diagnostics).</summary>
    public int Remembered => _final.Count;

    protected override void OnConfigured(DetectionSettings settings) => _ownCorrectionMs = (long)(settings["own-correction-hours"] * 3_600_000);

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (e.Kind != EntryKind.Write || e.ResourceType is not { } type || e.ResourceId is not { } id || Noun(type) is not { } noun) return;
        var status = Status(e.Detail);
        var key = (type, id);
        if (e.Event is "update" or "delete" && _final.TryGetValue(key, out var last) && e.User is { } user
            && !(e.Event == "update" && user == last.Author && e.AtMs - last.AtMs <= _ownCorrectionMs))
        {
            var previous = last.Status;
            var adjective = previous == "active" ? "an active" : "a final";
            var evidence = e.Event == "delete"
                ? $"deleted {adjective} {noun} ({type}/{id}, status {previous})"
                : $"changed {adjective} {noun} ({type}/{id}, status {previous} -> {status ?? "none"})";
            ctx.Report(this, user, e.Patient, e.AtMs, [e.Index], evidence, groupKey: $"{type}/{id}");
        }
        if (e.Event != "delete" && FinalLike(type, status) is { } final)
        {
            // The correction period runs from the author's final version, not from each later touch.
            _final[key] = _final.TryGetValue(key, out var kept) && kept.Author == e.User ? kept with { Status = final } : (final, e.User, e.AtMs);
        }
        else _final.Remove(key);
    }

    private static string? Noun(string type) => type switch
    {
        "Condition" => "diagnosis",
        "DiagnosticReport" => "report",
        "Observation" => "result",
        "MedicationRequest" => "prescription",
        "MedicationStatement" => "medication statement",
        "AllergyIntolerance" => "allergy record",
        "Procedure" => "procedure record",
        "ImagingStudy" => "imaging study",
        _ => null,
    };

    /// <summary>The status, as one shared string, when it makes the record final; null otherwise.</summary>
    private static string? FinalLike(string type, string? status) => status switch
    {
        "final" => "final",
        "amended" => "amended",
        "corrected" => "corrected",
        "confirmed" => "confirmed",
        "completed" => "completed",
        "active" when type == "MedicationRequest" => "active",
        _ => null,
    };

    /// <summary>The code of a write's "status=&lt;code&gt;" detail, null when it has none.</summary>
    internal static string? Status(string? detail)
    {
        if (detail is null) return null;
        var at = detail.StartsWith("status=", StringComparison.Ordinal) ? 0
            : detail.IndexOf(" status=", StringComparison.Ordinal) is var space and >= 0 ? space + 1 : -1;
        if (at < 0) return null;
        var start = at + "status=".Length;
        var end = detail.IndexOf(' ', start);
        var code = end < 0 ? detail[start..] : detail[start..end];
        return code.Length == 0 ? null : code;
    }
}
