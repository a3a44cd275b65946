namespace Wardline.Monitoring.Detections;

/// <summary>
/// A member of staff in the record of a patient who shares their surname: often a relative. When the
/// street address matches too, <see cref="SameAddress"/> speaks for both (one alert, not two). One alert
/// per user within the grouping window: a common surname gives a spree of unrelated patients, one case.
/// </summary>
internal sealed class SameSurname : Detection
{
    private static readonly DetectionInfo Description = new(
        "same-surname", "Same surname", Severity.Medium, Suppressible: true,
        "A member of staff opened the record of a patient who shares their surname, often a relative. A documented care relationship (care team, encounter, appointment, order) explains it. Reported once a day per user and patient; when the street address matches too, only Same address is raised.",
        []);

    private readonly OncePerDay _once = new();
    private bool? _addressSpeaks;

    public override DetectionInfo Info => Description;

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (!e.IsPermittedPatientDecision) return;
        var (staff, patient) = Parties.Of(e, ctx.Directory);
        if (staff is not { SurnameKey: { } surname, Service: false } || patient is null || patient.SurnameKey != surname || Financial.IsBillingWork(e, patient)) return;
        var user = e.User!;
        if (Parties.IsOwn(user, staff, patient)) return;
        // Left to same-address, unless that detection is switched off (then this one still speaks).
        _addressSpeaks ??= ctx.Config.Detections.TryGetValue("same-address", out var address) && address.Enabled;
        if (_addressSpeaks.Value && staff.AddressKey is not null && staff.AddressKey == patient.AddressKey) return;
        if (!_once.First(ctx, user, patient.Id, e.AtMs)) return;
        ctx.Report(this, user, patient.Id, e.AtMs, [e.Index], "this user and the patient share a surname");
    }
}
