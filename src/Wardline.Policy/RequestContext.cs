namespace Wardline.Policy;

/// <summary>The circumstances of one request.</summary>
/// <param name="Purpose">The purpose of use code (e.g. TREAT, ETREAT, HPAYMT, HRESCH).</param>
/// <param name="Now">Unix seconds.</param>
/// <param name="Hour">Local hour, 0-23.</param>
/// <param name="Weekday">ISO weekday, 1 = Monday .. 7 = Sunday.</param>
/// <param name="Mfa">Whether the subject authenticated with a second factor.</param>
/// <param name="Network">"internal" or "external".</param>
public readonly record struct RequestContext(string Purpose, long Now, int Hour, int Weekday, bool Mfa, string Network);
