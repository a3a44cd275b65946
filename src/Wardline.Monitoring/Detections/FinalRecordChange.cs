namespace Wardline.Monitoring.Detections;

/// <summary>
/// An update or deletion of a clinical record after it was final: a diagnosis confirmed, a report
/// final, a prescription active. Tampering with a diagnosis or prescription is the silent attack on
/// care; a correction is legitimate, but it should be seen. The previous status is learned from the
/// ledger's own write entries (detail <c>status=&lt;code&gt;</c>), so a write whose resource has no
/// earlier write in the examined history (or warm-up) is not judged. The state holds the type, id and
/// status of each watched resource whose last known status is final-like, nothing else. Grouped per
/// resource: the edits of one record within the grouping window are one case.
/// </summary>
internal sealed class FinalRecordChange : Detection
{
    private static readonly DetectionInfo Description = new(
        "final-record-change", "Change to a final record", Severity.High, Suppressible: false,
        "A final diagnosis, report, result, allergy, procedure or imaging record, or an active prescription, was changed or deleted. Corrections happen, but a changed diagnosis or prescription is also how records are tampered with, so every one is shown. Judged only when an earlier write of the same record is in the examined history (its status comes from there).",
        []);

    private readonly Dictionary<(string Type, string Id), string> _final = [];

    public override DetectionInfo Info => Description;

    /// <summary>Entries known to hold a final-like status (for tests and diagnostics).</summary>
    public int Remembered => _final.Count;

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (e.Kind != EntryKind.Write || e.ResourceType is not { } type || e.ResourceId is not { } id || Noun(type) is not { } noun) return;
        var status = Status(e.Detail);
        var key = (type, id);
        if (e.Event is "update" or "delete" && _final.TryGetValue(key, out var previous) && e.User is { } user)
        {
            var adjective = previous == "active" ? "an active" : "a final";
            var evidence = e.Event == "delete"
                ? $"deleted {adjective} {noun} ({type}/{id}, status {previous})"
                : $"changed {adjective} {noun} ({type}/{id}, status {previous} -> {status ?? "none"})";
            ctx.Report(this, user, e.Patient, e.AtMs, [e.Index], evidence, groupKey: $"{type}/{id}");
        }
        if (e.Event != "delete" && FinalLike(type, status) is { } final) _final[key] = final;
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
