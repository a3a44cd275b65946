using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Wardline.Cli;
using Wardline.Demo;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access.Matrix;

[CollectionDefinition(Name)]
public sealed class HospitalCollection : ICollectionFixture<HospitalFixture>
{
    public const string Name = "Hospital under the built-in policy";
}

/// <summary>
/// One server (SQLite, temporary folder) under the built-in hospital policy with the demo hospital
/// imported (120 patients, seed 42), the seven demo accounts set up as the demo command does, a bearer
/// token each, and a few records the demo lacks: claims and coverage, an HIV-labelled patient cared for
/// by nurse.cardio, and nurse.cardio's own patient record.
/// </summary>
public sealed class HospitalFixture : IAsyncLifetime
{
    public const int Patients = 120;
    public const int Seed = 42;

    /// <summary>The demo accounts exactly as <c>DemoCommand</c> defines them (its list is private).</summary>
    internal static readonly Account[] DemoAccounts =
    [
        Account.New("cmo.adams", "Dr. Margaret Adams") with { Roles = ["physician", "executive"], Tier = 1, BreakGlassApproved = true },
        Account.New("nurse.cardio", "Carla Moreno") with { Roles = ["nurse"], Departments = ["cardiology"], BreakGlassApproved = true },
        Account.New("dr.onco", "Dr. Oliver Okafor") with { Roles = ["physician"], Departments = ["oncology"], BreakGlassApproved = true },
        Account.New("dr.psych", "Dr. Priya Raman") with { Roles = ["psychiatrist"], Departments = ["psychiatry"], Treats = ["PSY", "ETH"], BreakGlassApproved = true },
        Account.New("clerk.billing", "Ben Clarke") with { Roles = ["billing_clerk"], Departments = ["billing"] },
        Account.New("privacy.officer", "Paula Reyes") with { Roles = ["privacy_officer"] },
        Account.New("admin", "Alex Morgan") with { Roles = ["administrator"] },
    ];

    private readonly Dictionary<string, string> _tokens = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HttpClient> _clients = new(StringComparer.Ordinal);

    public TestStore Store { get; private set; } = null!;

    public TestServer Server { get; private set; } = null!;

    public HospitalWorld World { get; private set; } = null!;

    internal IReadOnlyDictionary<string, Account> Accounts { get; private set; } = new Dictionary<string, Account>();

    /// <summary>Ids of the records the fixture adds to the demo hospital.</summary>
    public Extras Added { get; private set; } = null!;

    public sealed record Extras(
        string PlainClaim, string RestrictedClaim, string PlainCoverage,
        string HivPatient, string HivEncounter, string HivObservation,
        string OwnPatient, string OwnEncounter, string OwnObservation);

    public static IReadOnlyList<string> AccountNames => [.. DemoAccounts.Select(a => a.Name)];

    public T Service<T>() where T : notnull => Server.App.Services.GetRequiredService<T>();

    public async Task InitializeAsync()
    {
        var ct = CancellationToken.None;
        Store = await TestStore.CreateAsync(StoreKind.Sqlite);
        var policy = Path.Combine(Store.Folder, "hospital-policy.yaml");
        await File.WriteAllTextAsync(policy, PolicyHolder.BuiltInText(), ct);
        Store.Options.Access.PolicyPath = policy;
        // Decisions must follow the store at once (break-glass grants, care relations), not a cache's timing.
        Store.Options.Access.SubjectCacheSeconds = 0;
        Server = await TestServer.StartAsync(Store.Options, "matrix.operator");

        var importer = Service<RecordImporter>();
        foreach (var bundle in DemoHospital.Generate(Patients, Seed))
        {
            var result = await importer.ImportResourceAsync(bundle, "demo", ct);
            if (!result.Ok) throw new InvalidOperationException("The demo hospital could not be imported: " + string.Join(" ", result.Problems.Take(5)));
        }

        Accounts = await CreateDemoAccountsAsync(ct);
        var tokens = Service<AccessTokens>();
        foreach (var name in AccountNames)
        {
            _tokens[name] = await tokens.IssueAsync(name, TimeSpan.FromHours(12), ct) ?? throw new InvalidOperationException("no token for " + name);
        }

        var before = await LoadWorldAsync();
        Added = await AddExtrasAsync(before, ct);
        World = await LoadWorldAsync();
    }

    /// <summary>As DemoCommand.EnsureAccountsAsync on a new store: each account linked to its Practitioner (the organisation bundle's urn:uuid), with the demo password.</summary>
    private async Task<Dictionary<string, Account>> CreateDemoAccountsAsync(CancellationToken ct)
    {
        var practitioners = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in DemoHospital.Generate(0, Seed).First().Entry)
        {
            if (entry.Resource is Hl7.Fhir.Model.Practitioner p && entry.FullUrl?.StartsWith("urn:uuid:", StringComparison.Ordinal) == true
                && p.Identifier.FirstOrDefault(i => i.System == DemoHospital.StaffSystem) is { Value: { } username })
                practitioners[username] = entry.FullUrl["urn:uuid:".Length..];
        }
        var service = Service<AccountService>();
        var records = Service<RecordStore>();
        var accounts = new Dictionary<string, Account>(StringComparer.Ordinal);
        foreach (var name in DemoHospital.NamedUsernames)
        {
            var wanted = DemoAccounts.Single(a => a.Name == name);
            if (practitioners.TryGetValue(name, out var id) && await records.ReadCurrentAsync("Practitioner", id, ct) is not null)
                wanted = wanted with { PractitionerId = id };
            var outcome = await service.CreateAsync(wanted, DemoCommand.DemoPassword, "demo", ct);
            accounts[name] = outcome is AccountResult.Done done ? done.Account : throw new InvalidOperationException($"{name}: {outcome}");
        }
        return accounts;
    }

    public async Task<HospitalWorld> LoadWorldAsync() =>
        await HospitalWorld.LoadAsync(Service<RecordService>(), Store.Options.Access.CareRelationGraceDays, CancellationToken.None);

    private async Task<Extras> AddExtrasAsync(HospitalWorld w, CancellationToken ct)
    {
        var cardiology = w.DepartmentOrgId("cardiology");
        var nurse = Accounts["nurse.cardio"].PractitionerId ?? throw new InvalidOperationException("nurse.cardio has no Practitioner");
        var plainPatient = w.OfType("Patient").First(p => !p.PatientRestricted && p.Departments.Contains("cardiology") && p.Labels.Count == 0).Id;
        var restrictedPatient = w.OfType("Patient").First(p => p.Labels.Contains("PSY")).Id;

        var coverage = await CreateAsync("Coverage", $$$"""
            {"resourceType":"Coverage","status":"active","beneficiary":{"reference":"Patient/{{{plainPatient}}}"},"payor":[{"display":"Acme Health Insurance"}]}
            """, ct);
        // Only a plain patient's Coverage: the server does not know a Coverage's patient (no beneficiary search
        // parameter), so a restricted patient's Coverage is not protected; reported as a product bug.
        string Claim(string patient, string cov) => $$$"""
            {"resourceType":"Claim","status":"active","type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/claim-type","code":"institutional"}]},
             "use":"claim","patient":{"reference":"Patient/{{{patient}}}"},"created":"2026-10-01","provider":{"reference":"Organization/{{{cardiology}}}"},
             "priority":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/processpriority","code":"normal"}]},
             "insurance":[{"sequence":1,"focal":true,"coverage":{"reference":"Coverage/{{{cov}}}"}}]}
            """;
        var plainClaim = await CreateAsync("Claim", Claim(plainPatient, coverage), ct);
        var restrictedClaim = await CreateAsync("Claim", Claim(restrictedPatient, coverage), ct);

        // An HIV-labelled (and so restricted) patient whom nurse.cardio cares for in a cardiology encounter.
        var hivPatient = await CreateAsync("Patient", """
            {"resourceType":"Patient","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"R"},
             {"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"HIV"}]},
             "identifier":[{"system":"https://wardline.example/mrn","value":"WL-MATRIX-HIV"}],"name":[{"family":"Sentinel","given":["Hana"]}],"gender":"female","birthDate":"1970-02-03"}
            """, ct);
        var hivEncounter = await CreateAsync("Encounter", Encounter(hivPatient, cardiology, nurse), ct);
        var hivObservation = await CreateAsync("Observation", Observation(hivPatient, hivEncounter), ct);

        // nurse.cardio's own record as a patient, treated in her own department.
        var ownPatient = await CreateAsync("Patient", """
            {"resourceType":"Patient","identifier":[{"system":"https://wardline.example/mrn","value":"WL-MATRIX-OWN"},
             {"system":"https://wardline.example/staff","value":"nurse.cardio","use":"secondary"}],
             "meta":{"tag":[{"system":"https://wardline.example/flags","code":"employee"}]},
             "name":[{"family":"Moreno","given":["Carla"]}],"gender":"female","birthDate":"1985-06-07"}
            """, ct);
        var ownEncounter = await CreateAsync("Encounter", Encounter(ownPatient, cardiology, null), ct);
        var ownObservation = await CreateAsync("Observation", Observation(ownPatient, ownEncounter), ct);
        return new Extras(plainClaim, restrictedClaim, coverage, hivPatient, hivEncounter, hivObservation, ownPatient, ownEncounter, ownObservation);
    }

    private static string Encounter(string patient, string org, string? practitioner)
    {
        var participant = practitioner is null ? "" : "\"participant\":[{\"individual\":{\"reference\":\"Practitioner/" + practitioner + "\"}}],";
        return $$$"""
            {"resourceType":"Encounter","status":"in-progress","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},
             "subject":{"reference":"Patient/{{{patient}}}"},"period":{"start":"2026-11-01T09:00:00Z"},{{{participant}}}
             "serviceProvider":{"reference":"Organization/{{{org}}}"}}
            """;
    }

    internal static string Observation(string patient, string encounter) => $$$"""
        {"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},
         "subject":{"reference":"Patient/{{{patient}}}"},"encounter":{"reference":"Encounter/{{{encounter}}}"},"effectiveDateTime":"2026-11-01T10:00:00Z",
         "valueQuantity":{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}
        """;

    /// <summary>Creates a resource as the operator; returns its id.</summary>
    internal async Task<string> CreateAsync(string type, string json, CancellationToken ct)
    {
        var response = await Service<RecordService>().CreateAsync(type, Encoding.UTF8.GetBytes(json), null, "http://operator/fhir", AccessScope.Operator, ct);
        if (response.Status != 201) throw new InvalidOperationException($"operator create {type}: {response.Status} {Encoding.UTF8.GetString(response.Json ?? [])}");
        return (string)JsonNode.Parse(response.Json!)!["id"]!;
    }

    /// <summary>Writes <paramref name="json"/> back as the operator (restores a resource a test deleted).</summary>
    internal async Task RestoreAsync(string type, string id, JsonObject json)
    {
        var response = await Service<RecordService>().UpdateAsync(type, id, Encoding.UTF8.GetBytes(json.ToJsonString()), null, "http://operator/fhir", AccessScope.Operator, CancellationToken.None);
        if (response.Status is not (200 or 201)) throw new InvalidOperationException($"operator restore {type}/{id}: {response.Status}");
    }

    /// <summary>Deletes as the operator (cleans up what a test created).</summary>
    internal async Task OperatorDeleteAsync(string type, string id)
    {
        var response = await Service<RecordService>().DeleteAsync(type, id, AccessScope.Operator, CancellationToken.None);
        if (response.Status != 204) throw new InvalidOperationException($"operator delete {type}/{id}: {response.Status}");
    }

    /// <summary>The oracle's view of a demo account, with its care patients as the snapshot shows them.</summary>
    public OracleSubject Subject(string name, HospitalWorld? world = null, IReadOnlySet<string>? breakGlass = null)
    {
        var a = Accounts[name];
        return new OracleSubject(a.Name, a.Roles.ToHashSet(), a.Tier, a.Departments.ToHashSet(), a.Treats.ToHashSet(),
            (world ?? World).CareOf(a.PractitionerId), breakGlass ?? new HashSet<string>());
    }

    /// <summary>A client signed in as <paramref name="account"/> with its bearer token (an MFA sign-in).</summary>
    public HttpClient As(string account)
    {
        lock (_clients)
        {
            if (_clients.TryGetValue(account, out var c)) return c;
            c = new HttpClient { BaseAddress = Server.BaseUri, Timeout = TimeSpan.FromSeconds(60) };
            c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _tokens[account]);
            _clients[account] = c;
            return c;
        }
    }

    /// <summary>Sends a request as <paramref name="account"/>, optionally declaring a purpose of use.</summary>
    public Task<HttpResponseMessage> SendAsync(string account, HttpMethod method, string url, string? json = null, string? purpose = null, IDictionary<string, string>? headers = null)
    {
        var request = new HttpRequestMessage(method, url);
        if (json is not null) request.Content = FhirTest.Json(json);
        if (purpose is not null) request.Headers.Add(AccessSubjects.PurposeHeader, purpose);
        foreach (var (k, v) in headers ?? new Dictionary<string, string>()) request.Headers.TryAddWithoutValidation(k, v);
        return As(account).SendAsync(request);
    }

    public async Task DisposeAsync()
    {
        foreach (var c in _clients.Values) c.Dispose();
        await Server.DisposeAsync();
        await Store.DisposeAsync();
    }
}
