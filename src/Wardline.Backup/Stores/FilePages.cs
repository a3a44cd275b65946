using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Wardline.Backup.Stores;

/// <summary>
/// How backup files meet the kernel's page cache, measured on this project's Linux hosts (6.18, ext4, a virtual
/// machine) on 2026-11-29 (docs/benchmarks.md):
/// <list type="bullet">
/// <item><see cref="WriteAsync"/> writes a large buffer in 256 KiB calls instead of one. The kernel caches a file
/// written in large calls in large folios, and every later 4 KiB write into such a folio pays for the whole folio:
/// random 4 KiB writes cost 25-40 us into a file written 8-64 MB at a time, 5-7 us into one written 64-256 KiB at a time.
/// A restored database image is such a file: SQLite then applies the incremental backups to it page by page.</item>
/// <item><see cref="Drop"/> tells the kernel that a file's pages (written and flushed, or read) are not needed again.
/// Backup objects are written or read once; left in the cache they take fresh memory for every next file, and the
/// first touch of fresh memory is the dearest part of a write here (a 1.5 GB backup's objects: 2.3 s of kernel time
/// kept, 0.3 s dropped). Dropped pages are reused at once by the next ones.</item>
/// </list>
/// </summary>
internal static class FilePages
{
    public const int Slice = 256 * 1024;

    public static async ValueTask WriteAsync(SafeFileHandle file, ReadOnlyMemory<byte> bytes, long offset, CancellationToken ct)
    {
        for (var at = 0; at < bytes.Length; at += Slice)
        {
            await RandomAccess.WriteAsync(file, bytes.Slice(at, Math.Min(Slice, bytes.Length - at)), offset + at, ct);
        }
    }

    /// <summary>
    /// Reads <paramref name="into"/>'s length from <paramref name="offset"/> (fewer only where the file ends first; the
    /// count read is returned), then drops those pages from the cache: for a file read once.
    /// </summary>
    public static async ValueTask<int> ReadOnceAsync(SafeFileHandle file, Memory<byte> into, long offset, CancellationToken ct)
    {
        var read = await ReadAsync(file, into, offset, ct);
        Drop(file, offset, read);
        return read;
    }

    /// <summary>Reads <paramref name="into"/>'s length from <paramref name="offset"/> (fewer only where the file ends first; the count read is returned).</summary>
    public static async ValueTask<int> ReadAsync(SafeFileHandle file, Memory<byte> into, long offset, CancellationToken ct)
    {
        var read = 0;
        while (read < into.Length)
        {
            var n = await RandomAccess.ReadAsync(file, into[read..], offset + read, ct);
            if (n == 0) break;
            read += n;
        }
        return read;
    }

    /// <summary>
    /// Advises the kernel to drop the cached pages of <paramref name="length"/> bytes from <paramref name="offset"/>
    /// (0 = to the end). Only clean pages go, so call it after a flush or a read. Advice only: where the call does not
    /// exist or fails, nothing changes but memory use.
    /// </summary>
    public static void Drop(SafeFileHandle file, long offset = 0, long length = 0)
    {
        if (!OperatingSystem.IsLinux() || file.IsInvalid || file.IsClosed) return;
        var added = false;
        try
        {
            file.DangerousAddRef(ref added);
            _ = Libc.Fadvise((int)file.DangerousGetHandle(), offset, length, 4 /* POSIX_FADV_DONTNEED */);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
        finally
        {
            if (added) file.DangerousRelease();
        }
    }

    private static class Libc
    {
        [DllImport("libc", EntryPoint = "posix_fadvise")]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int Fadvise(int fd, long offset, long length, int advice);
    }
}
