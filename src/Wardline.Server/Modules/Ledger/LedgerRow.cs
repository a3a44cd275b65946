using Wardline.Ledger;

namespace Wardline.Server.Modules.Ledger;

/// <summary>
/// An entry ready to append: its canonical bytes and leaf hash are computed by the caller's thread, so
/// the single writer only sequences and stores. The columns beside the bytes are derived from the entry.
/// </summary>
internal sealed class LedgerRow
{
    public LedgerRow(LedgerEntry entry)
    {
        Entry = entry;
        Bytes = entry.Encode();
        Leaf = MerkleHash.Leaf(Bytes);
        (ResType, ResId, Version) = SplitResource(entry.Resource);
    }

    public LedgerEntry Entry { get; }

    public byte[] Bytes { get; }

    public byte[] Leaf { get; }

    public string? ResType { get; }

    public string? ResId { get; }

    public int? Version { get; }

    /// <summary>"Type", "Type/id" or "Type/id/_history/n" into its parts.</summary>
    public static (string? Type, string? Id, int? Version) SplitResource(string? resource)
    {
        if (resource is null) return (null, null, null);
        var parts = resource.Split('/');
        int? version = parts.Length == 4 && parts[2] == "_history" && int.TryParse(parts[3], out var v) ? v : null;
        return (parts[0], parts.Length > 1 ? parts[1] : null, version);
    }
}

/// <summary>Where a unit's entries landed: indexes <see cref="First"/>..First+Count-1 of a tree of <see cref="TreeSize"/> entries.</summary>
internal sealed record LedgerReceipt(long First, int Count, long TreeSize)
{
    /// <summary>The header value a write response carries: "index=12; count=1; tree-size=40".</summary>
    public override string ToString() => $"index={First}; count={Count}; tree-size={TreeSize}";
}

/// <summary>Who a write is recorded against: the signed-in user and their application, or the operator at the command line.</summary>
internal sealed record LedgerActor(string User, string? Client, string? Correlation, string? Source)
{
    public static LedgerActor Operator { get; } = new("operator", null, null, null);
}
