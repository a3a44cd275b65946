using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Wardline.Ledger;
using Wardline.Monitoring;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Console.Components;
using Wardline.Server.Modules.Ledger;

namespace Wardline.Server.Modules.Monitoring;

/// <summary>
/// <c>/monitor</c>: the alert queue and an alert's evidence (with inclusion proofs), review (status, assignment,
/// comments), replays, the detector's status, the detection catalogue, and per-user and per-patient access timelines.
/// For privacy and security officers (<see cref="ConsoleRoles.MonitorReviewers"/>). Every error is a ProblemDetails;
/// bad input is a 400 that writes nothing.
/// </summary>
internal static class MonitoringEndpoints
{
    public const int MaxTimelineDays = 92;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static IEndpointRouteBuilder MapMonitoring(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/monitor");

        group.MapGet("/alerts", async (HttpContext http, AlertStore alerts, AccountStore accounts) =>
        {
            if (await Allowed(http, accounts) is { } no) return no;
            var q = http.Request.Query;
            var bad = new List<string>();
            AlertStatus? status = null;
            if (Text(q, "status") is { } s && (status = AlertStatuses.Parse(s)) is null)
                bad.Add($"status must be one of new, under-review, escalated, closed-violation, closed-legitimate, not '{Clip(s)}'.");
            Severity? severity = null;
            if (Text(q, "severity") is { } sev && (severity = AlertStore.ParseSeverity(sev)) is null)
                bad.Add($"severity must be low, medium, high or critical, not '{Clip(sev)}'.");
            var from = Time(q, "from", bad);
            var to = Time(q, "to", bad);
            var open = Bool(q, "open", bad);
            var limit = Number(q, "limit", 1, AlertStore.MaxLimit, bad) ?? 100;
            var before = Number(q, "before", 1, long.MaxValue, bad);
            if (bad.Count > 0) return BadRequest(bad);
            var page = await alerts.ListAsync(new AlertQuery(status, Text(q, "detection"), Text(q, "user"), Text(q, "patient"), severity, Text(q, "assignee"),
                from, to, open ?? false, (int)limit, before), Actor(http), Source(http), http.RequestAborted);
            return Results.Json(new { alerts = page.Alerts.Select(a => AlertJson(a)), counts = page.Counts, next = page.Next }, Json);
        });

        group.MapGet("/alerts/{id}", async (HttpContext http, string id, AlertStore alerts, AccountStore accounts) =>
        {
            if (await Allowed(http, accounts) is { } no) return no;
            if (Id(id) is not { } alertId) return BadRequest([$"'{Clip(id)}' is not an alert id."]);
            var detail = await alerts.ShowAsync(alertId, Actor(http), Source(http), http.RequestAborted);
            return detail is null ? NotFound(alertId) : Results.Json(DetailJson(detail), Json);
        });

        group.MapPost("/alerts/{id}/status", async (HttpContext http, string id, AlertStore alerts, AccountStore accounts) =>
        {
            if (await Allowed(http, accounts) is { } no) return no;
            if (Id(id) is not { } alertId) return BadRequest([$"'{Clip(id)}' is not an alert id."]);
            var (body, problem) = await ReadAsync<StatusBody>(http);
            if (problem is not null) return problem;
            if (AlertStatuses.Parse(body!.Status) is not { } to)
                return BadRequest([$"status must be one of new, under-review, escalated, closed-violation, closed-legitimate, not '{Clip(body.Status ?? "")}'."]);
            return Change(await alerts.ChangeStatusAsync(alertId, to, Actor(http), body.Note, body.Revision, http.RequestAborted), alertId);
        });

        group.MapPost("/alerts/{id}/assign", async (HttpContext http, string id, AlertStore alerts, AccountStore accounts) =>
        {
            if (await Allowed(http, accounts) is { } no) return no;
            if (Id(id) is not { } alertId) return BadRequest([$"'{Clip(id)}' is not an alert id."]);
            var (body, problem) = await ReadAsync<AssignBody>(http);
            if (problem is not null) return problem;
            return Change(await alerts.AssignAsync(alertId, body!.Assignee, Actor(http), body.Revision, http.RequestAborted), alertId);
        });

        group.MapPost("/alerts/{id}/comments", async (HttpContext http, string id, AlertStore alerts, AccountStore accounts) =>
        {
            if (await Allowed(http, accounts) is { } no) return no;
            if (Id(id) is not { } alertId) return BadRequest([$"'{Clip(id)}' is not an alert id."]);
            var (body, problem) = await ReadAsync<CommentBody>(http);
            if (problem is not null) return problem;
            return Change(await alerts.CommentAsync(alertId, Actor(http), body!.Note, http.RequestAborted), alertId);
        });

        group.MapGet("/alerts/{id}/entries/{idx}/proof", async (HttpContext http, string id, string idx, AlertStore alerts, AccountStore accounts,
            TreeHeads heads, LedgerProofs proofs, AuditTrail trail) =>
        {
            if (await Allowed(http, accounts) is { } no) return no;
            if (Id(id) is not { } alertId) return BadRequest([$"'{Clip(id)}' is not an alert id."]);
            if (!long.TryParse(idx, NumberStyles.None, CultureInfo.InvariantCulture, out var index)) return BadRequest([$"'{Clip(idx)}' is not a ledger index."]);
            var detail = await alerts.GetAsync(alertId, http.RequestAborted);
            if (detail is null) return NotFound(alertId);
            if (detail.Entries.All(e => e.Index != index))
                return Results.Problem(statusCode: 404, title: "Not evidence of this alert", detail: $"Ledger entry {index} is not evidence of alert {alertId}.");
            var head = await heads.LatestAsync(http.RequestAborted);
            if (head is null || head.Size <= index)
            {
                try
                {
                    head = await heads.PublishAsync(force: true, http.RequestAborted);
                }
                catch (Exception ex) when (ex is LedgerReadOnlyException or WitnessUnavailableException)
                {
                    return Results.Problem(statusCode: 503, title: "No signed head covers the entry", detail: ex.Message);
                }
            }
            var (proof, problem) = await proofs.InclusionAsync(index, head!.Size, http.RequestAborted);
            if (proof is null) return Results.Problem(statusCode: 409, title: "No proof", detail: problem);
            var entry = await proofs.EntryAsync(index, http.RequestAborted);
            if (entry is not null && AuditTrail.PatientOf(LedgerEntry.Decode(entry)) is { } patient)
                await trail.RecordReadAsync([patient], Actor(http), Source(http), http.RequestAborted);
            return Results.Json(new
            {
                alert = alertId,
                index = proof.Index,
                treeSize = proof.Size,
                leafHash = Convert.ToHexStringLower(proof.LeafHash),
                entry = entry is null ? null : System.Text.Encoding.UTF8.GetString(entry),
                auditPath = proof.Hashes.Select(Convert.ToHexStringLower),
                rootHash = Convert.ToHexStringLower(proof.Root),
                head = new
                {
                    treeSize = head.Size,
                    rootHash = Convert.ToHexStringLower(head.Root),
                    timestamp = LedgerEntry.FormatTime(head.Timestamp),
                    keyId = head.KeyId,
                    signature = Convert.ToBase64String(head.Signature),
                },
            }, Json);
        });

        group.MapPost("/replay", async (HttpContext http, MonitorReplay replay, AccountStore accounts) =>
        {
            if (await Allowed(http, accounts) is { } no) return no;
            var (body, problem) = await ReadAsync<ReplayBody>(http);
            if (problem is not null) return problem;
            var bad = new List<string>();
            var from = ParseTime(body!.From, "from", bad);
            var to = ParseTime(body.To, "to", bad);
            if (from is null && body.From is null) bad.Add("from is required.");
            if (to is null && body.To is null) bad.Add("to is required.");
            if (bad.Count > 0) return BadRequest(bad);
            try
            {
                var r = await replay.RunAsync(from!.Value, to!.Value, "api:" + Actor(http), http.RequestAborted);
                return Results.Json(new
                {
                    entriesWarmed = r.EntriesWarmed, entriesExamined = r.EntriesExamined, findings = r.Findings, newAlerts = r.NewAlerts,
                    groupedIntoExisting = r.GroupedIntoExisting, alreadyKnown = r.AlreadyKnown, seconds = r.Elapsed.TotalSeconds,
                }, Json);
            }
            catch (MonitorReplayRefusedException ex)
            {
                return BadRequest([ex.Message]);
            }
        });

        group.MapGet("/status", async (HttpContext http, AccountStore accounts, MonitorConfigSource configs, Microsoft.Extensions.Options.IOptions<Hosting.WardlineOptions> options) =>
        {
            if (await Allowed(http, accounts) is { } no) return no;
            if (http.RequestServices.GetService<MonitorService>() is { } service) return Results.Json(service.Status, Json);
            await configs.CheckAsync(http.RequestAborted);
            var config = configs.Current;
            return Results.Json(new MonitorStatus(options.Value.Monitoring.Enabled, false, false, null, 0, 0, null, null, configs.Path, config.Fingerprint, configs.LastError,
                [.. config.Detections.Values.Where(d => d.Enabled).Select(d => d.Id).Order(StringComparer.Ordinal)], 0, 0, 0, null), Json);
        });

        group.MapGet("/detections", async (HttpContext http, AccountStore accounts, MonitorConfigSource configs) =>
        {
            if (await Allowed(http, accounts) is { } no) return no;
            await configs.CheckAsync(http.RequestAborted);
            var config = configs.Current;
            return Results.Json(new
            {
                config = new { path = configs.Path, fingerprint = config.Fingerprint, groupWindowMinutes = config.GroupWindowMinutes, repeatOffenderViolations = config.RepeatOffenderViolations, repeatOffenderWithinDays = config.RepeatOffenderWithinDays, error = configs.LastError },
                detections = Catalog.All.Select(d =>
                {
                    var settings = config.For(d.Id);
                    return new
                    {
                        id = d.Id,
                        title = d.Title,
                        description = d.Description,
                        suppressible = d.Suppressible,
                        enabled = settings.Enabled,
                        severity = AlertStore.Name(settings.Severity),
                        defaultSeverity = AlertStore.Name(d.DefaultSeverity),
                        parameters = d.Parameters.Select(p => new { name = p.Name, value = settings[p.Name], @default = p.Default, min = p.Min, max = p.Max, meaning = p.Meaning }),
                        explainedBy = config.Explanations.Where(x => x.Suppresses.Contains(d.Id)).Select(x => new { kind = x.Kind, graceDays = x.GraceDays }),
                    };
                }),
            }, Json);
        });

        group.MapGet("/users/{name}/activity", async (HttpContext http, string name, AlertStore alerts, AccountStore accounts) =>
        {
            if (await Allowed(http, accounts) is { } no) return no;
            if (Period(http, out var from, out var to, out var limit) is { } bad) return bad;
            var items = await alerts.UserActivityAsync(name, from, to, limit, Actor(http), Source(http), http.RequestAborted);
            return Results.Json(new { user = name, from, to, items }, Json);
        });

        group.MapGet("/patients/{id}/accesses", async (HttpContext http, string id, AlertStore alerts, AccountStore accounts) =>
        {
            if (await Allowed(http, accounts) is { } no) return no;
            if (!Records.Search.FhirIds.IsValid(id)) return BadRequest([$"'{Clip(id)}' is not a FHIR id."]);
            if (Period(http, out var from, out var to, out var limit) is { } bad) return bad;
            var items = await alerts.PatientAccessesAsync(id, from, to, limit, Actor(http), Source(http), http.RequestAborted);
            return Results.Json(new { patient = id, from, to, items }, Json);
        });
        return app;
    }

    private sealed record StatusBody(string? Status, string? Note, int? Revision);

    private sealed record AssignBody(string? Assignee, int? Revision);

    private sealed record CommentBody(string? Note);

    private sealed record ReplayBody(string? From, string? To);

    /// <summary>The one access check of the monitoring API (alerts and notifications): privacy and security officers, local or signed in through the external provider.</summary>
    internal static Task<IResult?> Allowed(HttpContext http, AccountStore accounts, string what = "see or review monitoring alerts") =>
        ApiScopes.RefusalAsync(http, accounts, ConsoleRoles.MonitorReviewers, ApiScopes.Monitor, $"Only a privacy officer or a security officer may {what}.");

    private static IResult Change(AlertChange change, long id) => change switch
    {
        AlertChange.Done d => Results.Json(AlertJson(d.Alert), Json),
        AlertChange.NotFound => NotFound(id),
        AlertChange.Conflict c => Results.Problem(statusCode: 409, title: "The alert was changed by someone else",
            detail: $"Alert {id} is now {AlertStatuses.Name(c.Current.Status)} at revision {c.Current.Revision}; nothing was written. Reload it and try again."),
        AlertChange.Invalid i => BadRequest([i.Problem]),
        _ => throw new InvalidOperationException("unknown change"),
    };

    private static IResult NotFound(long id) => Results.Problem(statusCode: 404, title: "No such alert", detail: $"There is no alert {id}.");

    private static IResult BadRequest(IReadOnlyList<string> problems) =>
        Results.Problem(statusCode: 400, title: "The request is not valid; nothing was changed.", detail: string.Join(" ", problems));

    /// <summary>Reads a JSON body; a missing, malformed or mistyped one is a 400.</summary>
    private static async Task<(T? Body, IResult? Problem)> ReadAsync<T>(HttpContext http) where T : class
    {
        if (http.Request.HasJsonContentType() is false) return (null, BadRequest(["The body must be JSON (Content-Type: application/json)."]));
        try
        {
            var body = await JsonSerializer.DeserializeAsync<T>(http.Request.Body, Json, http.RequestAborted);
            return body is null ? (null, BadRequest(["The body must be a JSON object."])) : (body, null);
        }
        catch (JsonException ex)
        {
            return (null, BadRequest([$"The body is not valid JSON for this request{(ex.Path is { } p ? " (at " + p + ")" : "")}."]));
        }
    }

    private static IResult? Period(HttpContext http, out DateTimeOffset from, out DateTimeOffset to, out int limit)
    {
        var bad = new List<string>();
        var q = http.Request.Query;
        to = Time(q, "to", bad) ?? DateTimeOffset.UtcNow;
        // The default week, cut short at the start of the calendar.
        from = Time(q, "from", bad) ?? (to - DateTimeOffset.MinValue > TimeSpan.FromDays(7) ? to.AddDays(-7) : DateTimeOffset.MinValue);
        limit = (int)(Number(q, "limit", 1, 5000, bad) ?? 1000);
        if (bad.Count == 0 && to <= from) bad.Add("to must be after from.");
        if (bad.Count == 0 && to - from > TimeSpan.FromDays(MaxTimelineDays)) bad.Add($"A timeline covers at most {MaxTimelineDays} days.");
        return bad.Count > 0 ? BadRequest(bad) : null;
    }

    private static string? Text(IQueryCollection q, string name) => q.TryGetValue(name, out var v) && !string.IsNullOrWhiteSpace(v.ToString()) ? v.ToString().Trim() : null;

    private static DateTimeOffset? Time(IQueryCollection q, string name, List<string> bad) => ParseTime(Text(q, name), name, bad);

    private static DateTimeOffset? ParseTime(string? text, string name, List<string> bad)
    {
        if (text is null) return null;
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)) return t;
        bad.Add($"{name} must be a date or date-time (2026-11-02 or 2026-11-02T08:00:00Z), not '{Clip(text)}'.");
        return null;
    }

    private static bool? Bool(IQueryCollection q, string name, List<string> bad)
    {
        var text = Text(q, name);
        if (text is null) return null;
        if (text is "true" or "false") return text == "true";
        bad.Add($"{name} must be true or false, not '{Clip(text)}'.");
        return null;
    }

    private static long? Number(IQueryCollection q, string name, long min, long max, List<string> bad)
    {
        var text = Text(q, name);
        if (text is null) return null;
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max) return n;
        bad.Add($"{name} must be a whole number from {min} to {max}, not '{Clip(text)}'.");
        return null;
    }

    private static long? Id(string text) => long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id > 0 ? id : null;

    /// <summary>Echoed input is cut short: a message is not the place for a whole query string.</summary>
    private static string Clip(string s) => s.Length <= 40 ? s : s[..40] + "...";

    private static string Actor(HttpContext http) => http.User.Identity!.Name!;

    private static string? Source(HttpContext http) => http.Connection.RemoteIpAddress?.ToString();

    /// <summary>An alert as JSON. The group key names a patient for some detections (break-glass, self-access, a listed
    /// contact), so only the detail, whose viewing is recorded, carries it; the queue and a change's answer do not.</summary>
    internal static object AlertJson(Alert a, bool withGroupKey = false) => new
    {
        id = a.Id,
        detection = a.Detection,
        severity = AlertStore.Name(a.Severity),
        user = a.User,
        groupKey = withGroupKey ? a.GroupKey : null,
        status = AlertStatuses.Name(a.Status),
        assignee = a.Assignee,
        firstAt = a.FirstAt,
        lastAt = a.LastAt,
        patients = a.Patients,
        entries = a.Entries,
        evidence = a.Evidence,
        repeatOffender = a.RepeatOffender,
        config = a.Config,
        source = a.Source,
        created = a.Created,
        updated = a.Updated,
        revision = a.Revision,
    };

    private static object DetailJson(AlertDetail d) => new
    {
        alert = AlertJson(d.Alert, withGroupKey: true),
        entries = d.Entries.Select(e => new { index = e.Index, detection = e.Detection, patient = e.Patient, at = e.At, evidence = e.Evidence }),
        events = d.Events.Select(e => new
        {
            seq = e.Seq, at = e.At, actor = e.Actor, kind = e.Kind,
            from = e.From is { } f ? AlertStatuses.Name(f) : null, to = e.To is { } t ? AlertStatuses.Name(t) : null,
            assignee = e.Assignee, note = e.Note,
        }),
        notifications = d.Notifications.Select(n => new
        {
            id = n.Id, channel = n.Channel, target = n.Target, status = n.Status, attempts = n.Attempts, nextAt = n.NextAt,
            lastError = n.LastError, created = n.Created, sentAt = n.SentAt,
        }),
    };
}
