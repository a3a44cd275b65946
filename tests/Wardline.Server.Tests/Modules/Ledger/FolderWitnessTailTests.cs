using System.Security.Cryptography;
using System.Text;
using Wardline.Ledger;
using Wardline.Server.Modules.Ledger;

namespace Wardline.Server.Tests.Modules.Ledger;

/// <summary>
/// The start-up check reads the newest head from the end of a folder witness's heads.jsonl, which grows by a line every
/// interval for years; a full verification still reads every line.
/// </summary>
public sealed class FolderWitnessTailTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("wl-folder-witness-").FullName;

    private string HeadsFile => Path.Combine(_folder, "heads.jsonl");

    private static TreeHead Head(TreeHeadSigner signer, long size, DateTimeOffset at) => signer.Sign(size, SHA256.HashData(BitConverter.GetBytes(size)), at);

    [Fact]
    public async Task The_newest_head_is_the_largest_tree_near_the_end_and_is_found_without_reading_the_start_of_a_long_file()
    {
        using var signer = TreeHeadSigner.Create();
        var t0 = new DateTimeOffset(2026, 11, 30, 8, 0, 0, TimeSpan.Zero);
        using var witness = new FolderWitness(_folder);
        for (var i = 1; i <= 600; i++) await witness.PublishAsync(Head(signer, 10L * i, t0.AddSeconds(10 * i)), signer.PublicKey, CancellationToken.None);
        // Two servers publishing at once: the largest tree is not on the last line.
        await witness.PublishAsync(Head(signer, 6_020, t0.AddSeconds(6_020)), signer.PublicKey, CancellationToken.None);
        await witness.PublishAsync(Head(signer, 6_010, t0.AddSeconds(6_021)), signer.PublicKey, CancellationToken.None);
        Assert.True(new FileInfo(HeadsFile).Length > 2 * FolderWitness.TailBytes, $"{new FileInfo(HeadsFile).Length} bytes");

        var newest = await witness.NewestAsync(CancellationToken.None);
        Assert.Equal(6_020, newest?.Size);
        Assert.Equal(602, (await witness.HeadsAsync(CancellationToken.None)).Count);

        // A damaged first line: the full read names it, the start-up read never reaches it.
        var lines = await File.ReadAllLinesAsync(HeadsFile);
        await File.WriteAllLinesAsync(HeadsFile, ["{\"size\": \"damaged\"", .. lines.Skip(1)]);
        Assert.Equal(6_020, (await witness.NewestAsync(CancellationToken.None))?.Size);
        var full = await Assert.ThrowsAsync<LedgerFormatException>(() => witness.HeadsAsync(CancellationToken.None));
        Assert.Contains("line 1", full.Message, StringComparison.Ordinal);

        // A damaged line near the end is reported by the start-up read too.
        await File.AppendAllTextAsync(HeadsFile, "not a head\n", Encoding.UTF8);
        var tail = await Assert.ThrowsAsync<LedgerFormatException>(() => witness.NewestAsync(CancellationToken.None));
        Assert.Contains("near its end", tail.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_short_file_and_a_missing_one_read_whole()
    {
        using var signer = TreeHeadSigner.Create();
        using var witness = new FolderWitness(_folder);
        Assert.Null(await witness.NewestAsync(CancellationToken.None));

        await witness.PublishAsync(Head(signer, 3, DateTimeOffset.UtcNow), signer.PublicKey, CancellationToken.None);
        await witness.PublishAsync(Head(signer, 7, DateTimeOffset.UtcNow), signer.PublicKey, CancellationToken.None);

        Assert.Equal(7, (await witness.NewestAsync(CancellationToken.None))?.Size);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
