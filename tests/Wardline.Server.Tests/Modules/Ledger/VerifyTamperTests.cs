using System.Text;
using Wardline.Ledger;
using Wardline.Server.Modules.Access.Facts;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Pipeline;
using Wardline.Server.Tests.EndToEnd;
using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Ledger.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;

namespace Wardline.Server.Tests.Modules.Ledger;

/// <summary>
/// `wardline ledger verify` on a store changed behind Wardline's back, with direct SQL as a database
/// administrator would: every kind of change is named, and a clean store verifies.
/// </summary>
public abstract class VerifyTamperConformance(StoreKind kind) : SeededLedgerStore(kind)
{
    private Wardline.Server.Hosting.WardlineOptions Options => Store.Options;

    [Fact]
    public async Task AStore_nobody_touched_verifies_with_exit_code_0()
    {
        var result = await VerifyAsync(Options);

        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("verified", result.Output, StringComparison.Ordinal);
        Assert.Contains("2 signed heads", result.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_condition_whoseStored_body_was_replaced_by_its_older_version_is_named()
    {
        await DropVersionTriggersAsync(Options);
        await ExecAsync(Options,
            "UPDATE resource_versions SET body = (SELECT body FROM resource_versions WHERE res_type = 'Condition' AND res_id = @id AND version = 1) " +
            "WHERE res_type = 'Condition' AND res_id = @id AND version = 2", ("@id", Seeded.Updated));

        var result = await VerifyAsync(Options);

        Assert.True(result.ExitCode == 1, result.Output);
        Assert.Contains($"Condition/{Seeded.Updated} version 2", result.Flat, StringComparison.Ordinal);
        Assert.DoesNotContain("Myocardial", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_condition_whose_current_version_pointer_was_moved_back_to_its_older_diagnosis_is_named()
    {
        // No version is touched: one UPDATE makes reads serve version 1's diagnosis again.
        await ExecAsync(Options, "UPDATE resources SET version = 1 WHERE res_type = 'Condition' AND res_id = @id", ("@id", Seeded.Updated));
        await using (var server = await StartAsync(Store))
        {
            var served = await (await server.Client.GetAsync($"Condition/{Seeded.Updated}")).ReadJsonAsync();
            Assert.Equal("1", (string?)served["meta"]!["versionId"]);
        }
        ReleasePools();

        var result = await VerifyAsync(Options);

        Assert.True(result.ExitCode == 1, result.Output);
        Assert.Contains($"Condition/{Seeded.Updated}: reads serve version 1, but its newest stored version is 2", result.Flat, StringComparison.Ordinal);
        Assert.DoesNotContain("Myocardial", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_condition_hidden_by_marking_it_deleted_or_by_removing_its_current_row_is_named()
    {
        await ExecAsync(Options, "UPDATE resources SET deleted = 1 WHERE res_type = 'Condition' AND res_id = @id", ("@id", Seeded.Other));
        await ExecAsync(Options, "DELETE FROM resources WHERE res_type = 'Patient' AND res_id = @id", ("@id", Seeded.Patient));
        await ExecAsync(Options, "UPDATE resources SET last_updated = last_updated - 86400000 WHERE res_type = 'Condition' AND res_id = @id", ("@id", Seeded.Updated));

        var result = await VerifyAsync(Options);

        Assert.True(result.ExitCode == 1, result.Output);
        Assert.Contains($"Condition/{Seeded.Other}: reads treat it as deleted, but its newest version 1 is not a deletion", result.Flat, StringComparison.Ordinal);
        Assert.Contains($"Patient/{Seeded.Patient} has stored versions but no current-version row", result.Flat, StringComparison.Ordinal);
        Assert.Contains($"Condition/{Seeded.Updated}: reads show a last-updated time that is not version 2's", result.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Access_facts_and_care_relations_changed_behind_Wardlines_back_are_named_by_resource_and_column()
    {
        // What the policy decides by, changed without touching a version: the patient made restricted and labelled,
        // a condition moved to another department, a care relation invented on a condition, another of a resource
        // that does not exist, and a condition's facts removed.
        const string PatientRid = "(SELECT rid FROM resources WHERE res_type = 'Patient' AND res_id = @p)";
        await ExecAsync(Options, $"UPDATE access_facts SET restricted = 1, labels = '|R|' WHERE rid = {PatientRid}", ("@p", Seeded.Patient));
        await ExecAsync(Options, "UPDATE access_facts SET department = 'oncology' WHERE rid = (SELECT rid FROM resources WHERE res_type = 'Condition' AND res_id = @id)", ("@id", Seeded.Updated));
        await ExecAsync(Options, "INSERT INTO care_relations (rid, practitioner, patient, kind, from_at, until_at) " +
            "SELECT rid, 'snooper', @p, 'encounter', NULL, NULL FROM resources WHERE res_type = 'Condition' AND res_id = @id", ("@p", Seeded.Patient), ("@id", Seeded.Updated));
        await ExecAsync(Options, "INSERT INTO care_relations (rid, practitioner, patient, kind, from_at, until_at) VALUES (987654321, 'snooper', @p, 'care-team', NULL, NULL)", ("@p", Seeded.Patient));
        await ExecAsync(Options, "DELETE FROM access_facts WHERE rid = (SELECT rid FROM resources WHERE res_type = 'Condition' AND res_id = @id)", ("@id", Seeded.Other));

        var result = await VerifyDerivedAsync();

        Assert.True(result.ExitCode == 1, result.Output);
        Assert.Contains($"Patient/{Seeded.Patient}: its access facts (labels, restricted) are not what its content (version 1) gives", result.Flat, StringComparison.Ordinal);
        Assert.Contains($"Condition/{Seeded.Updated}: its access facts (department) are not what its content (version 2) gives", result.Flat, StringComparison.Ordinal);
        Assert.Contains($"Condition/{Seeded.Updated}: its care relations are not the ones its content (version 2) names", result.Flat, StringComparison.Ordinal);
        Assert.Contains("care_relations holds 1 relations of resources that are not stored", result.Flat, StringComparison.Ordinal);
        Assert.Contains($"Condition/{Seeded.Other} has no access facts", result.Flat, StringComparison.Ordinal);
        Assert.DoesNotContain("oncology", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("snooper", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Search_index_rows_removed_or_added_behind_Wardlines_back_are_named_by_resource()
    {
        // The condition's code rows deleted (a search by its code no longer finds it); the other condition given the patient's
        // reference rows under another patient; rows for a resource that does not exist.
        const string ConditionRid = "(SELECT rid FROM resources WHERE res_type = 'Condition' AND res_id = @id)";
        Assert.True(await ExecAsync(Options, $"DELETE FROM search_token WHERE rid = {ConditionRid}", ("@id", Seeded.Updated)) > 0);
        Assert.True(await ExecAsync(Options, $"UPDATE search_ref SET ref = 'Patient/someone-else' WHERE rid = {ConditionRid}", ("@id", Seeded.Other)) > 0);
        await ExecAsync(Options, "INSERT INTO search_ref (pid, ref, rid) SELECT MIN(pid), 'Patient/ghost', 987654321 FROM search_params");
        await ExecAsync(Options, "INSERT INTO search_ref (pid, ref, rid) SELECT MIN(pid), 'Patient/ghost', 0 FROM search_params"); // below every resource's row key

        var result = await VerifyDerivedAsync();

        Assert.True(result.ExitCode == 1, result.Output);
        Assert.Matches($@"Condition/{Seeded.Updated}: its search index is not what its content \(version 2\) gives \([1-9]\d* rows missing, 0 not its own\)", result.Flat);
        Assert.Matches($@"Condition/{Seeded.Other}: its search index is not what its content \(version 1\) gives \([1-9]\d* rows missing, [1-9]\d* not its own\)", result.Flat);
        Assert.Contains("the search index holds 2 rows of resources that are deleted or not stored", result.Flat, StringComparison.Ordinal);
        Assert.DoesNotContain($"Patient/{Seeded.Patient}: its search index", result.Flat, StringComparison.Ordinal);
        Assert.DoesNotContain("someone-else", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_clean_store_verifies_with_its_derived_data_and_records_rederive_repairs_what_was_changed()
    {
        var clean = await VerifyDerivedAsync();
        Assert.True(clean.ExitCode == 0, clean.Output);
        Assert.Contains("access facts, care relations and search index", clean.Flat, StringComparison.Ordinal);
        await ExecAsync(Options, "UPDATE access_facts SET labels = '|R|' WHERE rid = (SELECT rid FROM resources WHERE res_type = 'Patient' AND res_id = @p)", ("@p", Seeded.Patient));
        await ExecAsync(Options, "DELETE FROM search_token WHERE rid = (SELECT rid FROM resources WHERE res_type = 'Condition' AND res_id = @id)", ("@id", Seeded.Updated));
        // The default verification (the nightly one) does not derive.
        Assert.Equal(0, (await VerifyAsync(Options)).ExitCode);
        Assert.Equal(1, (await VerifyDerivedAsync()).ExitCode);

        var rederive = await WardlineCli.RunAsync(["records", "rederive", .. StoreArgs(Options)]);

        Assert.True(rederive.ExitCode == 0, rederive.Output);
        Assert.Contains("derived again", rederive.Flat, StringComparison.Ordinal);
        var repaired = await VerifyDerivedAsync();
        Assert.True(repaired.ExitCode == 0, repaired.Output);
        Assert.Equal(1, await CountAsync(Options, "SELECT COUNT(*) FROM ledger_entries WHERE type = 'system' AND event = 'records-rederived'"));
    }

    [Fact]
    public async Task Rederiving_a_resource_written_since_it_was_read_keeps_what_its_write_derived()
    {
        await using (var server = await StartAsync(Store))
        {
            var store = server.Service<RecordStore>();
            var read = (await store.CurrentOfTypeAsync("Condition", 0, 500, CancellationToken.None)).Single(v => v.Id == Seeded.Other);
            // A clinician updates the condition after a rederive read it, before the rederive writes what it derived from that read.
            var put = await server.Client.PutJsonAsync($"Condition/{Seeded.Other}", FhirTest.Condition(Seeded.Patient, "38341003", "Hypertension", "2024-04-01", Seeded.Other));
            Assert.Equal(System.Net.HttpStatusCode.OK, put.StatusCode);

            // Rows derived from the version it read (none at all, to be unmissable) are not written over the update's.
            var written = await store.ReindexAsync([(read.Rid, read.Version, "Condition", [], FactsRow.None)], CancellationToken.None);

            Assert.Equal(0, written);
            Assert.Contains(Seeded.Other, (await (await server.Client.GetAsync($"Condition?code=38341003")).ReadJsonAsync()).ToJsonString(), StringComparison.Ordinal);
        }
        ReleasePools();
        var result = await VerifyDerivedAsync();
        Assert.True(result.ExitCode == 0, result.Output);
    }

    private Task<CliResult> VerifyDerivedAsync() => WardlineCli.RunAsync(["ledger", "verify", "--derived", .. StoreArgs(Options)]);

    [Fact]
    public async Task A_condition_with_one_byte_of_itsStored_body_flipped_is_named()
    {
        var body = (byte[])(await ScalarAsync(Options, "SELECT body FROM resource_versions WHERE res_type = 'Condition' AND res_id = @id AND version = 1", ("@id", Seeded.Other)))!;
        body[body.Length / 2] ^= 0x01;
        await DropVersionTriggersAsync(Options);
        await ExecAsync(Options, "UPDATE resource_versions SET body = @b WHERE res_type = 'Condition' AND res_id = @id AND version = 1", ("@b", body), ("@id", Seeded.Other));

        var result = await VerifyAsync(Options);

        Assert.True(result.ExitCode == 1, result.Output);
        Assert.Contains($"Condition/{Seeded.Other} version 1", result.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_deleted_ledger_row_is_named_as_missing()
    {
        await ExecAsync(Options, "DELETE FROM ledger_entries WHERE idx = 3");

        var result = await VerifyAsync(Options);

        Assert.True(result.ExitCode == 1, result.Output);
        Assert.Contains("entry 3 is missing", result.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_ledger_rows_whose_entries_were_swapped_are_both_named()
    {
        var (a, b) = (await EntryAsync(4), await EntryAsync(7));
        await ExecAsync(Options, "UPDATE ledger_entries SET entry = @e WHERE idx = 4", ("@e", b));
        await ExecAsync(Options, "UPDATE ledger_entries SET entry = @e WHERE idx = 7", ("@e", a));

        var result = await VerifyAsync(Options);

        Assert.True(result.ExitCode == 1, result.Output);
        Assert.Contains("entry 4 was altered", result.Flat, StringComparison.Ordinal);
        Assert.Contains("entry 7 was altered", result.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_ledger_row_rewritten_with_a_consistent_leaf_is_found_by_the_witness_head()
    {
        var idx = await CountAsync(Options, "SELECT MIN(idx) FROM ledger_entries WHERE type = 'access' AND user_name = 'tester'");
        await ForgeUserAsync(idx, "tester", "mallet");

        var result = await VerifyAsync(Options);

        Assert.True(result.ExitCode == 1, result.Output);
        Assert.Contains("rewritten", result.Flat, StringComparison.Ordinal);
        Assert.DoesNotContain($"entry {idx} was altered", result.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_searchable_column_changed_alone_is_named_with_its_entry()
    {
        var idx = await CountAsync(Options, "SELECT MAX(idx) FROM ledger_entries WHERE user_name = 'tester'");
        await ExecAsync(Options, "UPDATE ledger_entries SET user_name = 'somebody.else' WHERE idx = @i", ("@i", idx));

        var result = await VerifyAsync(Options);

        Assert.True(result.ExitCode == 1, result.Output);
        Assert.Contains($"entry {idx}: the column user_name does not match", result.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Across_many_batches_every_change_is_named_in_ledger_order()
    {
        // The verifier works on batches of rows in parallel (512 rows at a time): changes in different batches,
        // and a version checked after all of them, must all be named, in the ledger's order.
        await using (var server = await StartAsync(Store))
        {
            await RecordReadsAsync(server, 0, 1400);
            await PublishHeadAsync(server);
        }
        var reads = await QueryAsync(Options, "SELECT idx FROM ledger_entries WHERE user_name = 'batch.reader' AND correlation LIKE 'corr-%' ORDER BY idx", r => r.GetInt64(0));
        Assert.Equal(1400, reads.Count);
        var (early, late) = (reads[300], reads[1300]);
        await ExecAsync(Options, "UPDATE ledger_entries SET user_name = 'somebody.else' WHERE idx = @i", ("@i", late));
        await ExecAsync(Options, "UPDATE ledger_entries SET patient = 'Patient/other' WHERE idx = @i", ("@i", early));
        await DropVersionTriggersAsync(Options);
        var body = (byte[])(await ScalarAsync(Options, "SELECT body FROM resource_versions WHERE res_type = 'Condition' AND res_id = @id AND version = 1", ("@id", Seeded.Other)))!;
        body[^1] ^= 0x01;
        await ExecAsync(Options, "UPDATE resource_versions SET body = @b WHERE res_type = 'Condition' AND res_id = @id AND version = 1", ("@b", body), ("@id", Seeded.Other));

        var result = await VerifyAsync(Options);

        Assert.True(result.ExitCode == 1, result.Output);
        var first = result.Flat.IndexOf($"entry {early}: the column patient does not match", StringComparison.Ordinal);
        var second = result.Flat.IndexOf($"entry {late}: the column user_name does not match", StringComparison.Ordinal);
        Assert.True(first >= 0 && second > first, result.Output);
        Assert.Contains($"Condition/{Seeded.Other} version 1", result.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stored_subtree_hash_changed_at_any_stored_level_is_named()
    {
        // The verifier hashes a batch's subtrees on the other cores and joins them to the tree whole: the stored hashes
        // inside a batch (levels 4 and 8) and above it (level 12, entries 0..4095) must be held against it all the same.
        await using (var server = await StartAsync(Store))
        {
            await RecordReadsAsync(server, 0, 4200);
        }
        var zero = new byte[MerkleHash.Size];
        foreach (var (level, index) in new[] { (4, 70L), (8, 5L), (12, 0L) })
        {
            await ExecAsync(Options, "UPDATE ledger_nodes SET hash = @h WHERE level = @l AND idx = @i", ("@h", zero), ("@l", level), ("@i", index));
        }

        var result = await VerifyAsync(Options);

        Assert.True(result.ExitCode == 1, result.Output);
        Assert.Contains("the stored hash of subtree 70 at level 4 (entries 1120..1135)", result.Flat, StringComparison.Ordinal);
        Assert.Contains("the stored hash of subtree 5 at level 8 (entries 1280..1535)", result.Flat, StringComparison.Ordinal);
        Assert.Contains("the stored hash of subtree 0 at level 12 (entries 0..4095)", result.Flat, StringComparison.Ordinal);
        Assert.DoesNotContain("was altered", result.Flat, StringComparison.Ordinal);
        Assert.DoesNotContain("rewritten", result.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Signed_heads_at_sizes_inside_a_batch_are_each_held_against_the_tree_at_their_size()
    {
        // Heads signed at sizes that end inside a batch of 512 entries: the verifier must build the tree entry by entry
        // there (elsewhere it appends whole batches), and hold each head against exactly the entries before it.
        TreeHead first, second;
        await using (var server = await StartAsync(Store))
        {
            await RecordReadsAsync(server, 0, 700);
            first = (await server.Service<TreeHeads>().PublishAsync(force: true, CancellationToken.None))!;
            await RecordReadsAsync(server, 700, 600);
            second = (await server.Service<TreeHeads>().PublishAsync(force: true, CancellationToken.None))!;
        }
        Assert.NotEqual(0, first.Size % 512);
        Assert.NotEqual(0, second.Size % 512);
        var clean = await VerifyAsync(Options);
        Assert.True(clean.ExitCode == 0, clean.Output);

        // One entry between the two heads, rewritten with a leaf that matches: only the later head can tell.
        var idx = first.Size + 10;
        await ForgeUserAsync(idx, "batch.reader", "mallet.reader");

        var result = await VerifyAsync(Options);

        Assert.True(result.ExitCode == 1, result.Output);
        Assert.Contains($"do not give the root of the signed head at size {second.Size}", result.Flat, StringComparison.Ordinal);
        Assert.DoesNotContain($"signed head at size {first.Size} ", result.Flat, StringComparison.Ordinal);
        Assert.DoesNotContain($"entry {idx} was altered", result.Flat, StringComparison.Ordinal);
    }

    /// <summary>Rewrites entry <paramref name="idx"/>'s user with a leaf and column to match, as an administrator covering tracks would.</summary>
    private async Task ForgeUserAsync(long idx, string user, string forger)
    {
        var entry = Encoding.UTF8.GetString(await EntryAsync(idx));
        Assert.Contains($"\"{user}\"", entry, StringComparison.Ordinal);
        var forged = Encoding.UTF8.GetBytes(entry.Replace($"\"{user}\"", $"\"{forger}\"", StringComparison.Ordinal));
        await ExecAsync(Options, "UPDATE ledger_entries SET entry = @e, leaf = @l, user_name = @u WHERE idx = @i",
            ("@e", forged), ("@l", MerkleHash.Leaf(forged)), ("@u", forger), ("@i", idx));
    }

    private async Task RecordReadsAsync(TestServer server, int from, int count)
    {
        var recorder = server.Service<LedgerRecorder>();
        for (var n = from; n < from + count; n += 100)
        {
            await recorder.RecordAsync([.. Enumerable.Range(n, Math.Min(100, from + count - n)).Select(i => new AccessRecord(
                DateTimeOffset.UtcNow, "batch.reader", new FhirInteraction(FhirAction.Read, "Observation", $"obs-{i}"),
                "decision", new AccessDecision(true, "care-team-read", "on the care team"), 200, null, $"corr-{i}", "10.0.0.1")
            {
                Patient = $"Patient/{Seeded.Patient}",
            })], CancellationToken.None);
        }
    }

    [Fact]
    public async Task Rows_added_below_index_0_and_far_past_the_recorded_size_are_named()
    {
        // Several connections read the ledger in ranges below the recorded size; whatever lies outside them must still be read.
        await using (var server = await StartAsync(Store))
        {
            await RecordReadsAsync(server, 0, 1100);
        }
        var size = await CountAsync(Options, "SELECT COUNT(*) FROM ledger_entries");
        const string Columns = "at, type, event, user_name, client, actor, patient, resource, res_type, res_id, version, action, purpose, permitted, rule, status, outcome, detail, correlation, source, entry, leaf";
        foreach (var idx in new[] { -1L, size + 700 })
        {
            await ExecAsync(Options, $"INSERT INTO ledger_entries (idx, {Columns}) SELECT @i, {Columns} FROM ledger_entries WHERE idx = 5", ("@i", idx));
        }

        var result = await VerifyAsync(Options);

        Assert.True(result.ExitCode == 1, result.Output);
        Assert.Contains("entry -1 is out of order", result.Flat, StringComparison.Ordinal);
        Assert.Contains($"entry {size} is missing (the next stored entry is {size + 700})", result.Flat, StringComparison.Ordinal);
        Assert.Contains($"the ledger holds {size + 1} entries but records its size as {size}", result.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_conditions_whose_encrypted_bodies_were_swapped_cannot_be_decrypted()
    {
        const string Body = "SELECT body FROM resource_versions WHERE res_type = 'Condition' AND res_id = @id AND version = 1";
        var a = (byte[])(await ScalarAsync(Options, Body, ("@id", Seeded.Updated)))!;
        var b = (byte[])(await ScalarAsync(Options, Body, ("@id", Seeded.Other)))!;
        await DropVersionTriggersAsync(Options);
        const string Set = "UPDATE resource_versions SET body = @b WHERE res_type = 'Condition' AND res_id = @id AND version = 1";
        await ExecAsync(Options, Set, ("@b", b), ("@id", Seeded.Updated));
        await ExecAsync(Options, Set, ("@b", a), ("@id", Seeded.Other));

        var result = await VerifyAsync(Options);

        Assert.True(result.ExitCode == 1, result.Output);
        Assert.Contains($"Condition/{Seeded.Updated} version 1 cannot be decrypted", result.Flat, StringComparison.Ordinal);
        Assert.Contains($"Condition/{Seeded.Other} version 1 cannot be decrypted", result.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_database_restored_from_an_older_copy_is_reported_as_rolled_back_against_the_witness()
    {
        ReleasePools();
        var older = await Snapshot.TakeAsync(Store);
        try
        {
            await using (var server = await StartAsync(Store))
            {
                await SeedAsync(server.Client);
                await PublishHeadAsync(server);
            }
            ReleasePools();
            var before = await VerifyAsync(Options);
            Assert.True(before.ExitCode == 0, before.Output);

            var restored = await older.RestoreAsync();
            var result = await VerifyAsync(restored);

            Assert.True(result.ExitCode == 1, result.Output);
            Assert.Contains("rolled back", result.Flat, StringComparison.Ordinal);
        }
        finally
        {
            await older.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_head_signing_key_deleted_from_the_database_is_reported_and_no_new_key_is_made()
    {
        var pinned = await File.ReadAllTextAsync(Path.Combine(WitnessFolder(Options), "key.pub"));
        await ExecAsync(Options, "DELETE FROM ledger_keys");

        var result = await VerifyAsync(Options);
        HttpResponseMessage created;
        await using (var server = await StartAsync(Store))
        {
            created = await server.Client.PostJsonAsync("Patient", FhirTest.Patient("AfterKeyLoss"));
        }
        ReleasePools();

        Assert.True(result.ExitCode == 1, result.Output);
        Assert.Contains("the head-signing key the witness pinned is missing from the database", result.Flat, StringComparison.Ordinal);
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, created.StatusCode);
        Assert.Equal(0, await CountAsync(Options, "SELECT COUNT(*) FROM ledger_keys"));
        Assert.Equal(pinned, await File.ReadAllTextAsync(Path.Combine(WitnessFolder(Options), "key.pub")));
    }

    [Fact]
    public async Task A_head_signing_key_replaced_in_the_database_is_found_against_the_key_the_witness_pinned()
    {
        await ExecAsync(Options, "UPDATE ledger_keys SET public_key = @k", ("@k", new byte[91]));

        var result = await VerifyAsync(Options);

        Assert.True(result.ExitCode == 1, result.Output);
        Assert.Contains("the head-signing key in the database is not the key the witness pinned", result.Flat, StringComparison.Ordinal);
    }

    private async Task<byte[]> EntryAsync(long idx) =>
        (byte[])(await ScalarAsync(Options, "SELECT entry FROM ledger_entries WHERE idx = @i", ("@i", idx)))!;
}

public sealed class VerifyTamperOnSqlite() : VerifyTamperConformance(StoreKind.Sqlite);

public sealed class VerifyTamperOnPostgres() : VerifyTamperConformance(StoreKind.Postgres);
