using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Wardline.Ledger;

/// <summary>
/// SHA-256 of the short inputs a Merkle tree hashes (an entry of a few hundred bytes, a 65-byte node), through OpenSSL's
/// EVP interface with the algorithm fetched once and one digest context kept per thread: the pattern OpenSSL 3 documents
/// for repeated digests. .NET's <see cref="SHA256.HashData(ReadOnlySpan{byte}, Span{byte})"/> calls into the same libcrypto
/// but sets a digest context up and frees it on every call, which costs more than the hashing itself at these sizes
/// (measured on the benchmark machine: a 481-byte entry 1,100 ns against 380 ns, a 65-byte node 480-770 ns against
/// 160-180 ns; see docs/benchmarks.md). Where OpenSSL 3's libcrypto cannot be loaded (not Linux, or no libssl3), this is
/// <see cref="SHA256.HashData(ReadOnlySpan{byte}, Span{byte})"/>. The same bytes give the same digest either way: tests
/// hold one against the other at every length up to several blocks, and on many threads at once.
/// </summary>
internal static unsafe partial class Sha256
{
    private const string Library = "libcrypto.so.3";

    /// <summary>The fetched SHA-256 implementation, or zero where libcrypto 3 is not available.</summary>
    private static readonly nint Algorithm = Fetch();

    [ThreadStatic]
    private static DigestContext? t_context;

    /// <summary>True when digests go through libcrypto directly (Linux with OpenSSL 3), false on the fallback.</summary>
    public static bool Direct => Algorithm != 0;

    public static void Hash(ReadOnlySpan<byte> data, Span<byte> destination)
    {
        if (destination.Length < MerkleHash.Size) throw new ArgumentException("A SHA-256 digest needs 32 bytes.", nameof(destination));
        if (Algorithm == 0)
        {
            SHA256.HashData(data, destination);
            return;
        }
        var context = (t_context ??= new DigestContext()).Handle;
        uint length = 0;
        fixed (byte* input = data)
        fixed (byte* output = destination)
        {
            if (EVP_DigestInit_ex2(context, Algorithm, 0) != 1 ||
                EVP_DigestUpdate(context, input, (nuint)data.Length) != 1 ||
                EVP_DigestFinal_ex(context, output, &length) != 1 || length != MerkleHash.Size)
            {
                ERR_clear_error(); // leave no error behind for .NET's own calls into libcrypto on this thread
                throw new CryptographicException("SHA-256 through OpenSSL failed.");
            }
        }
    }

    private static nint Fetch()
    {
        if (!OperatingSystem.IsLinux()) return 0;
        try
        {
            return EVP_MD_fetch(0, "SHA2-256", null);
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return 0;
        }
    }

    /// <summary>One thread's digest context, freed when the thread is gone and its holder collected.</summary>
    private sealed class DigestContext
    {
        public nint Handle { get; } = EVP_MD_CTX_new() is var h && h != 0 ? h : throw new CryptographicException("OpenSSL could not make a digest context.");

        ~DigestContext() => EVP_MD_CTX_free(Handle);
    }

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static partial nint EVP_MD_fetch(nint libraryContext, string algorithm, string? properties);

    [LibraryImport(Library)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static partial nint EVP_MD_CTX_new();

    [LibraryImport(Library)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static partial void EVP_MD_CTX_free(nint context);

    [LibraryImport(Library)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static partial int EVP_DigestInit_ex2(nint context, nint algorithm, nint parameters);

    [LibraryImport(Library)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static partial int EVP_DigestUpdate(nint context, byte* data, nuint count);

    [LibraryImport(Library)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static partial int EVP_DigestFinal_ex(nint context, byte* digest, uint* size);

    [LibraryImport(Library)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static partial void ERR_clear_error();
}
