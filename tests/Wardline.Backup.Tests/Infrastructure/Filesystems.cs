using System.Diagnostics;

namespace Wardline.Backup.Tests.Infrastructure;

/// <summary>
/// Real file systems in awkward states, for the folder target's fault tests: a tiny tmpfs that fills up, and a folder
/// the kernel refuses to write to. Mounting and immutable flags need root (as test.sh runs on the CI machine) or
/// password-less sudo; without either the test fails naming what it needed.
/// </summary>
public static class Filesystems
{
    public static bool IsRoot => Environment.UserName == "root" || GetUid() == 0;

    public static void Run(string program, params string[] arguments)
    {
        var info = IsRoot ? new ProcessStartInfo(program) : new ProcessStartInfo("sudo") { ArgumentList = { "-n", program } };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        info.RedirectStandardError = true;
        info.RedirectStandardOutput = true;
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {program}");
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"`{program} {string.Join(' ', arguments)}` failed ({error.Trim()}); this test needs root or password-less sudo, as ./test.sh has on CI.");
        }
    }

    private static int GetUid()
    {
        try
        {
            var status = File.ReadAllLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal));
            return status is null ? -1 : int.Parse(status.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return -1;
        }
    }
}

/// <summary>A tmpfs of a few KiB mounted on a fresh temporary folder; unmounted and removed on dispose.</summary>
public sealed class TinyFilesystem : IDisposable
{
    public TinyFilesystem(int kibibytes)
    {
        Path = Directory.CreateTempSubdirectory("wardline-tiny-").FullName;
        Filesystems.Run("mount", "-t", "tmpfs", "-o", $"size={kibibytes}k", "tmpfs", Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        Filesystems.Run("umount", Path);
        Directory.Delete(Path, recursive: true);
    }
}

/// <summary>
/// A folder nobody may write into, the account running the tests included: with root (which ignores permission bits)
/// the folder gets the immutable attribute (chattr +i); otherwise its permission bits are set to read and enter only.
/// </summary>
public sealed class ReadOnlyFolder : IDisposable
{
    public ReadOnlyFolder()
    {
        Path = Directory.CreateTempSubdirectory("wardline-readonly-").FullName;
        if (Filesystems.IsRoot)
        {
            Filesystems.Run("chattr", "+i", Path);
        }
        else if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        }
    }

    public string Path { get; }

    public void Dispose()
    {
        if (Filesystems.IsRoot)
        {
            Filesystems.Run("chattr", "-i", Path);
        }
        else if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        Directory.Delete(Path, recursive: true);
    }
}
