using System.Security.Cryptography;

namespace Wardline.Ledger.Tests;

/// <summary>
/// The Merkle tree's SHA-256 calls libcrypto with a kept context instead of going through .NET: it must give .NET's digest for
/// every input, on every thread.
/// </summary>
public sealed class Sha256Tests
{
    [Fact]
    public void On_linux_digests_go_to_libcrypto_directly()
    {
        // The fallback would be correct but slow: a machine where libcrypto 3 cannot be found must not pass unnoticed.
        Assert.Equal(OperatingSystem.IsLinux(), Sha256.Direct);
    }

    [Theory]
    [InlineData("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")]
    [InlineData("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    [InlineData("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")]
    public void Gives_the_fips_180_known_answers(string message, string digest)
    {
        var hash = new byte[32];
        Sha256.Hash(System.Text.Encoding.ASCII.GetBytes(message), hash);
        Assert.Equal(digest, Convert.ToHexStringLower(hash));
    }

    [Fact]
    public void Gives_dotnets_digest_at_every_length_up_to_several_blocks()
    {
        var data = new byte[1100];
        new Random(9162).NextBytes(data);
        var hash = new byte[32];
        for (var length = 0; length <= data.Length; length++)
        {
            Sha256.Hash(data.AsSpan(0, length), hash);
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(data.AsSpan(0, length))), Convert.ToHexStringLower(hash));
        }
    }

    [Fact]
    public void Gives_dotnets_digest_on_many_threads_at_once()
    {
        var wrong = 0;
        Parallel.For(0, 20_000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            var data = new byte[i % 700];
            new Random(i).NextBytes(data);
            Span<byte> hash = stackalloc byte[32];
            Sha256.Hash(data, hash);
            if (!hash.SequenceEqual(SHA256.HashData(data))) Interlocked.Increment(ref wrong);
        });
        Assert.Equal(0, wrong);
    }

    [Fact]
    public void A_destination_shorter_than_a_digest_is_refused()
    {
        Assert.Throws<ArgumentException>(() => Sha256.Hash([1, 2, 3], new byte[31]));
    }

    [Fact]
    public void Threads_that_end_leave_their_contexts_to_be_freed_and_hashing_goes_on()
    {
        // Each thread keeps a context; threads that come and go must not break the next ones (their contexts are finalized).
        for (var round = 0; round < 3; round++)
        {
            var threads = Enumerable.Range(0, 16).Select(i => new Thread(() => Sha256.Hash(new byte[i], new byte[32]))).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        var hash = new byte[32];
        Sha256.Hash([0x61, 0x62, 0x63], hash);
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Convert.ToHexStringLower(hash));
    }
}
