using Wardline.Backup.Stores;

namespace Wardline.Backup.Tests.Stores;

public sealed class SlicedWritesTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("wardline-sliced-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(SlicedWrites.Slice)]
    [InlineData(3 * SlicedWrites.Slice + 123)]
    public async Task Every_byte_lands_at_its_offset_whatever_the_length(int length)
    {
        var bytes = new byte[length];
        new Random(length).NextBytes(bytes);
        var path = Path.Combine(_folder, $"file-{length}");
        using (var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write))
        {
            await SlicedWrites.WriteAsync(file, new byte[7], 0, CancellationToken.None);
            await SlicedWrites.WriteAsync(file, bytes, 7, CancellationToken.None);
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

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => SlicedWrites.WriteAsync(file, new byte[4 * SlicedWrites.Slice], 0, cancelled.Token).AsTask());

        Assert.True(new FileInfo(path).Length < 4 * SlicedWrites.Slice);
    }
}
