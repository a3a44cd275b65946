using System.Diagnostics;
using System.Globalization;
using Wardline.Monitoring;
using Wardline.Monitoring.Synthetic;

namespace Wardline.Bench;

/// <summary>
/// Batch throughput of the monitoring engine (issue 6, item 7): the synthetic hospital's ledger (normal work plus
/// injected violations) is generated into memory first, then every enabled detection examines it in ledger order,
/// as a replay does, on one thread. Reported: entries/s of the engine alone, findings, and the process's peak
/// working set. Reading the rows out of a store is measured by <c>monitor replay</c> (MonitorReplayBenchmark.cs).
///
///     Wardline.Bench monitor batch [--entries N (10000000)] [--seed S (7)] [--rounds R (3)]
/// </summary>
internal static class MonitorBenchmark
{
    public static int Run(string[] args)
    {
        if (args is not ["batch", ..])
        {
            Console.Error.WriteLine("usage: Wardline.Bench monitor batch [--entries N] [--seed S] [--rounds R]");
            return 2;
        }
        long entries = 10_000_000;
        var seed = 7;
        var rounds = 3;
        for (var i = 1; i < args.Length - 1; i += 2)
        {
            switch (args[i])
            {
                case "--entries": entries = long.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--seed": seed = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        }

        var (hospital, scale) = Hospital(entries, seed);
        var sw = Stopwatch.StartNew();
        var events = new List<MonitorEvent>((int)Math.Min(entries, int.MaxValue - 64));
        foreach (var e in hospital.Events())
        {
            events.Add(e);
            if (events.Count == entries) break;
        }
        sw.Stop();
        var days = (events[^1].AtMs - events[0].AtMs) / 86_400_000.0;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"generated {events.Count:N0} entries ({days:0.0} days, scale {scale:0.0}: {hospital.Directory.StaffCount:N0} staff, {hospital.Directory.PatientCount:N0} patients, {hospital.Directory.RelationshipCount:N0} relationships) in {sw.Elapsed.TotalSeconds:0.0} s"));

        var config = MonitorConfig.Default;
        for (var round = 1; round <= rounds; round++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            var engine = new MonitorEngine(config, hospital.Directory, TimeZoneInfo.Utc);
            var findings = new List<Finding>();
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            sw.Restart();
            foreach (var e in events) engine.Examine(e, findings);
            sw.Stop();
            var used = Process.GetCurrentProcess().TotalProcessorTime - cpu;
            var rate = events.Count / sw.Elapsed.TotalSeconds;
            var suppressed = engine.Context.Suppressed.Values.Sum();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"round {round}: {events.Count:N0} entries in {sw.Elapsed.TotalSeconds:0.00} s = {rate:N0} entries/s ({used.TotalSeconds:0.00} s CPU), {engine.ActiveDetections.Count} detections, {findings.Count:N0} findings, {suppressed:N0} silenced by explanations, peak working set {Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0:N0} MiB"));
            if (round == rounds)
            {
                Console.WriteLine("findings by detection: " + string.Join(", ", findings.GroupBy(f => f.Detection).OrderByDescending(g => g.Count()).Select(g => $"{g.Key} {g.Count()}")));
            }
        }
        return 0;
    }

    /// <summary>
    /// A hospital big enough that its month holds the entries asked for: the default month is ~1.2M entries
    /// (about 400 staff); staff and activity are scaled together, and the month is cut at the count.
    /// </summary>
    internal static (SyntheticHospital Hospital, double Scale) Hospital(long entries, int seed)
    {
        var probe = new SyntheticHospital(new SyntheticOptions { Seed = seed });
        var perMonth = probe.Events().LongCount();
        var scale = Math.Max(1.0, Math.Ceiling(entries * 11.0 / perMonth) / 10.0); // 10% over: the month does not grow quite in proportion
        return (new SyntheticHospital(new SyntheticOptions { Seed = seed, StaffScale = scale, ActivityScale = scale, Patients = (int)(25_000 * scale) }), scale);
    }
}
