internal static class Exp
{
    public static void Run() { Run1("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t (res_type TEXT NOT NULL, param TEXT NOT NULL, hash BLOB NOT NULL, res_id TEXT NOT NULL, PRIMARY KEY (res_type, param, hash, res_id)) WITHOUT ROWID; CREATE INDEX ix ON t(res_type, res_id);"); Run1("CREATE TABLE t (res_type TEXT NOT NULL, param TEXT NOT NULL, hash BLOB NOT NULL, res_id TEXT NOT NULL);"); Run1("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-65536; CREATE TABLE t (res_type TEXT NOT NULL, param TEXT NOT NULL, hash BLOB NOT NULL, res_id TEXT NOT NULL, PRIMARY KEY (res_type, param, hash, res_id)) WITHOUT ROWID; CREATE INDEX ix ON t(res_type, res_id);"); }
    public static void Run1(string ddl)
    {
        var path = Path.Combine(Path.GetTempPath(), "exp-" + Guid.NewGuid() + ".db");
        using var c = new Microsoft.Data.Sqlite.SqliteConnection("Data Source=" + path);
        c.Open();
        using (var p = c.CreateCommand()) { p.CommandText = ddl; p.ExecuteNonQuery(); }
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (var tx = 0; tx < 40; tx++)
        {
            using var t = c.BeginTransaction();
            using var cmd = c.CreateCommand();
            cmd.Transaction = t;
            cmd.CommandText = "INSERT INTO t VALUES (@a, @b, @c, @d)";
            var a = cmd.CreateParameter(); a.ParameterName = "@a"; cmd.Parameters.Add(a);
            var b = cmd.CreateParameter(); b.ParameterName = "@b"; cmd.Parameters.Add(b);
            var cc = cmd.CreateParameter(); cc.ParameterName = "@c"; cmd.Parameters.Add(cc);
            var d = cmd.CreateParameter(); d.ParameterName = "@d"; cmd.Parameters.Add(d);
            cmd.Prepare();
            for (var i = 0; i < 2500; i++)
            {
                a.Value = "Observation"; b.Value = "code"; cc.Value = System.Security.Cryptography.RandomNumberGenerator.GetBytes(16); d.Value = Guid.NewGuid().ToString();
                cmd.ExecuteNonQuery();
            }
            t.Commit();
        }
        Console.WriteLine(ddl[..40] + $"100k rows in {sw.ElapsedMilliseconds} ms");
    }
}
