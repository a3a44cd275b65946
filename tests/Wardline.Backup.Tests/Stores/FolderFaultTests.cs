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
}
