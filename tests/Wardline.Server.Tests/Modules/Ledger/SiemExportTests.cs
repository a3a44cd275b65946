using System.Data.Common;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using Wardline.Ledger;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Ledger.Export;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Pipeline;
using Wardline.Server.Tests.EndToEnd;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Ledger;

/// <summary>
/// The ledger reaches a SIEM (a real TCP listener in the test) at least once and in order: RFC 6587
/// octet-counted RFC 5424 messages carrying CEF; a dropped connection or a restart loses no entry; a
/// jsonl file receives the canonical entries whose leaves are in the ledger.
/// </summary>
public abstract class SiemExportConformance(StoreKind kind) : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private TestStore _store = null!;

    public async Task InitializeAsync() => _store = await TestStore.CreateAsync(kind);

    public async Task DisposeAsync() => await _store.DisposeAsync();

    private Task<TestServer> StartAsync(params LedgerExportOptions[] exports)
    {
        var options = _store.SharedOptions();
        foreach (var e in exports) options.Ledger.Exports.Add(e);
        return TestServer.StartAsync(options);
    }

    private static LedgerExportOptions Syslog(SiemListener siem, int batchSize = 500) =>
        new() { Name = "siem", Format = "syslog-cef", Transport = "tcp", Address = siem.Address, BatchSize = batchSize };

    [Fact]
    public async Task Entries_made_by_requests_arrive_in_order_framed_with_their_fields()
    {
        await using var siem = SiemListener.Start();
        await using var server = await StartAsync(Syslog(siem));
        var id = await server.Client.CreateAsync("Patient", FhirTest.Patient("Siem" + Guid.NewGuid().ToString("N")[..8]));
        Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync($"Patient/{id}")).StatusCode);
        using (var anonymous = server.AnonymousClient())
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync($"Patient/{id}")).StatusCode);
        }

        var rows = await RowsAsync(server);
        await siem.WaitForIndexesAsync(rows.Count, Patience);

        Assert.Empty(siem.FramingErrors);
        Assert.Equal(1, siem.Connections);
        var messages = siem.Messages.Select(SyslogMessage.Parse).ToList();
        Assert.Equal(Enumerable.Range(0, messages.Count).Select(i => (long)i), messages.Select(m => m.Index));
        foreach (var m in messages.Take(rows.Count))
        {
            var row = rows[(int)m.Index];
            var cef = m.Cef;
            Assert.Equal(("Wardline", "Wardline", "1.0"), (cef.Vendor, cef.Product, cef.Version));
            Assert.Equal($"{row.Type}:{row.Event ?? "-"}", cef.SignatureId);
            Assert.Equal(m.Index.ToString(CultureInfo.InvariantCulture), cef["cn1"]);
            Assert.Equal("ledgerIndex", cef["cn1Label"]);
            Assert.Equal(row.At.ToString(CultureInfo.InvariantCulture), cef["rt"]);
            Assert.Equal(LedgerEntry.FormatTime(DateTimeOffset.FromUnixTimeMilliseconds(row.At)), m.Timestamp);
            Assert.Equal(row.Type == "access" ? row.Action : row.Event, cef.Get("act"));
            Assert.Equal(row.Patient, cef.Get("cs3"));
            Assert.Equal(row.Resource, cef.Get("cs4"));
            Assert.Equal(row.Rule, cef.Get("cs1"));
            Assert.Equal(row.Correlation, cef.Get("cs5"));
            Assert.Equal(("wardline", "-", "ledger"), (m.App, m.ProcId, m.MsgId));
            Assert.Equal(13, m.Pri / 8);
        }

        var read = messages.Single(m => m.Cef.Get("act") == "Read" && m.Cef.Get("cs3") == $"Patient/{id}" && m.Cef.SignatureId == "access:outcome" && m.Cef.Get("suser") == "tester");
        Assert.Equal(("permitted", "200", $"Patient/{id}/_history/1"), (read.Cef["outcome"], read.Cef["cn2"], read.Cef["cs4"]));
        Assert.Equal(("3", 110), (read.Cef.Severity, read.Pri));
        Assert.Equal("127.0.0.1", read.Cef["src"]);
        var refused = messages.Single(m => m.Cef.Get("act") == "Read" && m.Cef.Get("cs4") == $"Patient/{id}" && m.Cef.Get("outcome") == "denied");
        Assert.Equal(("7", 108, "Read request denied"), (refused.Cef.Severity, refused.Pri, refused.Cef.Name));
        Assert.Null(refused.Cef.Get("suser"));
        var created = messages.Single(m => m.Cef.SignatureId == "write:create" && m.Cef.Get("cs4") == $"Patient/{id}/_history/1");
        Assert.Matches("^[0-9a-f]{64}$", created.Cef["fileHash"]);
    }

    [Fact]
    public async Task A_connection_dropped_mid_stream_is_resumed_with_no_entry_missing()
    {
        await using var siem = SiemListener.Start();
        // The first connection is reset after five messages, with whatever it had not read yet thrown away.
        siem.DropFirstConnectionAfter(5);
        await using var server = await StartAsync(Syslog(siem, batchSize: 3));
        var ids = await Task.WhenAll(Enumerable.Range(0, 10).Select(i => server.Client.CreateAsync("Patient", FhirTest.Patient("Drop" + i))));
        await Task.WhenAll(ids.Select(id => server.Client.GetAsync($"Patient/{id}")));

        var size = await SizeAsync(server);
        await siem.WaitForIndexesAsync(size, Patience);

        Assert.Empty(siem.FramingErrors);
        Assert.True(siem.Connections >= 2, $"{siem.Connections} connection(s)");
        var indexes = siem.Messages.Select(m => SyslogMessage.Parse(m).Index).ToList();
        Assert.Equal(Enumerable.Range(0, (int)size).Select(i => (long)i), indexes.Where(i => i < size).Distinct().Order());
        // Each connection delivers a contiguous run from the cursor on.
        foreach (var run in siem.MessagesByConnection.Select(c => c.Select(m => SyslogMessage.Parse(m).Index).ToList()).Where(r => r.Count > 0))
        {
            Assert.Equal(Enumerable.Range(0, run.Count).Select(i => run[0] + i), run);
        }
    }

    [Fact]
    public async Task A_siem_that_is_down_at_start_gets_every_entry_once_it_listens()
    {
        var port = SiemListener.FreePort();
        await using var server = await StartAsync(new LedgerExportOptions { Name = "late", Address = $"127.0.0.1:{port}" });
        await Task.WhenAll(Enumerable.Range(0, 3).Select(i => server.Client.CreateAsync("Patient", FhirTest.Patient("Late" + i))));
        await Task.Delay(TimeSpan.FromSeconds(2)); // refused at least twice: the exporter is backing off

        await using var siem = SiemListener.Start(port);
        var size = await SizeAsync(server);
        await siem.WaitForIndexesAsync(size, Patience);

        await WaitAsync(async () => await CursorAsync("late") >= size - 1, "the cursor to reach the last entry");
        Assert.Equal(1, siem.Connections);
        Assert.Equal(Enumerable.Range(0, (int)size).Select(i => (long)i), siem.Messages.Select(m => SyslogMessage.Parse(m).Index).Take((int)size));
    }

    [Fact]
    public async Task A_restarted_server_resumes_from_the_stored_cursor()
    {
        await using var siem = SiemListener.Start();
        long cursor;
        await using (var first = await StartAsync(Syslog(siem)))
        {
            await Task.WhenAll(Enumerable.Range(0, 5).Select(i => first.Client.CreateAsync("Patient", FhirTest.Patient("Before" + i))));
            var size = await SizeAsync(first);
            await siem.WaitForIndexesAsync(size, Patience);
            await WaitAsync(async () => await CursorAsync("siem") == size - 1, "the cursor to reach the last entry sent");
        }
        cursor = await CursorAsync("siem") ?? -2;
        var before = siem.Messages.Count;

        await using var second = await StartAsync(Syslog(siem));
        await Task.WhenAll(Enumerable.Range(0, 5).Select(i => second.Client.CreateAsync("Patient", FhirTest.Patient("After" + i))));
        var total = await SizeAsync(second);
        await siem.WaitForIndexesAsync(total, Patience);

        var indexes = siem.Messages.Select(m => SyslogMessage.Parse(m).Index).ToList();
        var resumed = indexes.Skip(before).ToList();
        Assert.True(cursor >= 0, "the first server acknowledged what it sent");
        Assert.Equal(cursor + 1, resumed[0]);
        Assert.Equal(Enumerable.Range(0, (int)total).Select(i => (long)i), indexes.Where(i => i < total).Distinct().Order());
        var duplicates = indexes.Count - indexes.Distinct().Count();
        Assert.True(duplicates <= 3, $"{duplicates} entries were sent twice");
    }

    [Fact]
    public async Task A_security_event_detail_with_pipes_equals_backslashes_and_newlines_is_escaped_and_reads_back_whole()
    {
        await using var siem = SiemListener.Start();
        await using var server = await StartAsync(Syslog(siem));
        var correlation = "escape-" + Guid.NewGuid().ToString("N")[..8];
        const string Detail = "rule |a|b| = c=d \\ path C:\\ward\\line\r\nsecond line\nthird \\n not a newline";
        await server.Service<LedgerRecorder>().RecordAsync(
            new SecurityEvent(DateTimeOffset.UtcNow, SecurityEventKind.PolicyRejected, "pat|=\\user", "admin", "failed", Detail, correlation, "::1"),
            CancellationToken.None);

        await siem.WaitForIndexesAsync(await SizeAsync(server), Patience);

        var raw = siem.Messages.Single(m => m.Contains(correlation, StringComparison.Ordinal));
        Assert.DoesNotContain('\n', raw);
        Assert.DoesNotContain('\r', raw);
        Assert.Contains(@" msg=rule |a|b| \= c\=d \\ path C:\\ward\\line\r\nsecond line\nthird \\n not a newline", raw, StringComparison.Ordinal);
        var m = SyslogMessage.Parse(raw);
        Assert.Equal(Detail, m.Cef["msg"]);
        Assert.Equal(("admin", "pat|=\\user", "failed", "::1"), (m.Cef["suser"], m.Cef["duser"], m.Cef["outcome"], m.Cef["src"]));
        Assert.Equal(("security:PolicyRejected", "PolicyRejected failed", "6"), (m.Cef.SignatureId, m.Cef.Name, m.Cef.Severity));
    }

    [Fact]
    public async Task A_jsonl_file_receives_canonical_entries_whose_leaves_are_the_ledgers()
    {
        var path = Path.Combine(_store.Folder, "siem.jsonl");
        await using var server = await StartAsync(new LedgerExportOptions { Name = "archive", Format = "jsonl", Transport = "file", Path = path, BatchSize = 4 });
        await Task.WhenAll(Enumerable.Range(0, 6).Select(i => server.Client.CreateAsync("Patient", FhirTest.Patient("Jsonl" + i))));
        var rows = await RowsAsync(server);

        var lines = await WaitForLinesAsync(path, rows.Count);

        Assert.Equal(Enumerable.Range(0, lines.Count).Select(i => (long)i), lines.Select(l => l.Index));
        foreach (var (index, entry) in lines.Take(rows.Count))
        {
            Assert.Equal(Convert.ToHexStringLower(rows[(int)index].Leaf), Convert.ToHexStringLower(MerkleHash.Leaf(entry)));
            Assert.Equal(entry, LedgerEntry.Decode(entry).Encode());
        }
        await WaitAsync(async () => await CursorAsync("archive") >= rows.Count - 1, "the file's cursor to reach the lines written");
    }

    [Fact]
    public async Task Jsonl_over_tcp_sends_one_line_per_entry_in_order()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        await using var server = await StartAsync(new LedgerExportOptions { Name = "lines", Format = "jsonl", Address = $"127.0.0.1:{port}" });
        await server.Client.CreateAsync("Patient", FhirTest.Patient("Lines"));
        var rows = await RowsAsync(server);

        using var client = await listener.AcceptTcpClientAsync().WaitAsync(Patience);
        using var reader = new StreamReader(client.GetStream(), Encoding.UTF8);
        for (var i = 0; i < rows.Count; i++)
        {
            var line = await reader.ReadLineAsync().WaitAsync(Patience);
            using var doc = JsonDocument.Parse(line!);
            Assert.Equal(i, doc.RootElement.GetProperty("idx").GetInt64());
            Assert.Equal(rows[i].Leaf, MerkleHash.Leaf(Encoding.UTF8.GetBytes(doc.RootElement.GetProperty("entry").GetRawText())));
        }
    }

    [Fact]
    public async Task The_command_line_dumps_the_ledger_from_an_index_to_a_jsonl_file()
    {
        await using (var server = await StartAsync())
        {
            await Task.WhenAll(Enumerable.Range(0, 3).Select(i => server.Client.CreateAsync("Patient", FhirTest.Patient("Cli" + i))));
        }
        var path = Path.Combine(_store.Folder, "dump.jsonl");
        var o = _store.Options;
        string[] storeArgs = o.PostgresConnectionString is { } cs
            ? ["--db", cs, "--keyring", o.KeyringPath!, "--witness", o.Ledger.WitnessPath!]
            : ["--data", o.DataDirectory!];

        var r = await WardlineCli.RunAsync(["ledger", "export", "--jsonl", path, "--from", "2", .. storeArgs]);

        Assert.True(r.ExitCode == 0, r.Output);
        var lines = ReadLines(path);
        var rows = await RowsAsync();
        Assert.Equal(Enumerable.Range(2, lines.Count).Select(i => (long)i), lines.Select(l => l.Index));
        Assert.True(lines.Count >= 3, $"{lines.Count} lines");
        Assert.All(lines, l => Assert.Equal(rows[(int)l.Index].Leaf, MerkleHash.Leaf(l.Entry)));
        Assert.Contains($"exported {lines.Count} entries", r.Output, StringComparison.Ordinal);
        // Taking the dump is recorded before it is written, so the dump ends with its own entry.
        var recorded = await Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit.ScalarAsync(o,
            "SELECT detail FROM ledger_entries WHERE type = 'system' AND event = 'ledger-exported' AND idx = @i", ("@i", lines[^1].Index));
        Assert.Equal($"entries from index 2 (the ledger held {lines[^1].Index}) to {path}", recorded);
    }

    private static async Task<List<(long Index, byte[] Entry)>> WaitForLinesAsync(string path, int count)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            var lines = File.Exists(path) ? ReadLines(path) : [];
            if (lines.Select(l => l.Index).Distinct().Count() >= count) return lines;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{lines.Count} of {count} lines in {path}");
            await Task.Delay(100);
        }
    }

    /// <summary>Each line's index and its entry's bytes exactly as written (the raw JSON text of "entry").</summary>
    private static List<(long Index, byte[] Entry)> ReadLines(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var text = reader.ReadToEnd();
        // The last piece is empty, or a line still being written.
        return [.. text.Split('\n').SkipLast(1).Select(l =>
        {
            using var doc = JsonDocument.Parse(l);
            Assert.Equal(new[] { "idx", "entry" }, doc.RootElement.EnumerateObject().Select(p => p.Name));
            return (doc.RootElement.GetProperty("idx").GetInt64(), Encoding.UTF8.GetBytes(doc.RootElement.GetProperty("entry").GetRawText()));
        })];
    }

    private static async Task WaitAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("Timed out waiting for " + what);
            await Task.Delay(100);
        }
    }

    /// <summary>A target's stored cursor, read over a connection of the test's own.</summary>
    private async Task<long?> CursorAsync(string name)
    {
        await using var dialect = Dialect();
        return await ExportCursor.PeekAsync(dialect, name, CancellationToken.None);
    }

    private SqlDialect Dialect() => _store.Options.PostgresConnectionString is { } cs
        ? SqlDialect.Postgres(cs)
        : SqlDialect.Sqlite(Path.Combine(_store.Options.DataDirectory!, "wardline.db"));

    private static async Task<long> SizeAsync(TestServer server)
    {
        await using var c = await server.Service<SqlDialect>().OpenAsync(CancellationToken.None);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM ledger_entries";
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    private static Task<List<LedgerColumns>> RowsAsync(TestServer server) => RowsAsync(server.Service<SqlDialect>());

    private async Task<List<LedgerColumns>> RowsAsync()
    {
        await using var dialect = Dialect();
        return await RowsAsync(dialect);
    }

    private static async Task<List<LedgerColumns>> RowsAsync(SqlDialect dialect)
    {
        await using var c = await dialect.OpenAsync(CancellationToken.None);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT idx, at, type, event, action, patient, resource, rule, correlation, leaf FROM ledger_entries ORDER BY idx";
        var rows = new List<LedgerColumns>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            Assert.Equal(rows.Count, r.GetInt64(0));
            rows.Add(new LedgerColumns(r.GetInt64(1), r.GetString(2), Text(r, 3), Text(r, 4), Text(r, 5), Text(r, 6), Text(r, 7), Text(r, 8), (byte[])r.GetValue(9)));
        }
        return rows;
    }

    private static string? Text(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private sealed record LedgerColumns(long At, string Type, string? Event, string? Action, string? Patient, string? Resource, string? Rule, string? Correlation, byte[] Leaf);
}

public sealed class SiemExportOnSqlite() : SiemExportConformance(StoreKind.Sqlite);

public sealed class SiemExportOnPostgres() : SiemExportConformance(StoreKind.Postgres);

/// <summary>Several servers on one PostgreSQL: one exports a target at a time; when it stops, another takes over from the cursor.</summary>
public sealed class SiemExportTwoServersOnPostgres : IAsyncLifetime
{
    private TestStore _store = null!;

    public async Task InitializeAsync() => _store = await TestStore.CreateAsync(StoreKind.Postgres);

    public async Task DisposeAsync() => await _store.DisposeAsync();

    private Task<TestServer> StartAsync(SiemListener siem)
    {
        var options = _store.SharedOptions();
        options.Ledger.Exports.Add(new LedgerExportOptions { Name = "siem", Address = siem.Address, BatchSize = 50 });
        return TestServer.StartAsync(options);
    }

    [Fact]
    public async Task Only_one_of_two_servers_exports_a_target_and_the_other_takes_over_when_it_stops()
    {
        await using var siem = SiemListener.Start();
        var a = await StartAsync(siem);
        // The first server has the target before the second one starts.
        for (var i = 0; i < 300 && siem.Connections == 0; i++) await Task.Delay(100);
        await using var b = await StartAsync(siem);
        try
        {
            await Task.WhenAll(Enumerable.Range(0, 4).SelectMany(i => new[] { a, b }).Select((s, i) => s.Client.CreateAsync("Patient", FhirTest.Patient("Pair" + i))));
            await siem.WaitForIndexesAsync(await SizeAsync(a), TimeSpan.FromSeconds(60));
            Assert.Equal(1, siem.Connections);
        }
        finally
        {
            await a.DisposeAsync();
        }

        await Task.WhenAll(Enumerable.Range(0, 4).Select(i => b.Client.CreateAsync("Patient", FhirTest.Patient("After" + i))));
        var size = await SizeAsync(b);
        await siem.WaitForIndexesAsync(size, TimeSpan.FromSeconds(60));

        Assert.Equal(2, siem.Connections);
        var indexes = siem.Messages.Select(m => SyslogMessage.Parse(m).Index).ToList();
        Assert.Equal(Enumerable.Range(0, (int)size).Select(i => (long)i), indexes.Where(i => i < size).Distinct().Order());
        Assert.True(indexes.Count - indexes.Distinct().Count() <= 3, "few entries sent twice");
    }

    private static async Task<long> SizeAsync(TestServer server)
    {
        await using var c = await server.Service<SqlDialect>().OpenAsync(CancellationToken.None);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM ledger_entries";
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }
}

/// <summary>A misconfigured export stops the server at start, with a message naming the setting.</summary>
public sealed class SiemExportOptionsTests
{
    public static TheoryData<string, string> BadTargets => new()
    {
        { """{"Name":"Main_SIEM","Address":"127.0.0.1:6514"}""", "Wardline:Ledger:Exports:0:Name" },
        { """{"Name":"siem","Format":"leef","Address":"127.0.0.1:6514"}""", "Wardline:Ledger:Exports:0:Format" },
        { """{"Name":"siem","Address":"siem.example"}""", "Wardline:Ledger:Exports:0:Address" },
        { """{"Name":"siem","Address":"siem.example:70000"}""", "Wardline:Ledger:Exports:0:Address" },
        { """{"Name":"siem","Transport":"udp","Address":"127.0.0.1:514"}""", "Wardline:Ledger:Exports:0:Transport" },
        { """{"Name":"siem","Transport":"file","Path":"/tmp/ledger.log"}""", "Wardline:Ledger:Exports:0:Transport 'file' takes the jsonl format" },
        { """{"Name":"siem","Format":"jsonl","Transport":"file","Path":"/no/such/folder/ledger.jsonl"}""", "Wardline:Ledger:Exports:0:Path" },
        { """{"Name":"siem","Format":"jsonl","Transport":"file"}""", "Wardline:Ledger:Exports:0:Path is required" },
        { """{"Name":"siem","Address":"127.0.0.1:6514","BatchSize":0}""", "Wardline:Ledger:Exports:0:BatchSize" },
        { """{"Name":"siem","Transport":"tls","Address":"siem.example"}""", "Wardline:Ledger:Exports:0:Address must be host:port (port 1-65535) for the tls transport" },
        { """{"Name":"siem","Transport":"tls","Address":"127.0.0.1:6514","Tls":{"CaFile":"/no/such/ca.pem"}}""", "Wardline:Ledger:Exports:0:Tls:CaFile /no/such/ca.pem: the file does not exist" },
        { """{"Name":"siem","Transport":"tls","Address":"127.0.0.1:6514","Tls":{"ClientCertificateFile":"/etc/wardline/siem.pem"}}""", "Wardline:Ledger:Exports:0:Tls:ClientCertificateFile and ClientKeyFile go together" },
        { """{"Name":"siem","Transport":"tls","Address":"127.0.0.1:6514","Tls":{"ServerName":"siem example"}}""", "Wardline:Ledger:Exports:0:Tls:ServerName" },
        { """{"Name":"siem","Address":"127.0.0.1:6514","Tls":{"CaFile":"/etc/wardline/ca.pem"}}""", "Wardline:Ledger:Exports:0:Tls settings apply to the tls transport only" },
    };

    [Theory]
    [MemberData(nameof(BadTargets))]
    public void A_bad_export_target_is_refused_at_start_naming_the_setting(string target, string setting)
    {
        var options = new WardlineOptions { DataDirectory = Path.Combine(Path.GetTempPath(), "wl-siem-" + Guid.NewGuid().ToString("N")) };
        options.Ledger.Exports.Add(JsonSerializer.Deserialize<LedgerExportOptions>(target)!);

        var refused = Assert.Throws<OptionsValidationException>(() => WardlineHost.Build(options));

        Assert.Contains(setting, refused.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(options.DataDirectory));
    }

    [Fact]
    public void Targets_bind_from_configuration_keys()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Wardline:Ledger:Exports:0:Name"] = "siem",
            ["Wardline:Ledger:Exports:0:Address"] = "siem.example:6514",
            ["Wardline:Ledger:Exports:0:BatchSize"] = "200",
            ["Wardline:Ledger:Exports:1:Name"] = "archive",
            ["Wardline:Ledger:Exports:1:Format"] = "jsonl",
            ["Wardline:Ledger:Exports:1:Transport"] = "file",
            ["Wardline:Ledger:Exports:1:Path"] = Path.Combine(Path.GetTempPath(), "ledger.jsonl"),
        }).Build();
        var options = new WardlineOptions { DataDirectory = Path.GetTempPath() };

        config.GetSection(WardlineOptions.Section).Bind(options);

        Assert.Equal(["siem", "archive"], options.Ledger.Exports.Select(e => e.Name));
        Assert.Equal(("syslog-cef", "tcp", "siem.example:6514", 200), (options.Ledger.Exports[0].Format, options.Ledger.Exports[0].Transport, options.Ledger.Exports[0].Address, options.Ledger.Exports[0].BatchSize));
        Assert.Empty(options.Validate());
    }

    [Fact]
    public void Two_targets_with_one_name_are_refused_since_the_name_keys_the_cursor()
    {
        var options = new WardlineOptions { DataDirectory = Path.Combine(Path.GetTempPath(), "wl-siem-" + Guid.NewGuid().ToString("N")) };
        options.Ledger.Exports.Add(new LedgerExportOptions { Name = "siem", Address = "127.0.0.1:6514" });
        options.Ledger.Exports.Add(new LedgerExportOptions { Name = "siem", Address = "127.0.0.1:6515" });

        var refused = Assert.Throws<OptionsValidationException>(() => WardlineHost.Build(options));

        Assert.Contains("Wardline:Ledger:Exports:1:Name 'siem' is used by another export", refused.Message, StringComparison.Ordinal);
    }
}

/// <summary>A SIEM for tests: a real TCP listener on loopback that reads RFC 6587 octet-counted frames.</summary>
internal sealed class SiemListener : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private readonly List<string> _messages = [];
    private readonly List<List<string>> _byConnection = [];
    private readonly List<string> _framingErrors = [];
    private readonly List<Task> _readers = [];
    private readonly List<string> _clientCertificates = [];
    private readonly SslServerAuthenticationOptions? _tls;
    private Task _accepting = Task.CompletedTask;
    private int _dropAfter = -1;
    private int _handshakeFailures;

    private SiemListener(TcpListener listener, SslServerAuthenticationOptions? tls)
    {
        _listener = listener;
        _tls = tls;
    }

    /// <summary>TLS connections whose handshake failed (this side refused the client, or the client refused this side's certificate).</summary>
    public int HandshakeFailures
    {
        get
        {
            lock (_lock) return _handshakeFailures;
        }
    }

    /// <summary>The subjects of the client certificates TLS connections presented.</summary>
    public IReadOnlyList<string> ClientCertificates
    {
        get
        {
            lock (_lock) return [.. _clientCertificates];
        }
    }

    public string Address => "127.0.0.1:" + ((IPEndPoint)_listener.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture);

    public int Connections
    {
        get
        {
            lock (_lock) return _byConnection.Count;
        }
    }

    public IReadOnlyList<string> Messages
    {
        get
        {
            lock (_lock) return [.. _messages];
        }
    }

    public IReadOnlyList<IReadOnlyList<string>> MessagesByConnection
    {
        get
        {
            lock (_lock) return [.. _byConnection.Select(c => (IReadOnlyList<string>)[.. c])];
        }
    }

    public IReadOnlyList<string> FramingErrors
    {
        get
        {
            lock (_lock) return [.. _framingErrors];
        }
    }

    /// <summary>A loopback port nothing listens on (just now).</summary>
    public static int FreePort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    /// <summary>Listens on loopback; with <paramref name="tls"/>, each connection is a TLS server (RFC 5425) first.</summary>
    public static SiemListener Start(int port = 0, SslServerAuthenticationOptions? tls = null)
    {
        var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Start();
        var siem = new SiemListener(listener, tls);
        siem._accepting = siem.AcceptAsync();
        return siem;
    }

    /// <summary>The first connection is reset (RST, unread bytes discarded) once it has delivered <paramref name="messages"/> messages.</summary>
    public void DropFirstConnectionAfter(int messages) => _dropAfter = messages;

    /// <summary>Waits until every index below <paramref name="size"/> has arrived.</summary>
    public async Task WaitForIndexesAsync(long size, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var seen = Messages.Select(m => SyslogMessage.Parse(m).Index).Where(i => i < size).Distinct().Count();
            if (seen == size) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{seen} of {size} entries arrived; framing errors: {string.Join("; ", FramingErrors)}");
            await Task.Delay(100);
        }
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                List<string> mine = [];
                int dropAfter;
                lock (_lock)
                {
                    dropAfter = _byConnection.Count == 0 ? _dropAfter : -1;
                    _byConnection.Add(mine);
                    _readers.Add(ReadAsync(client, mine, dropAfter));
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task ReadAsync(TcpClient client, List<string> mine, int dropAfter)
    {
        using (client)
        {
            Stream transport = client.GetStream();
            if (_tls is not null)
            {
                var ssl = new SslStream(transport, leaveInnerStreamOpen: false);
                try
                {
                    await ssl.AuthenticateAsServerAsync(_tls, _stop.Token);
                }
                catch (Exception ex) when (ex is AuthenticationException or IOException or OperationCanceledException)
                {
                    lock (_lock) _handshakeFailures++;
                    await ssl.DisposeAsync();
                    return;
                }
                if (ssl.RemoteCertificate is { } presented)
                {
                    lock (_lock) _clientCertificates.Add(presented.Subject);
                }
                transport = ssl;
            }
            await using var stream = new BufferedStream(transport, 8192);
            try
            {
                while (true)
                {
                    var length = await ReadLengthAsync(stream);
                    if (length is null) return;
                    var buffer = new byte[length.Value];
                    await stream.ReadExactlyAsync(buffer, _stop.Token);
                    var message = Encoding.UTF8.GetString(buffer);
                    lock (_lock)
                    {
                        _messages.Add(message);
                        mine.Add(message);
                    }
                    if (dropAfter > 0 && mine.Count >= dropAfter)
                    {
                        client.Client.LingerState = new LingerOption(true, 0);
                        return;
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or EndOfStreamException)
            {
            }
            catch (FormatException ex)
            {
                lock (_lock) _framingErrors.Add(ex.Message);
            }
        }
    }

    /// <summary>MSG-LEN SP: a non-zero digit then digits, then one space; null at a clean end of stream.</summary>
    private async Task<int?> ReadLengthAsync(BufferedStream stream)
    {
        var digits = new StringBuilder();
        var one = new byte[1];
        while (true)
        {
            if (await stream.ReadAsync(one, _stop.Token) == 0)
            {
                return digits.Length == 0 ? null : throw new FormatException("the stream ended inside a frame's length");
            }
            var c = (char)one[0];
            if (c == ' ' && digits.Length > 0) return int.Parse(digits.ToString(), CultureInfo.InvariantCulture);
            if (c is < '0' or > '9' || (digits.Length == 0 && c == '0') || digits.Length > 9)
                throw new FormatException($"bad frame length byte 0x{(int)c:x2} after '{digits}'");
            digits.Append(c);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        Task[] readers;
        lock (_lock) readers = [.. _readers];
        await Task.WhenAll(readers);
        _stop.Dispose();
    }
}

/// <summary>An RFC 5424 message as Wardline sends it, with its CEF payload parsed back.</summary>
internal sealed partial record SyslogMessage(int Pri, string Timestamp, string Host, string App, string ProcId, string MsgId, long Index, CefEvent Cef)
{
    public static SyslogMessage Parse(string message)
    {
        var m = Shape().Match(message);
        if (!m.Success) throw new FormatException("not a Wardline syslog message: " + message);
        return new SyslogMessage(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), m.Groups[2].Value, m.Groups[3].Value, m.Groups[4].Value,
            m.Groups[5].Value, m.Groups[6].Value, long.Parse(m.Groups[7].Value, CultureInfo.InvariantCulture), CefEvent.Parse(m.Groups[8].Value));
    }

    [GeneratedRegex("""^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) \[wardline@32473 idx="(\d+)"\] (CEF:.*)$""", RegexOptions.Singleline)]
    private static partial Regex Shape();
}

/// <summary>A CEF event read back by the format's rules: seven header fields split on unescaped pipes, then key=value extensions.</summary>
internal sealed record CefEvent(string Vendor, string Product, string Version, string SignatureId, string Name, string Severity, IReadOnlyDictionary<string, string> Extensions)
{
    public string this[string key] => Extensions[key];

    public string? Get(string key) => Extensions.GetValueOrDefault(key);

    public static CefEvent Parse(string text)
    {
        if (!text.StartsWith("CEF:0|", StringComparison.Ordinal)) throw new FormatException("not CEF:0");
        var header = new List<string>();
        var field = new StringBuilder();
        var i = "CEF:0|".Length;
        for (; header.Count < 6; i++)
        {
            var c = text[i];
            if (c == '\\')
            {
                var next = text[++i];
                if (next is not ('\\' or '|')) throw new FormatException($"bad header escape \\{next}");
                field.Append(next);
            }
            else if (c == '|')
            {
                header.Add(field.ToString());
                field.Clear();
            }
            else if (c is '\r' or '\n')
            {
                throw new FormatException("a line break in the header");
            }
            else
            {
                field.Append(c);
            }
        }
        return new CefEvent(header[0], header[1], header[2], header[3], header[4], header[5], ParseExtensions(text[i..]));
    }

    /// <summary>A key is the word before an unescaped '='; its value runs to the space before the next key.</summary>
    private static Dictionary<string, string> ParseExtensions(string text)
    {
        var equals = new List<int>();
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '\\') i++;
            else if (text[i] == '=') equals.Add(i);
        }
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var k = 0; k < equals.Count; k++)
        {
            var keyStart = text.LastIndexOf(' ', equals[k]) + 1;
            var key = text[keyStart..equals[k]];
            var valueEnd = k + 1 < equals.Count ? text.LastIndexOf(' ', equals[k + 1]) : text.Length;
            Assert.Matches("^[A-Za-z0-9]+$", key);
            Assert.False(result.ContainsKey(key), $"key {key} twice");
            result[key] = Unescape(text[(equals[k] + 1)..valueEnd]);
        }
        return result;
    }

    private static string Unescape(string value)
    {
        var sb = new StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] != '\\')
            {
                sb.Append(value[i]);
                continue;
            }
            sb.Append(value[++i] switch
            {
                '\\' => '\\',
                '=' => '=',
                'n' => '\n',
                'r' => '\r',
                var other => throw new FormatException($"bad extension escape \\{other}"),
            });
        }
        return sb.ToString();
    }
}
