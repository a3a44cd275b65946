using Wardline.Backup.Tests.Infrastructure;

namespace Wardline.Backup.Tests.Stores;

/// <summary>Folder targets on a full file system and on a folder the kernel refuses to write into.</summary>
public sealed class FolderFaultTests
{
    [Fact]
    public async Task Folder_target_on_a_full_file_system_is_OutOfSpace_and_leaves_no_partial_object()
    {
        using var tiny = new TinyFilesystem(kibibytes: 64);
        await using var store = BackupTargets.Open(new Uri(tiny.Path).AbsoluteUri, new BackupTargetSettings());
        await store.PrepareAsync(CancellationToken.None);

        var failure = await Assert.ThrowsAsync<BackupStoreException>(() => store.PutAsync("segment", new byte[256 * 1024], null, CancellationToken.None));

        Assert.Equal(BackupStoreErrorKind.OutOfSpace, failure.Kind);
        Assert.Null(await store.StatAsync("segment", CancellationToken.None));
        Assert.Empty(Directory.GetFiles(tiny.Path, "*", SearchOption.AllDirectories));
        // The space the failed put took is given back: a small object still fits.
        await store.PutAsync("small", new byte[1024], null, CancellationToken.None);
    }

    [Fact]
    public async Task Folder_target_that_cannot_be_written_is_AccessDenied()
    {
        using var readOnly = new ReadOnlyFolder();
        await using var store = BackupTargets.Open(new Uri(readOnly.Path).AbsoluteUri, new BackupTargetSettings());

        var prepare = await Assert.ThrowsAsync<BackupStoreException>(() => store.PrepareAsync(CancellationToken.None));
        var put = await Assert.ThrowsAsync<BackupStoreException>(() => store.PutAsync("segment", new byte[] { 1 }, null, CancellationToken.None));

        Assert.Equal(BackupStoreErrorKind.AccessDenied, prepare.Kind);
        Assert.Equal(BackupStoreErrorKind.AccessDenied, put.Kind);
        Assert.Empty(Directory.GetFiles(readOnly.Path));
    }

    [Fact]
    public async Task Folder_target_refuses_a_name_whose_folder_is_an_object()
    {
        var root = Directory.CreateTempSubdirectory("wardline-clash-").FullName;
        try
        {
            await using var store = BackupTargets.Open(new Uri(root).AbsoluteUri, new BackupTargetSettings());
            await store.PutAsync("a", new byte[] { 1 }, null, CancellationToken.None);

            var clash = await Assert.ThrowsAsync<BackupStoreException>(() => store.PutAsync("a/b", new byte[] { 2 }, null, CancellationToken.None));

            Assert.Equal(BackupStoreErrorKind.Failed, clash.Kind);
            Assert.Equal(new byte[] { 1 }, await store.GetAsync("a", CancellationToken.None));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task Folder_target_never_follows_a_symbolic_link_to_list_read_write_or_delete_outside_it()
    {
        var root = Directory.CreateTempSubdirectory("wardline-links-").FullName;
        var outside = Directory.CreateTempSubdirectory("wardline-outside-").FullName;
        try
        {
            // Whoever can write to the target links its leases folder to the server's data folder, and a segment to a file there.
            var secret = Path.Combine(outside, "keyring.json");
            File.WriteAllText(secret, "the server's keyring");
            Directory.CreateSymbolicLink(Path.Combine(root, "leases"), outside);
            Directory.CreateDirectory(Path.Combine(root, "segments", "run"));
            File.CreateSymbolicLink(Path.Combine(root, "segments", "run", "ledger-0.seg"), secret);
            await using var store = BackupTargets.Open(new Uri(root).AbsoluteUri, new BackupTargetSettings());

            var list = await Assert.ThrowsAsync<BackupStoreException>(async () => { await foreach (var _ in store.ListAsync("leases/", CancellationToken.None)) { } });
            var delete = await Assert.ThrowsAsync<BackupStoreException>(() => store.DeleteAsync("leases/keyring.json", CancellationToken.None));
            var put = await Assert.ThrowsAsync<BackupStoreException>(() => store.PutAsync("leases/prune-1.json", new byte[] { 1 }, null, CancellationToken.None));
            var get = await Assert.ThrowsAsync<BackupStoreException>(() => store.GetAsync("segments/run/ledger-0.seg", CancellationToken.None));
            var segments = new List<string>();
            await foreach (var o in store.ListAsync("segments/", CancellationToken.None)) segments.Add(o.Name);

            Assert.All([list, delete, put, get], e => Assert.Contains("is a symbolic link", e.Message, StringComparison.Ordinal));
            Assert.Empty(segments);
            Assert.Equal("the server's keyring", File.ReadAllText(secret));
            Assert.Equal(["keyring.json"], Directory.GetFiles(outside).Select(Path.GetFileName));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
            Directory.Delete(outside, recursive: true);
        }
    }

    [Fact]
    public async Task Folder_target_reads_a_named_pipe_planted_as_an_object_as_empty_instead_of_hanging()
    {
        var root = Directory.CreateTempSubdirectory("wardline-fifo-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "manifests"));
            using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", Path.Combine(root, "manifests", "planted.json")))
            {
                await mkfifo.WaitForExitAsync();
                Assert.Equal(0, mkfifo.ExitCode);
            }
            await using var store = BackupTargets.Open(new Uri(root).AbsoluteUri, new BackupTargetSettings());

            var read = store.GetAsync("manifests/planted.json", CancellationToken.None);

            Assert.Same(read, await Task.WhenAny(read, Task.Delay(TimeSpan.FromSeconds(30))));
            Assert.Empty(await read);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
