//! Embedded migrations, one tree per backend with the same folder names.

use diesel::backend::Backend as DieselBackend;
use diesel::migration::MigrationSource;
use diesel::sql_types::BigInt;
use diesel::RunQueryDsl;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use std::fs::{File, OpenOptions};
use std::path::PathBuf;

use crate::connection::{
    backend_of, connect, ensure_parent_dir, sqlite_path, Backend, DbConnection,
};
use crate::error::StoreError;

/// The PostgreSQL tree (`migrations/postgres`).
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
/// The SQLite tree (`migrations/sqlite`).
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// The advisory lock key that serialises migrations of replicas starting
/// together on one PostgreSQL database ("chatdesk" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6368_6174_6465_736b;

/// Applies the pending migrations of the database at `url` over a
/// connection of its own (the session-level advisory lock goes with it
/// even if unlocking fails). On SQLite they run under an exclusive lock on
/// `<database>.lock`, taken before the first connection, so a second
/// process waits, then finds nothing pending.
pub(crate) fn run_locked(url: &str) -> Result<Vec<String>, StoreError> {
    let _lock = match backend_of(url)? {
        Backend::Postgres => None,
        Backend::Sqlite => SqliteMigrationLock::acquire(sqlite_path(url)?)?,
    };
    let mut conn = connect(url)?;
    run(&mut conn)
}

/// An exclusive lock across processes on the file `<database>.lock`,
/// held until dropped (closing the file releases it, also when the process
/// dies).
#[derive(Debug)]
struct SqliteMigrationLock {
    _file: File,
}

impl SqliteMigrationLock {
    /// Waits for the lock of the SQLite database at `path`; `None` for an
    /// in-memory database, which no other process can see.
    fn acquire(path: &str) -> Result<Option<SqliteMigrationLock>, StoreError> {
        let Some(lock_path) = lock_path(path) else {
            return Ok(None);
        };
        ensure_parent_dir(&lock_path)?;
        let error = |source| StoreError::MigrationLock {
            path: lock_path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(error)?;
        file.lock().map_err(error)?;
        Ok(Some(SqliteMigrationLock { _file: file }))
    }
}

/// The lock file of a SQLite database path (a plain path or a `file:` URI).
fn lock_path(path: &str) -> Option<PathBuf> {
    let file = match path.strip_prefix("file:") {
        Some(uri) => uri.split(['?', '#']).next().unwrap_or_default(),
        None => path,
    };
    if file.is_empty() || file == ":memory:" || path.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(format!("{file}.lock")))
}

/// Applies the pending migrations of the connection's backend and returns
/// their names. On PostgreSQL this runs under `pg_advisory_lock`.
pub(crate) fn run(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    match conn {
        DbConnection::Pg(pg) => {
            diesel::sql_query("SELECT pg_advisory_lock($1)")
                .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
                .execute(pg)?;
            let applied = apply(pg, POSTGRES_MIGRATIONS);
            let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
                .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
                .execute(pg);
            let applied = applied?;
            unlocked?;
            Ok(applied)
        }
        DbConnection::Sqlite(sqlite) => apply(sqlite, SQLITE_MIGRATIONS),
    }
}

fn apply<DB, C>(conn: &mut C, source: EmbeddedMigrations) -> Result<Vec<String>, StoreError>
where
    DB: DieselBackend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: MigrationSource<DB>,
{
    let pending = conn
        .pending_migrations(source)
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    let mut applied = Vec::with_capacity(pending.len());
    for migration in pending {
        let name = migration.name().to_string();
        conn.run_migration(&migration)
            .map_err(|e| StoreError::Migration(format!("{name}: {e}")))?;
        tracing::info!(migration = %name, "applied database migration");
        applied.push(name);
    }
    Ok(applied)
}

/// The names of every migration of a backend's tree, in order.
pub(crate) fn all_names<DB: DieselBackend>(source: &EmbeddedMigrations) -> Vec<String>
where
    EmbeddedMigrations: MigrationSource<DB>,
{
    MigrationSource::<DB>::migrations(source)
        .map(|list| list.iter().map(|m| m.name().to_string()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_files_sit_beside_the_database() {
        let table = [
            (
                "./data/chatdesk.sqlite3",
                Some("./data/chatdesk.sqlite3.lock"),
            ),
            ("/tmp/x.db", Some("/tmp/x.db.lock")),
            ("file:/tmp/x.db?mode=rwc", Some("/tmp/x.db.lock")),
            (":memory:", None),
            ("file:x?mode=memory&cache=shared", None),
        ];
        for (path, expected) in table {
            assert_eq!(lock_path(path), expected.map(PathBuf::from), "{path}");
        }
    }
}
