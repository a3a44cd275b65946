using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Wardline.Ledger;

namespace Wardline.Bench;

/// <summary>
/// BenchmarkDotNet (issue 4): the leaf hash of a 300-byte entry (SHA-256 of 0x00 || entry, copied into one
/// buffer, hashed through libcrypto with a kept context) against SHA256.HashData of the same 300 bytes, and a node's hash
/// against SHA256.HashData of its 65 bytes. BenchmarkDotNet needs a
/// public, unsealed class; it runs in-process (no generated project to build) with a short job.
///
///   Wardline.Bench ledger hash
/// </summary>
[MemoryDiagnoser]
#pragma warning disable CA1515 // BenchmarkDotNet requires public benchmark classes
public class LeafHashBenchmarks : IDisposable
#pragma warning restore CA1515
{
    private static readonly byte[] LeafPrefix = [0x00];
    private readonly byte[] _entry = Entry300();
    private readonly byte[] _hash = new byte[MerkleHash.Size];
    private readonly byte[] _node = new byte[1 + 2 * MerkleHash.Size];
    private readonly IncrementalHash _incremental = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    [Benchmark(Baseline = true)]
    public byte[] Sha256HashData() => SHA256.HashData(_entry);

    [Benchmark]
    public byte[] MerkleHashLeaf() => MerkleHash.Leaf(_entry);

    /// <summary>The overload the verifier uses: no allocation.</summary>
    [Benchmark]
    public byte[] MerkleHashLeafIntoBuffer()
    {
        MerkleHash.Leaf(_entry, _hash);
        return _hash;
    }

    /// <summary>The same leaf hash through one kept IncrementalHash (no hash context made per call): is the per-call setup the gap to openssl speed?</summary>
    [Benchmark]
    public byte[] LeafThroughKeptIncrementalHash()
    {
        _incremental.AppendData(LeafPrefix);
        _incremental.AppendData(_entry);
        _incremental.GetHashAndReset(_hash);
        return _hash;
    }

    /// <summary>An interior node (0x01 || left || right, 65 bytes): each leaf appended costs one on average.</summary>
    [Benchmark]
    public byte[] MerkleHashNode() => MerkleHash.Node(_hash, _hash);

    /// <summary>.NET's one-shot SHA-256 of the same 65 bytes a node hashes.</summary>
    [Benchmark]
    public byte[] Sha256HashDataOfANode() => SHA256.HashData(_node);

    public void Dispose()
    {
        _incremental.Dispose();
        GC.SuppressFinalize(this);
    }

    internal static void Run(string[] args)
    {
        var job = Job.Default.WithWarmupCount(3).WithIterationCount(12).WithToolchain(InProcessEmitToolchain.Instance);
        var config = DefaultConfig.Instance.AddJob(job).WithArtifactsPath(Path.Combine(Path.GetTempPath(), "wardline-bdn"));
        BenchmarkRunner.Run<LeafHashBenchmarks>(config, args);
    }

    /// <summary>A real access entry's canonical bytes, cut or padded to exactly 300 bytes.</summary>
    private static byte[] Entry300()
    {
        var bytes = Encoding.UTF8.GetBytes(Server.Modules.Ledger.LedgerRecorder.ToEntry(LedgerBenchmark.Record(7, 123_456)).ToString());
        var entry = new byte[300];
        for (var i = 0; i < entry.Length; i++) entry[i] = i < bytes.Length ? bytes[i] : (byte)' ';
        return entry;
    }
}
