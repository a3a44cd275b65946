using System.Collections.Frozen;

namespace Wardline.Policy;

/// <summary>
/// The security label codes a policy may name (<c>label:</c>, <c>treats:</c>): HL7 v3 Confidentiality
/// (U, L, M, N, R, V) and the HL7 v3 ActCode information-sensitivity policy codes. A label outside this
/// vocabulary in a policy file is an error (most likely a typo that would silently never match); a
/// resource may carry other codes, which no rule can name and so never match.
/// </summary>
public static class SecurityLabels
{
    private static readonly string[] Codes =
    [
        // Confidentiality (v3 Confidentiality): unrestricted, low, moderate, normal, restricted, very restricted.
        "U", "L", "M", "N", "R", "V",
        // _ActInformationSensitivityPolicy (ActCode): conditions and information types.
        "ETH", "GDIS", "HIV", "MST", "SCA", "SDV", "SEX", "SPI", "BH", "COGN", "DVD", "EMOTDIS", "MH",
        "PSY", "PSYTHPN", "SUD", "ETHUD", "OPIOIDUD", "STD", "TBOO", "VIO",
        // _EntitySensitivityPolicyType: demographic facts.
        "DEMO", "DOB", "GENDER", "LIVARG", "MARST", "PATLOC", "RACE", "REL",
        // _RoleInformationSensitivityPolicy: who the information concerns or who asked for protection.
        "B", "EMPL", "LOCIS", "SSP", "ADOL", "CEL", "DIA", "DRGIS", "EMP", "PDS", "PHY", "PRS",
        // Compartments.
        "COMPT", "HRCOMPT", "RESCOMPT", "RMGTCOMPT",
    ];

    /// <summary>Bit positions for the evaluator's label masks (at most 64 codes, one <see cref="ulong"/>).</summary>
    internal static readonly FrozenDictionary<string, int> Bit =
        Codes.Select((code, i) => KeyValuePair.Create(code, i)).ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>Every known code.</summary>
    public static IReadOnlySet<string> Known { get; } = Codes.ToFrozenSet(StringComparer.Ordinal);

    /// <summary>Whether <paramref name="code"/> is a known label code (case-sensitive).</summary>
    public static bool IsKnown(string code) => Bit.ContainsKey(code);

    /// <summary>The mask of the known codes among <paramref name="codes"/>; unknown codes are ignored.</summary>
    internal static ulong MaskOf(IReadOnlyList<string> codes)
    {
        ulong mask = 0;
        for (var i = 0; i < codes.Count; i++)
        {
            if (Bit.TryGetValue(codes[i], out var bit)) mask |= 1UL << bit;
        }
        return mask;
    }
}
