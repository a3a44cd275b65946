using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Wardline.Server.Modules.Records.Storage;

/// <summary>
/// Row inserts on SQLite through SQLitePCL's statement functions: one prepared statement, its values bound by
/// position, stepped once per row. Through ADO.NET each execution binds every parameter by name again and builds a
/// reader, which was most of a row's cost in ledger appends and restores. Runs inside the connection's open
/// transaction; a failure throws the same <see cref="SqliteException"/> (and error code) ADO.NET would.
/// </summary>
internal static class SqliteRows
{
    public static void Insert(SqliteConnection connection, string sql, int columns, int rowCount, Action<int, Action<object?>> fill, CancellationToken ct)
    {
        var db = connection.Handle ?? throw new InvalidOperationException("the connection is not open");
        Check(db, raw.sqlite3_prepare_v2(db, sql, out var stmt));
        using (stmt)
        {
            var col = 0;
            void Bind(object? value)
            {
                if (++col > columns) throw new InvalidOperationException("row shape mismatch");
                Check(db, value switch
                {
                    null or DBNull => raw.sqlite3_bind_null(stmt, col),
                    string text => raw.sqlite3_bind_text(stmt, col, text),
                    byte[] { Length: 0 } => raw.sqlite3_bind_zeroblob(stmt, col, 0),
                    byte[] blob => raw.sqlite3_bind_blob(stmt, col, blob),
                    long n => raw.sqlite3_bind_int64(stmt, col, n),
                    int n => raw.sqlite3_bind_int64(stmt, col, n),
                    short n => raw.sqlite3_bind_int64(stmt, col, n),
                    byte n => raw.sqlite3_bind_int64(stmt, col, n),
                    bool b => raw.sqlite3_bind_int64(stmt, col, b ? 1 : 0),
                    double d => raw.sqlite3_bind_double(stmt, col, d),
                    float f => raw.sqlite3_bind_double(stmt, col, f),
                    _ => throw new InvalidOperationException($"no SQLite binding for a value of type {value.GetType().Name}"),
                });
            }
            for (var row = 0; row < rowCount; row++)
            {
                ct.ThrowIfCancellationRequested();
                col = 0;
                fill(row, Bind);
                if (col != columns) throw new InvalidOperationException("row shape mismatch");
                var rc = raw.sqlite3_step(stmt);
                if (rc != raw.SQLITE_DONE) Check(db, rc);
                Check(db, raw.sqlite3_reset(stmt));
            }
        }
    }

    private static void Check(sqlite3 db, int rc)
    {
        if (rc is raw.SQLITE_OK or raw.SQLITE_DONE) return;
        throw new SqliteException($"SQLite Error {rc}: '{raw.sqlite3_errmsg(db).utf8_to_string()}'.", rc, raw.sqlite3_extended_errcode(db));
    }
}
