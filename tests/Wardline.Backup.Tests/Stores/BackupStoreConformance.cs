using System.Security.Cryptography;
using System.Text;

namespace Wardline.Backup.Tests.Stores;

/// <summary>
/// The contract of <see cref="IBackupStore"/> (src/Wardline.Backup/IBackupStore.cs), run against every target:
/// each target's test class derives from this one and opens a fresh, empty target per test.
/// </summary>
public abstract class BackupStoreConformance : IAsyncLifetime
{
    private IBackupStore? _store;

    protected IBackupStore Store => _store ?? throw new InvalidOperationException("not prepared");

    /// <summary>A new, empty target (its own folder, container or bucket), not yet prepared.</summary>
    protected abstract IBackupStore OpenFreshStore();

    /// <summary>What <see cref="IBackupStore.Immutability"/> must report on this target.</summary>
    protected abstract bool ExpectedImmutability { get; }

    public async Task InitializeAsync()
    {
        _store = OpenFreshStore();
        await _store.PrepareAsync(CancellationToken.None);
    }

    public virtual async Task DisposeAsync()
    {
        if (_store is not null)
        {
            await _store.DisposeAsync();
        }
    }

    private static CancellationToken None => CancellationToken.None;

    private static byte[] RandomBytes(int length) => RandomNumberGenerator.GetBytes(length);

    [Fact]
    public async Task An_empty_object_reads_back_empty()
    {
        await Store.PutAsync("empty", ReadOnlyMemory<byte>.Empty, null, None);

        Assert.Empty(await Store.GetAsync("empty", None));
        Assert.Equal(0, (await Store.StatAsync("empty", None))!.Length);
    }

    [Fact]
    public async Task A_one_byte_object_reads_back_the_same_byte()
    {
        await Store.PutAsync("one", new byte[] { 0xA5 }, null, None);

        Assert.Equal(new byte[] { 0xA5 }, await Store.GetAsync("one", None));
    }

    [Fact]
    public async Task A_five_MiB_object_reads_back_byte_for_byte()
    {
        var content = RandomBytes(5 * 1024 * 1024);

        await Store.PutAsync("segments/big.seg", content, null, None);

        Assert.Equal(SHA256.HashData(content), SHA256.HashData(await Store.GetAsync("segments/big.seg", None)));
        Assert.Equal(content.Length, (await Store.StatAsync("segments/big.seg", None))!.Length);
    }

    [Fact]
    public async Task Names_with_sub_folders_and_every_allowed_character_round_trip()
    {
        const string name = "snapshots/2026-11-29/full_0001.v1-manifest";

        await Store.PutAsync(name, Encoding.UTF8.GetBytes("manifest"), null, None);

        Assert.Equal("manifest", Encoding.UTF8.GetString(await Store.GetAsync(name, None)));
    }

    [Fact]
    public async Task An_existing_object_is_never_overwritten()
    {
        await Store.PutAsync("segment", Encoding.UTF8.GetBytes("first"), null, None);

        var refused = await Assert.ThrowsAsync<BackupStoreException>(() => Store.PutAsync("segment", Encoding.UTF8.GetBytes("second"), null, None));

        Assert.Equal(BackupStoreErrorKind.AlreadyExists, refused.Kind);
        Assert.Equal("first", Encoding.UTF8.GetString(await Store.GetAsync("segment", None)));
    }

    [Fact]
    public async Task Reading_a_missing_object_is_NotFound_and_names_the_target()
    {
        var missing = await Assert.ThrowsAsync<BackupStoreException>(() => Store.GetAsync("no-such-object", None));

        Assert.Equal(BackupStoreErrorKind.NotFound, missing.Kind);
        Assert.Contains(Store.Display, missing.Message, StringComparison.Ordinal);
        Assert.Contains("no-such-object", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_name_that_only_begins_other_names_is_no_object()
    {
        await Store.PutAsync("dir/inside", new byte[] { 1 }, null, None);

        var missing = await Assert.ThrowsAsync<BackupStoreException>(() => Store.GetAsync("dir", None));
        Assert.Equal(BackupStoreErrorKind.NotFound, missing.Kind);
        Assert.Null(await Store.StatAsync("dir", None));
        await Store.DeleteAsync("dir", None);

        Assert.Equal(new byte[] { 1 }, await Store.GetAsync("dir/inside", None));
    }

    [Fact]
    public async Task Stat_gives_the_length_and_time_of_an_object_and_null_for_a_missing_one()
    {
        var before = DateTimeOffset.UtcNow.AddMinutes(-5);
        await Store.PutAsync("a/stat", RandomBytes(1234), null, None);

        var info = await Store.StatAsync("a/stat", None);

        Assert.NotNull(info);
        Assert.Equal("a/stat", info.Name);
        Assert.Equal(1234, info.Length);
        Assert.InRange(info.LastModified!.Value, before, DateTimeOffset.UtcNow.AddMinutes(5));
        Assert.Null(await Store.StatAsync("a/missing", None));
    }

    [Fact]
    public async Task List_returns_every_object_under_a_prefix_in_ordinal_order()
    {
        // Written out of order; '-' < '.' < '/' < '0' < '_' < 'a' in ordinal order, which a folder walk or a
        // culture-aware sort would get wrong.
        string[] names = ["seg/b", "seg/a_1", "seg/a-1", "seg/a.1", "seg/a/x", "seg/a0", "other/z", "seg-not-under"];
        foreach (var name in names.Reverse())
        {
            await Store.PutAsync(name, Encoding.UTF8.GetBytes(name), null, None);
        }

        var listed = await ToListAsync(Store.ListAsync("seg/", None));

        Assert.Equal(["seg/a-1", "seg/a.1", "seg/a/x", "seg/a0", "seg/a_1", "seg/b"], listed.Select(i => i.Name));
        Assert.Equal("seg/a/x".Length, listed.Single(i => i.Name == "seg/a/x").Length);
    }

    [Fact]
    public async Task A_prefix_may_end_inside_a_name_and_an_empty_prefix_lists_everything()
    {
        foreach (var name in new[] { "seg/0001", "seg/0002", "seg/0010", "seg/1000" })
        {
            await Store.PutAsync(name, new byte[] { 1 }, null, None);
        }

        var partial = await ToListAsync(Store.ListAsync("seg/000", None));
        var everything = await ToListAsync(Store.ListAsync("", None));
        var nothing = await ToListAsync(Store.ListAsync("nothing/", None));

        Assert.Equal(["seg/0001", "seg/0002"], partial.Select(i => i.Name));
        Assert.Equal(["seg/0001", "seg/0002", "seg/0010", "seg/1000"], everything.Select(i => i.Name));
        Assert.Empty(nothing);
    }

    [Fact]
    public async Task Delete_removes_an_object_and_deleting_it_again_is_no_error()
    {
        await Store.PutAsync("old/segment", new byte[] { 1, 2, 3 }, null, None);

        await Store.DeleteAsync("old/segment", None);
        await Store.DeleteAsync("old/segment", None);
        await Store.DeleteAsync("never/existed", None);

        Assert.Null(await Store.StatAsync("old/segment", None));
        Assert.Empty(await ToListAsync(Store.ListAsync("old/", None)));
    }

    [Fact]
    public async Task A_deleted_name_can_be_written_again()
    {
        await Store.PutAsync("reused", new byte[] { 1 }, null, None);
        await Store.DeleteAsync("reused", None);

        await Store.PutAsync("reused", new byte[] { 2 }, null, None);

        Assert.Equal(new byte[] { 2 }, await Store.GetAsync("reused", None));
    }

    [Theory]
    [InlineData("")]
    [InlineData("/absolute")]
    [InlineData("trailing/")]
    [InlineData("double//slash")]
    [InlineData("../escape")]
    [InlineData("a/../b")]
    [InlineData("./a")]
    [InlineData("Upper")]
    [InlineData("with space")]
    [InlineData("back\\slash")]
    [InlineData("caf\u00e9")]
    [InlineData("tilde~")]
    [InlineData("nul\0")]
    public async Task Names_outside_the_rules_are_refused_for_every_operation(string name)
    {
        await Assert.ThrowsAsync<ArgumentException>(() => Store.PutAsync(name, new byte[] { 1 }, null, None));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.GetAsync(name, None));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.StatAsync(name, None));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.DeleteAsync(name, None));
        Assert.Empty(await ToListAsync(Store.ListAsync("", None)));
    }

    [Fact]
    public async Task Names_at_the_length_limits_are_stored_and_longer_ones_refused()
    {
        var longestSegment = new string('s', 200);
        var longestName = string.Join('/', Enumerable.Repeat(new string('n', 101), 5)) + "/xy"; // 512 characters

        await Store.PutAsync(longestSegment, new byte[] { 1 }, null, None);
        await Store.PutAsync(longestName, new byte[] { 2 }, null, None);

        Assert.Equal(512, longestName.Length);
        Assert.Equal(new byte[] { 1 }, await Store.GetAsync(longestSegment, None));
        Assert.Equal(new byte[] { 2 }, await Store.GetAsync(longestName, None));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.PutAsync(longestSegment + "s", new byte[] { 1 }, null, None));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.PutAsync(longestName + "z", new byte[] { 1 }, null, None));
    }

    [Fact]
    public async Task List_pages_through_more_objects_than_one_answer_of_the_target_holds()
    {
        // S3 answers at most 1,000 keys a page; a list must follow the continuation.
        var names = Enumerable.Range(0, 1100).Select(i => $"many/{i:d5}").ToList();
        await Parallel.ForEachAsync(names, new ParallelOptions { MaxDegreeOfParallelism = 16 },
            async (name, ct) => await Store.PutAsync(name, new byte[] { 1 }, null, ct));

        var listed = await ToListAsync(Store.ListAsync("many/", None));

        Assert.Equal(names, listed.Select(i => i.Name));
    }

    [Theory]
    [InlineData("/abs")]
    [InlineData("../")]
    [InlineData("a//")]
    [InlineData("Upper")]
    public async Task List_prefixes_outside_the_rules_are_refused(string prefix)
    {
        await Assert.ThrowsAsync<ArgumentException>(() => ToListAsync(Store.ListAsync(prefix, None)));
    }

    [Fact]
    public async Task Of_racing_puts_of_one_name_exactly_one_wins_and_the_others_are_told_AlreadyExists()
    {
        var contents = Enumerable.Range(0, 8).Select(i => Encoding.UTF8.GetBytes($"writer-{i}-" + new string((char)('a' + i), 4000))).ToArray();

        var outcomes = await Task.WhenAll(contents.Select(async content =>
        {
            await Task.Yield();
            try
            {
                await Store.PutAsync("raced", content, null, None);
                return (Content: content, Error: (BackupStoreException?)null);
            }
            catch (BackupStoreException e)
            {
                return (Content: content, Error: e);
            }
        }));

        var winner = Assert.Single(outcomes, o => o.Error is null);
        Assert.All(outcomes.Where(o => o.Error is not null), o => Assert.Equal(BackupStoreErrorKind.AlreadyExists, o.Error!.Kind));
        Assert.Equal(winner.Content, await Store.GetAsync("raced", None));
    }

    [Fact]
    public async Task A_cancelled_put_leaves_no_object()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Store.PutAsync("cancelled", RandomBytes(1024 * 1024), null, cancelled.Token));

        Assert.Null(await Store.StatAsync("cancelled", None));
        Assert.Empty(await ToListAsync(Store.ListAsync("", None)));
    }

    [Fact]
    public async Task A_put_cancelled_while_it_writes_leaves_no_object_or_the_whole_object()
    {
        var content = RandomBytes(5 * 1024 * 1024);

        // Cancelled at moments spread over the upload, so that some land while bytes are on their way
        // (s3rver kept a torn object for some of these before puts ran to their end once started).
        for (var delay = 0; delay <= 60; delay += 5)
        {
            var name = $"cancelled/{delay:d3}";
            using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(delay));
            try
            {
                await Store.PutAsync(name, content, null, cancel.Token);
            }
            catch (OperationCanceledException)
            {
            }

            // Cancelling cannot recall bytes the target already committed; what the contract forbids is a torn object.
            var info = await Store.StatAsync(name, None);
            if (info is not null)
            {
                Assert.Equal(content.Length, info.Length);
                Assert.Equal(SHA256.HashData(content), SHA256.HashData(await Store.GetAsync(name, None)));
            }
        }
        Assert.All(await ToListAsync(Store.ListAsync("", None)), i => Assert.StartsWith("cancelled/", i.Name, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Immutability_is_reported_in_plain_words_after_prepare()
    {
        Assert.Equal(ExpectedImmutability, Store.Immutability.Supported);
        if (!ExpectedImmutability)
        {
            Assert.StartsWith("not supported by this target", Store.Immutability.Description, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_retention_date_is_applied_only_where_the_target_can_lock()
    {
        var until = DateTimeOffset.UtcNow.AddDays(1);

        await Store.PutAsync("retained", new byte[] { 7 }, until, None);

        var info = await Store.StatAsync("retained", None);
        Assert.NotNull(info);
        if (ExpectedImmutability)
        {
            Assert.NotNull(info.LockedUntil);
        }
        else
        {
            Assert.Null(info.LockedUntil);
        }
    }

    [Fact]
    public async Task Prepare_may_run_again_on_a_prepared_target_and_keeps_its_objects()
    {
        await Store.PutAsync("kept", new byte[] { 9 }, null, None);

        await Store.PrepareAsync(None);

        Assert.Equal(new byte[] { 9 }, await Store.GetAsync("kept", None));
    }

    protected static async Task<List<BackupObjectInfo>> ToListAsync(IAsyncEnumerable<BackupObjectInfo> items)
    {
        var list = new List<BackupObjectInfo>();
        await foreach (var item in items)
        {
            list.Add(item);
        }
        return list;
    }
}
