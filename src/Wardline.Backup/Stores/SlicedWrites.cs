using Microsoft.Win32.SafeHandles;

namespace Wardline.Backup.Stores;

/// <summary>
/// Writes a large buffer to a file in 256 KiB system calls instead of one. Linux (6.18, ext4 here) caches a file
/// written in large calls in large folios, and every later 4 KiB write into such a folio pays for the whole folio:
/// random 4 KiB writes cost 25-40 us into a file written 8-64 MB at a time, 5-7 us into one written 64-256 KiB at a
/// time (measured 2026-11-29, docs/benchmarks.md). A restored database image is such a file: SQLite then applies the
/// incremental backups to it page by page. The large calls were also never faster to make.
/// </summary>
internal static class SlicedWrites
{
    public const int Slice = 256 * 1024;

    public static async ValueTask WriteAsync(SafeFileHandle file, ReadOnlyMemory<byte> bytes, long offset, CancellationToken ct)
    {
        for (var at = 0; at < bytes.Length; at += Slice)
        {
            await RandomAccess.WriteAsync(file, bytes.Slice(at, Math.Min(Slice, bytes.Length - at)), offset + at, ct);
        }
    }
}
