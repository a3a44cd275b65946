using System.Buffers.Binary;
using System.Data.Common;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Wardline.Crypto;
using Wardline.Monitoring;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Monitoring;

/// <summary>
/// The ledger's entries as the detections see them, packed a block at a time (<see cref="EventBlock"/>,
/// docs/formats/monitor-block.md), so that a replay or a warm-up reads a period at a small part of the cost of the rows.
/// A block is derived data and only a shortcut: block <c>k</c> holds the entries of indexes [k * 4096, (k + 1) * 4096), one
/// complete subtree of the ledger's tree (a stored node at level 12), and its tag (HMAC under a key derived from the keyring)
/// covers its number, that subtree's hash and its bytes. A block is used only when the tag verifies against the hash the
/// ledger holds now, so a block that was changed, or built from another history (a store restored to an earlier point that
/// then grew differently), or made without the keyring, is passed over and its rows are read instead. The streaming detector
/// builds blocks behind the ledger's edge (<see cref="BuildAsync"/>); nothing else writes them.
/// </summary>
internal sealed class MonitorBlocks(SqlDialect dialect, RecordKeys keys, ILogger<MonitorBlocks> logger)
{
    /// <summary>Entries a block holds: 2^<see cref="Level"/>.</summary>
    public const int Size = 4096;

    /// <summary>The level of the ledger's stored subtree hashes whose nodes are exactly the blocks' ranges.</summary>
    public const int Level = 12;

    public const string Purpose = "monitor.block";

    private const int HashLength = 32;

    private static readonly byte[] Label = "wardline monitor block v1\0"u8.ToArray();

    // The key derives from the keyring's index key, which rotation keeps: a reloaded keyring gives the same key.
    private readonly ContentAuthenticator _authenticator = new(keys.Keyring, Purpose);

    /// <summary>
    /// Builds up to <paramref name="max"/> blocks for complete ranges after the highest block built (from the first range on an
    /// empty table), reading their rows; returns how many it built. Blocks are built in ledger order, one transaction each.
    /// </summary>
    public async Task<int> BuildAsync(int max, CancellationToken ct)
    {
        long next, complete;
        await using (var c = await dialect.OpenAsync(ct))
        {
            next = await ScalarAsync(c, "SELECT MAX(block) FROM monitor_blocks", ct) is { } last ? last + 1 : 0;
            complete = await ScalarAsync(c, $"SELECT MAX(idx) FROM ledger_nodes WHERE level = {Level}", ct) ?? -1;
        }
        var end = Math.Min(complete + 1, next + max);
        if (end <= next) return 0;
        var built = 0;
        var pending = new List<MonitorEvent>(Size);
        await foreach (var batch in LedgerEvents.ReadPeriodAsync(dialect, next * Size, end * Size, null, ct))
        {
            foreach (var e in batch)
            {
                if (e.Index != (next + built) * Size + pending.Count)
                {
                    // Not the contiguous entries a complete subtree implies: build nothing from here rather than a wrong block.
                    MonitoringLog.BlockGap(logger, next + built, e.Index);
                    return built;
                }
                pending.Add(e);
                if (pending.Count < Size) continue;
                await StoreAsync(next + built, pending, ct);
                built++;
                pending.Clear();
            }
        }
        return built;
    }

    private async Task StoreAsync(long block, List<MonitorEvent> events, CancellationToken ct)
    {
        var data = EventBlock.Encode(events);
        await using var c = await dialect.OpenAsync(ct);
        var subtree = await NodeAsync(c, block, ct) ?? throw new InvalidOperationException($"The ledger holds no subtree hash for monitor block {block}.");
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "INSERT INTO monitor_blocks (block, data, tag, built) VALUES (@b, @d, @t, @at) ON CONFLICT (block) DO NOTHING";
        Migrations.AddParam(cmd, "@b", block);
        Migrations.AddParam(cmd, "@d", data);
        Migrations.AddParam(cmd, "@t", Tag(block, subtree, data));
        Migrations.AddParam(cmd, "@at", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// The blocks numbered [<paramref name="from"/>, <paramref name="to"/>) that are present and whose tag verifies against the
    /// ledger's subtree hash, by number, as their bytes; each one that does not verify is logged and left out.
    /// </summary>
    public async Task<Dictionary<long, byte[]>> ReadAsync(DbConnection c, long from, long to, CancellationToken ct)
    {
        var found = new Dictionary<long, byte[]>();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT b.block, b.data, b.tag, n.hash FROM monitor_blocks b JOIN ledger_nodes n ON n.level = {Level} AND n.idx = b.block " +
            "WHERE b.block >= @from AND b.block < @to ORDER BY b.block";
        Migrations.AddParam(cmd, "@from", from);
        Migrations.AddParam(cmd, "@to", to);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            // Whatever the columns hold (SQLite keeps any type in a BLOB column), only bytes that verify are used.
            var block = r.GetInt64(0);
            if (r.GetValue(1) is byte[] data && r.GetValue(2) is byte[] tag && r.GetValue(3) is byte[] subtree && Verify(block, subtree, data, tag)) found[block] = data;
            else MonitoringLog.BlockRejected(logger, block);
        }
        return found;
    }

    /// <summary>A block whose tag verified and whose bytes do not decode: a fault of the writer's, logged; its rows are read.</summary>
    public void Undecodable(long block) => MonitoringLog.BlockUndecodable(logger, block);

    private bool Verify(long block, byte[] subtree, byte[] data, byte[] tag) => subtree.Length == HashLength && _authenticator.Verify(Tagged(block, subtree, data), tag);

    private byte[] Tag(long block, byte[] subtree, byte[] data) =>
        subtree.Length == HashLength ? _authenticator.Tag(Tagged(block, subtree, data)) : throw new InvalidOperationException($"The ledger's subtree hash for monitor block {block} is not {HashLength} bytes.");

    /// <summary>What a tag covers: a label, the block's number (8 bytes, big-endian), the subtree's hash (32 bytes: a hash of another length is refused, so the parts cannot shift), the block's bytes.</summary>
    private static byte[] Tagged(long block, byte[] subtree, byte[] data)
    {
        var buffer = new byte[Label.Length + 8 + subtree.Length + data.Length];
        Label.CopyTo(buffer, 0);
        BinaryPrimitives.WriteInt64BigEndian(buffer.AsSpan(Label.Length), block);
        subtree.CopyTo(buffer, Label.Length + 8);
        data.CopyTo(buffer, Label.Length + 8 + subtree.Length);
        return buffer;
    }

    private static async Task<byte[]?> NodeAsync(DbConnection c, long block, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT hash FROM ledger_nodes WHERE level = {Level} AND idx = @i";
        Migrations.AddParam(cmd, "@i", block);
        return await cmd.ExecuteScalarAsync(ct) as byte[];
    }

    private static async Task<long?> ScalarAsync(DbConnection c, string sql, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return await cmd.ExecuteScalarAsync(ct) is { } v and not DBNull ? Convert.ToInt64(v, CultureInfo.InvariantCulture) : null;
    }
}
