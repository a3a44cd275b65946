using System.Globalization;
using System.Text;
using Wardline.Monitoring.Synthetic;

namespace Wardline.Monitoring.Tests.Evaluation;

/// <summary>Runs the built-in configuration over a synthetic month: warms on the first week, examines the rest, scores per detection.</summary>
internal sealed class Evaluator
{
    private Evaluator(SyntheticHospital hospital, List<Case> cases, List<DetectionScore> scores, long entries, long findings, TimeSpan elapsed)
    {
        Hospital = hospital;
        Cases = cases;
        Scores = scores;
        Entries = entries;
        Findings = findings;
        Elapsed = elapsed;
    }

    public SyntheticHospital Hospital { get; }

    public List<Case> Cases { get; }

    public List<DetectionScore> Scores { get; }

    public long Entries { get; }

    public long Findings { get; }

    public TimeSpan Elapsed { get; }

    public static Evaluator Run(int seed, string? configText = null, double undocumentedConsultShare = 0.03)
    {
        // Warmed on four weeks, as the server warms (Wardline:Monitoring:WarmupDays 28), then a month examined.
        var hospital = new SyntheticHospital(new SyntheticOptions { Seed = seed, Days = 56, WarmDays = 28, UndocumentedConsultShare = undocumentedConsultShare });
        var config = configText is null ? MonitorConfig.Default : MonitorConfig.Parse(configText, "evaluation.yaml");
        var engine = new MonitorEngine(config, hospital.Directory, TimeZoneInfo.Utc);
        var findings = new List<Finding>();
        long entries = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        foreach (var e in hospital.Events())
        {
            entries++;
            if (e.AtMs < hospital.EvaluationStartMs) engine.Warm(e);
            else engine.Examine(e, findings);
        }
        clock.Stop();
        var cases = Scoring.Cases(findings, TimeZoneInfo.Utc);
        var scores = Scoring.Score(cases, hospital.Labels, Catalog.All.Select(d => d.Id), hospital.EvaluationStartMs);
        return new Evaluator(hospital, cases, scores, entries, findings.Count, clock.Elapsed);
    }

    /// <summary>The table: ids and numbers only.</summary>
    public string Table()
    {
        var b = new StringBuilder();
        b.AppendLine(CultureInfo.InvariantCulture, $"seed {Hospital.Options.Seed} entries {Entries} findings {Findings} cases {Cases.Count} seconds {Elapsed.TotalSeconds:0.0}");
        b.AppendLine("detection                 labels found missed  cases    tp other    fp precision recall");
        foreach (var s in Scores)
        {
            b.AppendLine(CultureInfo.InvariantCulture,
                $"{s.Detection,-25} {s.Labels,6} {s.Recalled,5} {s.Labels - s.Recalled,6} {s.Cases,6} {s.TrueCases,5} {s.OtherKindCases,5} {s.FalseCases,5} {s.Precision,9:0.000} {s.Recall,6:0.000}");
        }
        return b.ToString();
    }

    /// <summary>What was missed and the false cases, by ids and numbers: for looking into the development seed.</summary>
    public string Details(int perDetection = 8)
    {
        var b = new StringBuilder();
        foreach (var s in Scores)
        {
            foreach (var l in Scoring.Missed(Cases, Hospital.Labels, s.Detection, Hospital.EvaluationStartMs))
                b.AppendLine(CultureInfo.InvariantCulture, $"missed {s.Detection} {l.User} {l.Patient ?? "-"} {DateTimeOffset.FromUnixTimeMilliseconds(l.FromMs):yyyy-MM-ddTHH:mm} entries {l.Entries.Count}");
            var fp = Scoring.False(Cases, Hospital.Labels, s.Detection, Hospital.EvaluationStartMs);
            var roles = fp.GroupBy(c => Hospital.RoleOf.GetValueOrDefault(c.User) ?? "other").Select(g => $"{g.Key}={g.Count()}");
            var weeks = fp.GroupBy(c => (c.FromMs - Hospital.EvaluationStartMs) / (7 * 86_400_000L) + 1).OrderBy(g => g.Key).Select(g => $"w{g.Key}={g.Count()}");
            if (fp.Count > 0)
                b.AppendLine(CultureInfo.InvariantCulture, $"false {s.Detection} {fp.Count} by-role {string.Join(' ', roles)} by-week {string.Join(' ', weeks)}");
            foreach (var c in fp.Take(perDetection))
                b.AppendLine(CultureInfo.InvariantCulture, $"  false {s.Detection} {c.User} {c.Patient ?? "-"} {DateTimeOffset.FromUnixTimeMilliseconds(c.FromMs):yyyy-MM-ddTHH:mm} findings {c.Findings}");
        }
        return b.ToString();
    }
}
