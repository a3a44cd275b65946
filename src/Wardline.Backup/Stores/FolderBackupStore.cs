using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Wardline.Backup.Stores;

/// <summary>
/// A local or NFS folder (<c>file:///path</c>). An object is one file under the root; a name's '/' are sub-folders.
/// A put writes a temporary file beside the target name (its name holds a '~', which no object name can, so
/// listings never show it), flushes it to disk, then moves it under its name without overwrite (a hard link
/// on Linux, which the file system refuses atomically when the name exists, NFS included), and flushes the
/// folder so the new name survives a power cut. A half-written object therefore never appears under its name.
/// Temporary files left by a crash are harmless and can be removed by hand.
/// </summary>
internal sealed class FolderBackupStore : IBackupStore
{
    private const string TempMarker = ".~partial-";
    private readonly string _root;

    public FolderBackupStore(string root, string display)
    {
        _root = Path.GetFullPath(root);
        Display = display;
    }

    public string Display { get; }

    public BackupImmutability Immutability { get; } = new(
        false,
        "not supported by this target (folder): a folder cannot lock files against the account that writes it; "
        + "mount it from read-only/WORM-capable storage if you need that");

    public async Task PrepareAsync(CancellationToken ct)
    {
        await Run("prepare", null, () =>
        {
            Directory.CreateDirectory(_root);
            // Writable? A probe file that is removed again; it carries the temporary marker so it is never listed.
            var probe = Path.Combine(_root, TempMarker + "probe-" + Guid.NewGuid().ToString("N"));
            try
            {
                using (var stream = new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                {
                    stream.WriteByte(0);
                    stream.Flush(flushToDisk: true);
                }
            }
            finally
            {
                File.Delete(probe);
            }
            return Task.CompletedTask;
        }, ct);
    }

    public async Task PutAsync(string name, ReadOnlyMemory<byte> content, DateTimeOffset? retainUntil, CancellationToken ct)
    {
        ObjectNames.Validate(name);
        var path = PathOf(name);
        await Run("put", name, async () =>
        {
            if (File.Exists(path))
            {
                throw AlreadyExists(name);
            }
            if (Directory.Exists(path))
            {
                throw FolderClash(name);
            }
            var folder = Path.GetDirectoryName(path)!;
            var newFolders = !Directory.Exists(folder);
            try
            {
                Directory.CreateDirectory(folder);
            }
            catch (IOException) when (!Directory.Exists(folder))
            {
                throw FolderClash(name);
            }
            var temp = Path.Combine(folder, Path.GetFileName(path) + TempMarker + Guid.NewGuid().ToString("N"));
            try
            {
                using (var file = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, FileOptions.Asynchronous))
                {
                    await FilePages.WriteAsync(file, content, 0, ct);
                    RandomAccess.FlushToDisk(file);
                    FilePages.Drop(file);
                }
                ct.ThrowIfCancellationRequested();
                try
                {
                    File.Move(temp, path, overwrite: false);
                }
                catch (IOException) when (File.Exists(path))
                {
                    throw AlreadyExists(name);
                }
                SyncFolder(folder);
                if (newFolders)
                {
                    // The folders made for this name are entries in their parents, which need flushing too.
                    for (var parent = Path.GetDirectoryName(folder); parent is not null && parent.Length >= _root.Length; parent = Path.GetDirectoryName(parent))
                    {
                        SyncFolder(parent);
                    }
                }
            }
            finally
            {
                // After a successful move the temporary name is gone already.
                TryDelete(temp);
            }
        }, ct);
    }

    public async Task<byte[]> GetAsync(string name, CancellationToken ct)
    {
        ObjectNames.Validate(name);
        var path = PathOf(name);
        byte[] result = [];
        await Run("get", name, async () =>
        {
            try
            {
                result = await ReadOnceAsync(path, ct);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException
                || (e is UnauthorizedAccessException or IOException && Directory.Exists(path)))
            {
                // A folder of that name holds other objects; it is not one.
                throw new BackupStoreException(BackupStoreErrorKind.NotFound, $"{Display}: get '{name}': no such object", e);
            }
        }, ct);
        return result;
    }

    /// <summary>Reads a whole object, then drops its pages from the cache: a backup object is read once (restore, verify).</summary>
    private static async Task<byte[]> ReadOnceAsync(string path, CancellationToken ct)
    {
        // An empty object is not opened: a named pipe (length 0) would block the open until something writes to it.
        if (new FileInfo(path).Length == 0) return [];
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.Asynchronous);
        var length = RandomAccess.GetLength(file);
        if (length > Array.MaxLength) throw new IOException($"the object is {length} bytes, more than one read can hold");
        var bytes = new byte[length];
        var read = await FilePages.ReadOnceAsync(file, bytes, 0, ct);
        if (read != bytes.Length) throw new IOException($"the object ended at byte {read} of {bytes.Length} while it was read");
        return bytes;
    }

    public async Task<BackupObjectInfo?> StatAsync(string name, CancellationToken ct)
    {
        ObjectNames.Validate(name);
        var path = PathOf(name);
        BackupObjectInfo? result = null;
        await Run("stat", name, () =>
        {
            var file = new FileInfo(path);
            result = file.Exists ? new BackupObjectInfo(name, file.Length, file.LastWriteTimeUtc, null) : null;
            return Task.CompletedTask;
        }, ct);
        return result;
    }

    public async IAsyncEnumerable<BackupObjectInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct)
    {
        ObjectNames.ValidatePrefix(prefix);
        var found = new List<BackupObjectInfo>();
        await Run("list", prefix, () =>
        {
            // Only the folder the prefix's complete segments name needs walking.
            var lastSlash = prefix.LastIndexOf('/');
            var start = lastSlash < 0 ? _root : PathOf(prefix[..lastSlash]);
            if (!Directory.Exists(start))
            {
                return Task.CompletedTask;
            }
            // Links are skipped, never followed: a link to another folder would list (and let a prune delete) files outside the target.
            var walk = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint, IgnoreInaccessible = false };
            foreach (var file in new DirectoryInfo(start).EnumerateFiles("*", walk))
            {
                ct.ThrowIfCancellationRequested();
                var name = Path.GetRelativePath(_root, file.FullName).Replace(Path.DirectorySeparatorChar, '/');
                if (name.StartsWith(prefix, StringComparison.Ordinal) && ObjectNames.IsValid(name) && !name.Contains('~', StringComparison.Ordinal))
                {
                    found.Add(new BackupObjectInfo(name, file.Length, file.LastWriteTimeUtc, null));
                }
            }
            return Task.CompletedTask;
        }, ct);
        found.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        foreach (var item in found)
        {
            yield return item;
        }
    }

    public async Task DeleteAsync(string name, CancellationToken ct)
    {
        ObjectNames.Validate(name);
        var path = PathOf(name);
        await Run("delete", name, () =>
        {
            if (Directory.Exists(path))
            {
                return Task.CompletedTask; // a folder of other objects, not an object
            }
            try
            {
                File.Delete(path);
            }
            catch (DirectoryNotFoundException)
            {
                // Already gone.
            }
            return Task.CompletedTask;
        }, ct);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>
    /// The file of a name, refusing a symbolic link anywhere below the root (the root itself may be one): whoever can write
    /// to the target must not turn a listing, a read or a prune's delete into one of the server's own folders.
    /// </summary>
    private string PathOf(string name)
    {
        var path = _root;
        foreach (var part in name.Split('/'))
        {
            path = Path.Combine(path, part);
            // LinkTarget reads the link itself (dangling ones too), without following it.
            if (new FileInfo(path).LinkTarget is not null)
                throw new BackupStoreException(BackupStoreErrorKind.Failed, $"{Display}: '{name}': {Path.GetRelativePath(_root, path)} is a symbolic link; a folder target holds plain folders and files only");
            if (!Directory.Exists(path)) break;
        }
        return Path.Combine(_root, name.Replace('/', Path.DirectorySeparatorChar));
    }

    private BackupStoreException FolderClash(string name) =>
        new(BackupStoreErrorKind.Failed, $"{Display}: put '{name}': the name clashes with another object's folder ('a' and 'a/...' cannot both be objects in a folder target)");

    private BackupStoreException AlreadyExists(string name) =>
        new(BackupStoreErrorKind.AlreadyExists, $"{Display}: an object '{name}' exists already; it was not overwritten");

    // Turns the file system's failures into the contract's kinds; nothing is retried (a local error does not heal).
    private async Task Run(string operation, string? name, Func<Task> action, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var what = name is null ? $"{Display}: {operation}" : $"{Display}: {operation} '{name}'";
        try
        {
            await action();
        }
        catch (Exception e) when (e is BackupStoreException or OperationCanceledException or ArgumentException)
        {
            throw;
        }
        catch (UnauthorizedAccessException e)
        {
            throw new BackupStoreException(BackupStoreErrorKind.AccessDenied, $"{what} was refused: access denied", e);
        }
        catch (IOException e) when (IsOutOfSpace(e))
        {
            throw new BackupStoreException(BackupStoreErrorKind.OutOfSpace, $"{what} failed: no space left on the device or quota exceeded", e);
        }
        catch (IOException e) when (e.HResult == ReadOnlyFileSystem)
        {
            throw new BackupStoreException(BackupStoreErrorKind.AccessDenied, $"{what} was refused: the file system is read-only", e);
        }
        catch (IOException e)
        {
            throw new BackupStoreException(BackupStoreErrorKind.Failed, $"{what} failed: {e.Message}", e);
        }
    }

    // errno on Unix (ENOSPC 28, EDQUOT 122 on Linux, 69 on macOS); HRESULTs of ERROR_DISK_FULL/ERROR_HANDLE_DISK_FULL on Windows.
    private static bool IsOutOfSpace(IOException e) =>
        e.HResult is 28 or 122 or 69 or unchecked((int)0x80070070) or unchecked((int)0x80070027);

    private const int ReadOnlyFileSystem = 30; // EROFS

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    // .NET cannot open a folder as a stream, so the folder's fsync goes through libc.
    private static void SyncFolder(string folder)
    {
        if (OperatingSystem.IsWindows())
        {
            return; // NTFS journals the rename itself; there is no folder handle to flush.
        }
        var fd = Libc.Open(folder, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            throw new IOException($"cannot open the folder to flush it (errno {Marshal.GetLastPInvokeError()})");
        }
        try
        {
            if (Libc.Fsync(fd) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                // Some file systems (and NFS clients) refuse fsync on a folder handle; the data itself was flushed.
                if (errno is not (22 /* EINVAL */ or 95 /* ENOTSUP */ or 45 /* macOS ENOTSUP */))
                {
                    throw new IOException($"flushing the folder failed (errno {errno})", errno);
                }
            }
        }
        finally
        {
            _ = Libc.Close(fd);
        }
    }

    private static class Libc
    {
        [DllImport("libc", EntryPoint = "open", SetLastError = true, BestFitMapping = false, ThrowOnUnmappableChar = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int Fsync(int fd);

        [DllImport("libc", EntryPoint = "close", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int Close(int fd);
    }
}
