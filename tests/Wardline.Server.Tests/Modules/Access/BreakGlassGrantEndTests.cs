using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access;

/// <summary>
/// A break-glass grant ends before its time: when its review closes it as not-justified, and when its account loses
/// the break-glass approval. Nobody reviews their own declaration, and one user holds at most
/// <see cref="BreakGlass.MaxActiveGrants"/> patients' grants at once. One server per test under the built-in hospital
/// policy with the default subject cache (15 s), so a read that worked before an ending has put the grant in the cache:
/// the next read is refused only if the ending reaches the cache.
/// </summary>
public abstract class BreakGlassGrantEndConformance(StoreKind kind) : IAsyncLifetime
{
    private const string Reason = "Unconscious on arrival, history needed now";
    private readonly Dictionary<string, HttpClient> _clients = new(StringComparer.Ordinal);

    private TestStore Store { get; set; } = null!;

    private TestServer Server { get; set; } = null!;

    private BreakGlass Glass => Server.Service<BreakGlass>();

    public async Task InitializeAsync()
    {
        Store = await TestStore.CreateAsync(kind);
        var policy = Path.Combine(Store.Folder, "hospital-policy.yaml");
        await File.WriteAllTextAsync(policy, PolicyHolder.BuiltInText());
        Store.Options.Access.PolicyPath = policy;
        Assert.True(Store.Options.Access.SubjectCacheSeconds >= 15, "these tests rely on resolved subjects being cached");
        Server = await TestServer.StartAsync(Store.Options, "glass.operator");
        var accounts = Server.Service<AccountService>();
        foreach (var a in new[]
        {
            Account.New("dr.er", "Doctor Emergency") with { Roles = ["physician"], Departments = ["emergency"], BreakGlassApproved = true },
            // A clinician who is also a privacy officer: may declare, and reviews others' declarations.
            Account.New("dr.dual", "Doctor Dual") with { Roles = ["physician", "privacy_officer"], Departments = ["emergency"], BreakGlassApproved = true },
            Account.New("privacy.officer", "Privacy Officer") with { Roles = ["privacy_officer"] },
        })
        {
            var result = await accounts.CreateAsync(a, null, "test", CancellationToken.None);
            Assert.IsType<AccountResult.Done>(result);
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var c in _clients.Values) c.Dispose();
        await Server.DisposeAsync();
        await Store.DisposeAsync();
    }

    /// <summary>A VIP (restricted) patient with one observation: nobody outside their care team reads them without break-glass.</summary>
    private async Task<(string Patient, string Observation)> VipPatientAsync()
    {
        var patient = await CreateAsync("Patient", $$"""
            {"resourceType":"Patient","meta":{"tag":[{"system":"https://wardline.example/flags","code":"vip"}]},
             "name":[{"family":"Vip{{Guid.NewGuid().ToString("N")[..8]}}","given":["Val"]}],"gender":"female","birthDate":"1971-05-06"}
            """);
        return (patient, await CreateAsync("Observation", FhirTest.Observation(patient)));
    }

    private async Task<string> CreateAsync(string type, string json)
    {
        var response = await Server.Service<RecordService>().CreateAsync(type, Encoding.UTF8.GetBytes(json), null, "http://operator/fhir", AccessScope.Operator, CancellationToken.None);
        Assert.Equal(201, response.Status);
        return (string)JsonNode.Parse(response.Json!)!["id"]!;
    }

    private async Task<HttpClient> ClientAsync(string user)
    {
        if (_clients.TryGetValue(user, out var client)) return client;
        var token = await Server.Service<AccessTokens>().IssueAsync(user, TimeSpan.FromHours(1), CancellationToken.None) ?? throw new InvalidOperationException("no token");
        client = new HttpClient { BaseAddress = Server.BaseUri, Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        _clients[user] = client;
        return client;
    }

    /// <summary>The status of an emergency read (purpose ETREAT) of <paramref name="path"/> by <paramref name="user"/>.</summary>
    private async Task<HttpStatusCode> EmergencyReadAsync(string user, string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add(AccessSubjects.PurposeHeader, "ETREAT");
        using var response = await (await ClientAsync(user)).SendAsync(request);
        return response.StatusCode;
    }

    /// <summary>Refused: 404 as for an unknown id, or 403 when the user holds no grant at all (ETREAT then permits nothing of the type).</summary>
    private static void AssertRefused(HttpStatusCode status) => Assert.Contains(status, new[] { HttpStatusCode.NotFound, HttpStatusCode.Forbidden });

    private async Task<string> DeclareAsync(string user, string patient)
    {
        var (outcome, declaration) = await Glass.DeclareAsync(user, approved: true, patient, Reason, "127.0.0.1", "grant-end-test", CancellationToken.None);
        Assert.Equal(BreakGlassOutcome.Declared, outcome);
        return declaration!.Id;
    }

    private Task<long> CountAsync(string sql) => Server.Service<RecordStore>().CountAsync(sql, CancellationToken.None);

    [Fact]
    public async Task A_grant_reviewed_as_not_justified_stops_opening_the_VIP_record_at_once_and_a_justified_one_keeps_working()
    {
        var (vip, observation) = await VipPatientAsync();
        var (other, otherObservation) = await VipPatientAsync();
        AssertRefused(await EmergencyReadAsync("dr.er", $"Patient/{vip}"));
        var declaration = await DeclareAsync("dr.er", vip);
        var kept = await DeclareAsync("dr.er", other);
        Assert.Equal(HttpStatusCode.OK, await EmergencyReadAsync("dr.er", $"Patient/{vip}"));
        Assert.Equal(HttpStatusCode.OK, await EmergencyReadAsync("dr.er", $"Observation/{observation}"));

        var (closed, problem) = await Glass.ReviewAsync(declaration, "privacy.officer", BreakGlass.NotJustified, "No emergency on the ward log.", "127.0.0.1", "review", CancellationToken.None);
        var (keptClosed, _) = await Glass.ReviewAsync(kept, "privacy.officer", "justified", "Confirmed with the ED.", "127.0.0.1", "review", CancellationToken.None);

        Assert.Equal(BreakGlassReviewOutcome.Closed, closed);
        Assert.Null(problem);
        Assert.Equal(BreakGlassReviewOutcome.Closed, keptClosed);
        // Within the subject cache time of the read above: the review reached the cache.
        AssertRefused(await EmergencyReadAsync("dr.er", $"Patient/{vip}"));
        AssertRefused(await EmergencyReadAsync("dr.er", $"Observation/{observation}"));
        Assert.DoesNotContain(vip, await Glass.ActiveGrantsAsync("dr.er", CancellationToken.None));
        Assert.Equal(HttpStatusCode.OK, await EmergencyReadAsync("dr.er", $"Patient/{other}"));
        Assert.Equal(HttpStatusCode.OK, await EmergencyReadAsync("dr.er", $"Observation/{otherObservation}"));
    }

    [Fact]
    public async Task A_grant_stops_working_once_the_account_is_no_longer_approved_for_break_glass()
    {
        var (vip, observation) = await VipPatientAsync();
        await DeclareAsync("dr.er", vip);
        Assert.Equal(HttpStatusCode.OK, await EmergencyReadAsync("dr.er", $"Observation/{observation}"));

        var changed = await Server.Service<AccountService>().UpdateAsync("dr.er", a => a with { BreakGlassApproved = false }, "admin", CancellationToken.None);

        Assert.IsType<AccountResult.Done>(changed);
        AssertRefused(await EmergencyReadAsync("dr.er", $"Observation/{observation}"));
        AssertRefused(await EmergencyReadAsync("dr.er", $"Patient/{vip}"));
        Assert.Empty(await Glass.ActiveGrantsAsync("dr.er", CancellationToken.None));

        // Approved again, the grant (still unexpired and not closed as not-justified) counts again.
        await Server.Service<AccountService>().UpdateAsync("dr.er", a => a with { BreakGlassApproved = true }, "admin", CancellationToken.None);
        Assert.Equal(HttpStatusCode.OK, await EmergencyReadAsync("dr.er", $"Patient/{vip}"));
    }

    [Fact]
    public async Task A_declarer_cannot_review_their_own_declaration_and_nothing_is_written()
    {
        var (vip, _) = await VipPatientAsync();
        var declaration = await DeclareAsync("dr.dual", vip);
        var reviewed = await CountAsync("SELECT COUNT(*) FROM security_events WHERE kind = 'BreakGlassReviewed'");

        var (outcome, problem) = await Glass.ReviewAsync(declaration, "dr.dual", "justified", "It was me, and it was fine.", "127.0.0.1", "self-review", CancellationToken.None);

        Assert.Equal(BreakGlassReviewOutcome.OwnDeclaration, outcome);
        Assert.Equal(BreakGlass.OwnDeclarationProblem, problem);
        var open = Assert.Single(await Glass.ListAsync(openOnly: true, 10, CancellationToken.None), d => d.Id == declaration);
        Assert.Null(open.ReviewedAt);
        Assert.Null(open.Outcome);
        Assert.Equal(1, await CountAsync($"SELECT COUNT(*) FROM break_glass WHERE id = '{declaration}' AND reviewed_at IS NULL AND reviewer IS NULL AND review_note IS NULL"));
        Assert.Equal(reviewed, await CountAsync("SELECT COUNT(*) FROM security_events WHERE kind = 'BreakGlassReviewed'"));

        // Another reviewer closes it.
        var (byOther, _) = await Glass.ReviewAsync(declaration, "privacy.officer", "justified", "Confirmed with the ED.", "127.0.0.1", "review", CancellationToken.None);
        Assert.Equal(BreakGlassReviewOutcome.Closed, byOther);
    }

    [Fact]
    public async Task A_user_holds_grants_for_at_most_three_patients_at_once_and_a_fourth_declaration_is_refused_and_recorded()
    {
        var patients = new List<string>();
        for (var i = 0; i < BreakGlass.MaxActiveGrants + 1; i++) patients.Add((await VipPatientAsync()).Patient);
        var declarations = new List<string>();
        foreach (var p in patients.Take(BreakGlass.MaxActiveGrants)) declarations.Add(await DeclareAsync("dr.er", p));
        var rows = await CountAsync("SELECT COUNT(*) FROM break_glass");

        var (outcome, declaration) = await Glass.DeclareAsync("dr.er", approved: true, patients[^1], Reason, "127.0.0.1", "too-many", CancellationToken.None);

        Assert.Equal(BreakGlassOutcome.TooManyGrants, outcome);
        Assert.Null(declaration);
        Assert.Equal(rows, await CountAsync("SELECT COUNT(*) FROM break_glass"));
        Assert.Equal(1, await CountAsync("SELECT COUNT(*) FROM security_events WHERE kind = 'BreakGlassDeclared' AND user_name = 'dr.er' AND outcome = 'refused' AND correlation = 'too-many'"));
        AssertRefused(await EmergencyReadAsync("dr.er", $"Patient/{patients[^1]}"));
        Assert.Contains(BreakGlass.MaxActiveGrants.ToString(System.Globalization.CultureInfo.InvariantCulture), BreakGlass.TooManyGrantsProblem, StringComparison.Ordinal);

        // Declaring again for a patient already granted renews it; a grant ended by its review frees a place.
        Assert.Equal(BreakGlassOutcome.Declared, (await Glass.DeclareAsync("dr.er", approved: true, patients[0], Reason, "127.0.0.1", "renew", CancellationToken.None)).Outcome);
        await Glass.ReviewAsync(declarations[1], "privacy.officer", BreakGlass.NotJustified, "Not an emergency.", "127.0.0.1", "review", CancellationToken.None);
        Assert.Equal(BreakGlassOutcome.Declared, (await Glass.DeclareAsync("dr.er", approved: true, patients[^1], Reason, "127.0.0.1", "freed", CancellationToken.None)).Outcome);
        Assert.Equal(HttpStatusCode.OK, await EmergencyReadAsync("dr.er", $"Patient/{patients[^1]}"));
    }
}

public sealed class BreakGlassGrantEndOnSqlite() : BreakGlassGrantEndConformance(StoreKind.Sqlite);

public sealed class BreakGlassGrantEndOnPostgres() : BreakGlassGrantEndConformance(StoreKind.Postgres);
