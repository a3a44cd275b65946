namespace Wardline.Backup.Tests.Stores;

/// <summary>The contract on a real local folder (file:///...).</summary>
public sealed class FolderStoreConformanceTests : BackupStoreConformance
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "wardline-folder-" + Guid.NewGuid().ToString("N"));

    protected override IBackupStore OpenFreshStore() => BackupTargets.Open(new Uri(_root).AbsoluteUri, new BackupTargetSettings());

    protected override bool ExpectedImmutability => false;

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Fact]
    public async Task Folder_target_leaves_no_temporary_file_behind_and_says_why_it_cannot_lock()
    {
        await Store.PutAsync("a/segment", new byte[] { 1, 2 }, DateTimeOffset.UtcNow.AddDays(1), CancellationToken.None);
        try
        {
            await Store.PutAsync("a/segment", new byte[] { 3 }, null, CancellationToken.None);
        }
        catch (BackupStoreException)
        {
        }

        Assert.Equal(["segment"], Directory.GetFiles(Path.Combine(_root, "a")).Select(Path.GetFileName));
        Assert.Contains("a folder cannot lock files against the account that writes it", Store.Immutability.Description, StringComparison.Ordinal);
    }
}
