using Wardline.Monitoring;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Monitoring;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Pipeline;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;

namespace Wardline.Server.Tests.Modules.Monitoring;

/// <summary>
/// Monitor blocks are a shortcut for replays and warm-ups, never a second truth: a period read through them is exactly the
/// period read from the ledger's rows, whatever its bounds, and a block that was changed, moved to another range or no longer
/// matches the ledger's subtree hash is passed over and its rows read instead.
/// </summary>
public abstract class MonitorBlocksConformance(StoreKind kind) : MonitoringServerTest(kind)
{
    private SqlDialect Dialect => Server.Service<SqlDialect>();

    private MonitorBlocks Blocks => Server.Service<MonitorBlocks>();

    [Fact]
    public async Task A_period_read_through_the_blocks_is_the_rows_period_at_any_bounds()
    {
        var size = await RecordAsync(2 * MonitorBlocks.Size + 700);

        Assert.Equal(size / MonitorBlocks.Size, await Blocks.BuildAsync(100, CancellationToken.None));
        Assert.Equal(0, await Blocks.BuildAsync(100, CancellationToken.None));
        Assert.Equal(2L, await ScalarAsync(Store.Options, "SELECT COUNT(*) FROM monitor_blocks") is { } n ? Convert.ToInt64(n) : -1);

        var all = await ReadAsync(0, size, null);
        Assert.Equal(size, all.Count);
        Assert.Equal(await LedgerEvents.ReadAsync(Dialect, -1, (int)size, CancellationToken.None), all);
        Assert.Contains(all, e => e.User == "dr.ünal" && e.Purpose is null && e.Status is null && e.Permitted == true);
        Assert.Contains(all, e => e.Status == 403 && e.Permitted == false);
        foreach (var (from, to) in new (long, long)[] { (0, size), (1, size - 1), (4095, 4097), (4096, 8192), (100, 8300), (8191, size), (-5, 3), (size - 2, size + 10), (5000, 5000) })
        {
            var expected = all.Where(e => e.Index >= from && e.Index < to).ToList();
            Assert.Equal(expected, await ReadAsync(from, to, Blocks));
        }
    }

    [Fact]
    public async Task A_changed_moved_or_unbound_block_is_passed_over_and_its_rows_read()
    {
        var size = await RecordAsync(3 * MonitorBlocks.Size + 10);
        Assert.Equal(3, await Blocks.BuildAsync(100, CancellationToken.None));
        var rows = await ReadAsync(0, size, null);

        // Block 0: one user's name changed inside the block, its tag kept (what someone hiding a colleague's reads would do).
        var data = (byte[])(await ScalarAsync(Store.Options, "SELECT data FROM monitor_blocks WHERE block = 0"))!;
        var at = data.AsSpan().IndexOf("dr.ünal"u8);
        Assert.True(at > 0);
        data[at + 1] = (byte)'x';
        await ExecAsync(Store.Options, "UPDATE monitor_blocks SET data = @d WHERE block = 0", ("@d", data));
        // Block 1: block 2's bytes and tag (a block of other entries under this range's number).
        await ExecAsync(Store.Options, "UPDATE monitor_blocks SET data = (SELECT data FROM monitor_blocks WHERE block = 2), tag = (SELECT tag FROM monitor_blocks WHERE block = 2) WHERE block = 1");
        // Block 2 intact: still used.
        Assert.Equal(rows, await ReadAsync(0, size, Blocks));

        // Block 2 no longer matches the ledger's subtree hash of its range (a store that grew another history).
        await ExecAsync(Store.Options, $"UPDATE ledger_nodes SET hash = @h WHERE level = {MonitorBlocks.Level} AND idx = 2", ("@h", new byte[32]));
        await using (var c = await Dialect.OpenAsync(CancellationToken.None))
        {
            Assert.Empty(await Blocks.ReadAsync(c, 0, 3, CancellationToken.None));
        }
        Assert.Equal(rows, await ReadAsync(0, size, Blocks));
    }

    [Fact]
    public async Task An_intact_block_is_read_from_the_block_not_the_rows()
    {
        var size = await RecordAsync(MonitorBlocks.Size + 1);
        Assert.Equal(1, await Blocks.BuildAsync(100, CancellationToken.None));
        await using (var c = await Dialect.OpenAsync(CancellationToken.None))
        {
            Assert.Equal([0L], (await Blocks.ReadAsync(c, 0, 1, CancellationToken.None)).Keys);
        }

        var before = await ReadAsync(0, size, null);

        // The rows are emptied of their user names behind the block's back; only a read that used the block still sees them.
        await ExecAsync(Store.Options, "UPDATE ledger_entries SET user_name = NULL WHERE idx < 4096");

        Assert.Equal(before, await ReadAsync(0, size, Blocks));
        Assert.All(await ReadAsync(0, MonitorBlocks.Size, null), e => Assert.Null(e.User));
        Assert.Contains(before, e => e.Index < MonitorBlocks.Size && e.User is not null);
    }

    [Fact]
    public async Task A_long_period_with_runs_of_missing_blocks_reads_every_entry_once_in_order()
    {
        // 18 blocks and a part: more than one batch (20,000 entries) and more than one look-up of blocks (16 at a time). Blocks
        // 5-10 are missing (a run of rows longer than a batch) and so is block 16 (the first of the second look-up).
        var size = await RecordAsync(18 * MonitorBlocks.Size + 50);
        Assert.Equal(18, await Blocks.BuildAsync(100, CancellationToken.None));
        await ExecAsync(Store.Options, "DELETE FROM monitor_blocks WHERE (block >= 5 AND block <= 10) OR block = 16");
        var all = await ReadAsync(0, size, null);
        Assert.Equal(Enumerable.Range(0, (int)size).Select(i => (long)i), all.Select(e => e.Index));

        foreach (var (from, to) in new (long, long)[] { (0, size), (4000, 70_000), (20_485, 16 * 4096 + 3), (5 * 4096, 11 * 4096), (16 * 4096 - 1, size) })
        {
            Assert.Equal(all.Where(e => e.Index >= from && e.Index < to).ToList(), await ReadAsync(from, to, Blocks));
        }
    }

    private async Task<List<MonitorEvent>> ReadAsync(long from, long to, MonitorBlocks? blocks)
    {
        var events = new List<MonitorEvent>();
        await foreach (var batch in LedgerEvents.ReadPeriodAsync(Dialect, from, to, blocks, CancellationToken.None)) events.AddRange(batch);
        return events;
    }

    /// <summary>Records <paramref name="count"/> access entries of a few users, patients and outcomes; returns the ledger's size.</summary>
    private async Task<long> RecordAsync(int count)
    {
        var recorder = Server.Service<LedgerRecorder>();
        string[] users = ["dr.ünal", "nurse.okafor", "dr.lee"];
        for (var n = 0; n < count; n += 500)
        {
            await recorder.RecordAsync([.. Enumerable.Range(n, Math.Min(500, count - n)).Select(i => new AccessRecord(
                DateTimeOffset.UtcNow.AddMilliseconds(i % 7 == 0 ? -5 : 0), users[i % 3], new FhirInteraction(FhirAction.Read, "Observation", $"obs-{i}"),
                i % 2 == 0 ? "decision" : "outcome", new AccessDecision(i % 5 != 0, "care-team-read", "on the care team"), i % 2 == 0 ? null : i % 5 == 0 ? 403 : 200,
                $"Observation/obs-{i}", $"corr-{i / 2}", "10.0.0." + (i % 4))
            {
                Patient = $"Patient/p-{i % 37}",
                Purpose = i % 3 == 0 ? null : "TREAT",
            })], CancellationToken.None);
        }
        return await LedgerEvents.SizeAsync(Dialect, CancellationToken.None);
    }
}

public sealed class MonitorBlocksOnSqlite() : MonitorBlocksConformance(StoreKind.Sqlite)
{
    [Fact]
    public async Task A_block_row_holding_text_or_a_number_where_bytes_belong_is_passed_over()
    {
        // SQLite keeps any type in a BLOB column: a database writer can put text where a tag belongs.
        var recorder = Server.Service<LedgerRecorder>();
        for (var n = 0; n < 3 * MonitorBlocks.Size; n += 512)
        {
            await recorder.RecordAsync([.. Enumerable.Range(n, 512).Select(i => new AccessRecord(DateTimeOffset.UtcNow, "dr.lee",
                new FhirInteraction(FhirAction.Read, "Observation", $"obs-{i}"), "decision", new AccessDecision(true, "care-team-read", "on the care team"),
                null, $"Observation/obs-{i}", $"corr-{i}", "10.0.0.1"))], CancellationToken.None);
        }
        var dialect = Server.Service<SqlDialect>();
        var blocks = Server.Service<MonitorBlocks>();
        Assert.Equal(3, await blocks.BuildAsync(10, CancellationToken.None));
        await ExecAsync(Store.Options, "UPDATE monitor_blocks SET tag = 'x' WHERE block = 0");
        await ExecAsync(Store.Options, "UPDATE monitor_blocks SET data = 7 WHERE block = 1");

        await using (var c = await dialect.OpenAsync(CancellationToken.None))
        {
            Assert.Equal([2L], (await blocks.ReadAsync(c, 0, 3, CancellationToken.None)).Keys);
        }
        var size = await LedgerEvents.SizeAsync(dialect, CancellationToken.None);
        var rows = new List<MonitorEvent>();
        await foreach (var batch in LedgerEvents.ReadPeriodAsync(dialect, 0, size, null, CancellationToken.None)) rows.AddRange(batch);
        var through = new List<MonitorEvent>();
        await foreach (var batch in LedgerEvents.ReadPeriodAsync(dialect, 0, size, blocks, CancellationToken.None)) through.AddRange(batch);
        Assert.Equal(rows, through);
    }
}

public sealed class MonitorBlocksOnPostgres() : MonitorBlocksConformance(StoreKind.Postgres);
