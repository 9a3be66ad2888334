//! Test support for this crate's and other crates' tests: a fresh, empty
//! database per test on each available backend.
//!
//! ```no_run
//! use chatdesk_store::testing::all_backends;
//! use chatdesk_store::Store;
//!
//! for db in all_backends() {
//!     let store = Store::open(db.url(), 4).expect("opens");
//!     store.run_migrations().expect("migrates");
//!     // …
//! }
//! ```

use std::path::PathBuf;
use std::sync::OnceLock;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::Connection;
use uuid::Uuid;

use crate::error::redact_url;

/// Where the PostgreSQL test databases live when nothing says otherwise.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A throw-away database: a SQLite file, or a PostgreSQL schema, removed on
/// drop. Drop the `Store` using it first (declare the store after it).
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    SqliteFile(PathBuf),
    PostgresSchema { base_url: String, schema: String },
}

impl TestDatabase {
    /// A fresh SQLite database file under the system's temporary directory.
    pub fn sqlite() -> TestDatabase {
        let path = std::env::temp_dir().join(format!("chatdesk-test-{}.sqlite3", Uuid::new_v4()));
        TestDatabase {
            url: format!("sqlite://{}", path.display()),
            cleanup: Cleanup::SqliteFile(path),
        }
    }

    /// A fresh schema on the PostgreSQL server of `TEST_DATABASE_URL`
    /// (else `DATABASE_URL` when it is a PostgreSQL URL, else
    /// `postgres://postgres@127.0.0.1:5432/test`), selected through the
    /// URL's `options=-csearch_path=…`.
    ///
    /// `None`, with a one-line notice on stderr, when the server cannot be
    /// reached, unless `CI=true`: then it panics, so CI never silently
    /// skips the PostgreSQL tests.
    pub fn postgres() -> Option<TestDatabase> {
        let base_url = postgres_base_url();
        let mut conn = match PgConnection::establish(&base_url) {
            Ok(conn) => conn,
            Err(error) => {
                let cause = crate::error::scrub(&error.to_string(), &base_url);
                let message = format!(
                    "PostgreSQL at {} is unavailable: {}",
                    redact_url(&base_url),
                    cause.split_whitespace().collect::<Vec<_>>().join(" ")
                );
                if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
                    panic!(
                        "{message} (CI=true: the PostgreSQL tests must run; set TEST_DATABASE_URL)"
                    );
                }
                static NOTICE: OnceLock<()> = OnceLock::new();
                NOTICE.get_or_init(|| {
                    eprintln!("skipping the PostgreSQL store tests: {message}");
                });
                return None;
            }
        };
        let schema = format!("t_{}", Uuid::new_v4().simple());
        if let Err(error) = conn.batch_execute(&format!("CREATE SCHEMA {schema}")) {
            panic!("cannot create the test schema {schema}: {error}");
        }
        let separator = if base_url.contains('?') { '&' } else { '?' };
        Some(TestDatabase {
            url: format!("{base_url}{separator}options=-csearch_path%3D{schema}"),
            cleanup: Cleanup::PostgresSchema { base_url, schema },
        })
    }

    /// The database's URL, for `Store::open`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

fn postgres_base_url() -> String {
    if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
        if !url.trim().is_empty() {
            return url;
        }
    }
    if let Ok(url) = std::env::var("DATABASE_URL") {
        if matches!(crate::backend_of(&url), Ok(crate::Backend::Postgres)) {
            return url;
        }
    }
    DEFAULT_POSTGRES_URL.to_string()
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm", "-journal", ".lock"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::PostgresSchema { base_url, schema } => {
                if let Ok(mut conn) = PgConnection::establish(base_url) {
                    let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
                }
            }
        }
    }
}

/// A fresh database on every available backend: SQLite always, plus
/// PostgreSQL when it can be reached (see [`TestDatabase::postgres`]).
pub fn all_backends() -> Vec<TestDatabase> {
    let mut databases = vec![TestDatabase::sqlite()];
    databases.extend(TestDatabase::postgres());
    databases
}
