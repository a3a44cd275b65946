namespace Wardline.Monitoring.Synthetic;

/// <summary>
/// One detection's score: its findings grouped into cases as a reviewer sees them (detection, user,
/// patient, local day), the labelled violations of its kind and how many it found.
/// </summary>
/// <param name="Cases">Groups of findings (detection, user, patient, local day).</param>
/// <param name="TrueCases">Cases matching a labelled violation of this detection's kind.</param>
/// <param name="OtherKindCases">Cases matching only a labelled violation of another kind (the same user and patient, in its period): not false positives.</param>
/// <param name="FalseCases">Cases matching no labelled violation: false positives.</param>
/// <param name="Labels">Labelled violations of this detection's kind.</param>
/// <param name="Recalled">Of those, found by a case of this detection.</param>
internal sealed record DetectionScore(string Detection, int Cases, int TrueCases, int OtherKindCases, int FalseCases, int Labels, int Recalled)
{
    public double Precision => Cases == 0 ? 1.0 : (TrueCases + OtherKindCases) / (double)Cases;

    public double Recall => Labels == 0 ? 1.0 : Recalled / (double)Labels;
}

/// <summary>A reviewer's case: the findings of one detection about one user and patient on one local day.</summary>
internal sealed record Case(string Detection, string User, string? Patient, int Day, long FromMs, long ToMs, int Findings);

/// <summary>
/// Scores findings against labels. A case of detection D is a true positive when it matches a label of
/// kind D, and is not a false positive when it matches a label of any kind: same user, the same patient
/// (or either has none), and its period overlapping the label's (from 10 minutes before to 2 hours
/// after). A label of kind D is recalled only by a case of D.
/// </summary>
internal static class Scoring
{
    private const long Before = 10 * 60_000;
    private const long After = 2 * 3_600_000;

    public static List<Case> Cases(IEnumerable<Finding> findings, TimeZoneInfo zone)
    {
        var cases = new Dictionary<(string, string, string?, int), Case>();
        foreach (var f in findings)
        {
            var local = TimeZoneInfo.ConvertTime(DateTimeOffset.FromUnixTimeMilliseconds(f.AtMs), zone);
            var day = (int)(local.DateTime.Date.Ticks / TimeSpan.TicksPerDay);
            var key = (f.Detection, f.User, f.Patient, day);
            cases[key] = cases.TryGetValue(key, out var c)
                ? c with { FromMs = Math.Min(c.FromMs, f.AtMs), ToMs = Math.Max(c.ToMs, f.AtMs), Findings = c.Findings + 1 }
                : new Case(f.Detection, f.User, f.Patient, day, f.AtMs, f.AtMs, 1);
        }
        return [.. cases.Values];
    }

    public static bool Matches(Case c, LabelledViolation l) =>
        c.User == l.User && (l.Patient is null || c.Patient is null || c.Patient == l.Patient) && c.ToMs >= l.FromMs - Before && c.FromMs <= l.ToMs + After;

    /// <summary>Scores every detection in <paramref name="detections"/>; labels before <paramref name="fromMs"/> (the warm-up) are not counted.</summary>
    public static List<DetectionScore> Score(IReadOnlyList<Case> cases, IEnumerable<LabelledViolation> labels, IEnumerable<string> detections, long fromMs)
    {
        var scored = labels.Where(l => l.ToMs >= fromMs).ToList();
        var byUser = scored.GroupBy(l => l.User).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var result = new List<DetectionScore>();
        foreach (var d in detections)
        {
            int total = 0, truePos = 0, other = 0;
            var recalled = new HashSet<LabelledViolation>();
            foreach (var c in cases)
            {
                if (c.Detection != d) continue;
                total++;
                var own = false;
                var any = false;
                foreach (var l in byUser.GetValueOrDefault(c.User) ?? [])
                {
                    if (!Matches(c, l)) continue;
                    any = true;
                    if (l.Detection == d)
                    {
                        own = true;
                        recalled.Add(l);
                    }
                }
                if (own) truePos++;
                else if (any) other++;
            }
            var kind = scored.Count(l => l.Detection == d);
            result.Add(new DetectionScore(d, total, truePos, other, total - truePos - other, kind, recalled.Count));
        }
        return result;
    }

    /// <summary>The labels of a detection's kind that no case of it found.</summary>
    public static List<LabelledViolation> Missed(IReadOnlyList<Case> cases, IEnumerable<LabelledViolation> labels, string detection, long fromMs) =>
        [.. labels.Where(l => l.Detection == detection && l.ToMs >= fromMs && !cases.Any(c => c.Detection == detection && Matches(c, l)))];

    /// <summary>The cases of a detection that match no label at all.</summary>
    public static List<Case> False(IReadOnlyList<Case> cases, IEnumerable<LabelledViolation> labels, string detection, long fromMs)
    {
        var scored = labels.Where(l => l.ToMs >= fromMs).ToList();
        return [.. cases.Where(c => c.Detection == detection && !scored.Any(l => Matches(c, l)))];
    }
}
