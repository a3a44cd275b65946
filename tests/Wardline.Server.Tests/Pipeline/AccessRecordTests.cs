using System.Net;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Pipeline;

/// <summary>Every attempt is recorded, durably, before the response: allowed and refused alike.</summary>
public abstract class AccessRecordConformance(ServerFixture fixture)
{
    private Task<long> CountAsync(string where) =>
        fixture.Server.Service<RecordStore>().CountAsync("SELECT COUNT(*) FROM access_log WHERE " + where, CancellationToken.None);

    [Fact]
    public async Task Every_concurrent_read_has_its_decision_and_outcome_recorded_before_it_returns()
    {
        var id = await fixture.Client.CreateAsync("Patient", FhirTest.Patient("Audit" + Guid.NewGuid().ToString("N")[..8]));
        var responses = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => fixture.Client.GetAsync($"Patient/{id}")));
        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));

        // No waiting: the records were durable before each response was sent.
        Assert.Equal(40, await CountAsync($"action = 'Read' AND res_id = '{id}' AND phase = 'decision' AND permitted = 1"));
        Assert.Equal(40, await CountAsync($"action = 'Read' AND res_id = '{id}' AND phase = 'outcome' AND status = 200 AND resource_ref = 'Patient/{id}/_history/1'"));
        Assert.Equal(40, await CountAsync($"action = 'Read' AND res_id = '{id}' AND phase = 'outcome' AND user_name = 'tester'"));
    }

    [Fact]
    public async Task Each_bundle_entry_is_recorded_with_the_resource_it_names()
    {
        var id = await fixture.Client.CreateAsync("Patient", FhirTest.Patient("Entry" + Guid.NewGuid().ToString("N")[..8]));
        var batch = $$$"""
            {"resourceType":"Bundle","type":"batch","entry":[
              {"request":{"method":"GET","url":"Patient/{{{id}}}"}},
              {"request":{"method":"GET","url":"Patient/{{{id}}}/_history"}},
              {"request":{"method":"DELETE","url":"Patient/{{{id}}}"}}]}
            """;
        var response = await fixture.Client.PostJsonAsync("", batch);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        Assert.Equal(1, await CountAsync($"phase = 'decision' AND action = 'Read' AND res_type = 'Patient' AND res_id = '{id}' AND permitted = 1 AND rule = 'tester-all'"));
        Assert.Equal(1, await CountAsync($"phase = 'decision' AND action = 'History' AND res_type = 'Patient' AND res_id = '{id}' AND permitted = 1 AND rule = 'tester-all'"));
        Assert.Equal(1, await CountAsync($"phase = 'decision' AND action = 'Delete' AND res_type = 'Patient' AND res_id = '{id}' AND permitted = 1 AND rule = 'tester-all'"));
    }

    [Fact]
    public async Task A_refused_request_is_recorded_with_the_rule_that_refused_it()
    {
        var id = "refused-" + Guid.NewGuid().ToString("N")[..8];
        using var anonymous = fixture.Server.AnonymousClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync($"Patient/{id}")).StatusCode);

        Assert.Equal(1, await CountAsync($"res_id = '{id}' AND phase = 'request' AND permitted = 0 AND rule = 'default-deny' AND user_name IS NULL"));
        Assert.Equal(0, await CountAsync($"res_id = '{id}' AND phase = 'outcome'"));
    }
}

public sealed class AccessRecordOnSqlite(SqliteServerFixture fixture) : AccessRecordConformance(fixture), IClassFixture<SqliteServerFixture>;

public sealed class AccessRecordOnPostgres(PostgresServerFixture fixture) : AccessRecordConformance(fixture), IClassFixture<PostgresServerFixture>;
