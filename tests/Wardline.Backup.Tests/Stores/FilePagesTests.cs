using Wardline.Backup.Stores;

namespace Wardline.Backup.Tests.Stores;

public sealed class FilePagesTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("wardline-sliced-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(FilePages.Slice)]
    [InlineData(3 * FilePages.Slice + 123)]
    public async Task Every_byte_lands_at_its_offset_whatever_the_length(int length)
    {
        var bytes = new byte[length];
        new Random(length).NextBytes(bytes);
        var path = Path.Combine(_folder, $"file-{length}");
        using (var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write))
        {
            await FilePages.WriteAsync(file, new byte[7], 0, CancellationToken.None);
            await FilePages.WriteAsync(file, bytes, 7, CancellationToken.None);
        }

        var back = await File.ReadAllBytesAsync(path);

        Assert.Equal(7 + length, back.Length);
        Assert.Equal(bytes, back[7..]);
    }

    [Fact]
    public async Task A_cancelled_write_stops_before_its_next_slice()
    {
        var path = Path.Combine(_folder, "cancelled");
        using var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => FilePages.WriteAsync(file, new byte[4 * FilePages.Slice], 0, cancelled.Token).AsTask());

        Assert.True(new FileInfo(path).Length < 4 * FilePages.Slice);
    }

    [Fact]
    public async Task Dropping_a_files_pages_from_the_cache_loses_none_of_its_bytes()
    {
        var bytes = new byte[2 * FilePages.Slice + 5];
        new Random(3).NextBytes(bytes);
        var path = Path.Combine(_folder, "dropped");
        using (var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite))
        {
            await FilePages.WriteAsync(file, bytes, 0, CancellationToken.None);
            RandomAccess.FlushToDisk(file);
            FilePages.Drop(file, FilePages.Slice, FilePages.Slice);
            FilePages.Drop(file);
        }

        Assert.Equal(bytes, await File.ReadAllBytesAsync(path));
    }

    [Fact]
    public void Dropping_the_pages_of_a_closed_file_is_no_error()
    {
        var path = Path.Combine(_folder, "closed");
        var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write);
        file.Dispose();

        FilePages.Drop(file);
    }

    [Fact]
    public async Task Reading_once_gives_the_range_asked_for_and_stops_short_only_at_the_end_of_the_file()
    {
        var bytes = new byte[FilePages.Slice + 100];
        new Random(5).NextBytes(bytes);
        var path = Path.Combine(_folder, "read-once");
        await File.WriteAllBytesAsync(path, bytes);
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read);

        var middle = new byte[FilePages.Slice];
        var tail = new byte[200];

        Assert.Equal(middle.Length, await FilePages.ReadOnceAsync(file, middle, 50, CancellationToken.None));
        Assert.Equal(bytes[50..(50 + FilePages.Slice)], middle);
        Assert.Equal(150, await FilePages.ReadOnceAsync(file, tail, FilePages.Slice - 50, CancellationToken.None));
        Assert.Equal(bytes[(FilePages.Slice - 50)..], tail[..150]);
    }
}
