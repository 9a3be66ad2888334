//! chatdesk's storage: the diesel schema, the mapping between rows and
//! domain types, the repositories implementing the domain's ports, an r2d2
//! pool and embedded migrations, on PostgreSQL and SQLite alike.
//!
//! ```no_run
//! use chatdesk_store::{default_sqlite_url, Store};
//!
//! let store = Store::open(default_sqlite_url(), 8)?;
//! let applied = store.run_migrations()?;
//! # Ok::<(), chatdesk_store::StoreError>(())
//! ```
//!
//! The backend is chosen from the URL's scheme (`postgres://`,
//! `postgresql://` or `sqlite://PATH`). Only portable column types are
//! used (ids and JSON as text, instants as UTC `TIMESTAMP`s), so one set of
//! queries serves both backends; the few dialect-specific statements
//! (row locks, advisory locks, JSON membership) match on the backend.

mod changes;
mod connection;
mod error;
mod migrate;
mod observability;
mod repo;
mod rows;
pub mod schema;
#[cfg(feature = "testing")]
pub mod testing;
mod unit;

use std::time::Duration;

use chatdesk_domain::ports::Readiness;
use diesel::RunQueryDsl;

#[cfg(feature = "testing")]
pub use changes::WatcherSettings;
pub use connection::{backend_of, connect, Backend, DbConnection};
pub use error::{redact_url, StoreError};
pub use migrate::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
pub use repo::{conversation_list_index, conversation_list_sql, ListBounds};

use connection::{ConnectionManager, TracingErrorHandler};

/// The database used when none is configured: a SQLite file under `./data`.
pub fn default_sqlite_url() -> &'static str {
    "sqlite://./data/chatdesk.sqlite3"
}

/// The names of every migration of a backend's tree, in the order they apply.
pub fn migration_names(backend: Backend) -> Vec<String> {
    match backend {
        Backend::Postgres => migrate::all_names::<diesel::pg::Pg>(&POSTGRES_MIGRATIONS),
        Backend::Sqlite => migrate::all_names::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS),
    }
}

/// How long a caller waits for a pooled connection. Short: with the
/// database unreachable, callers get `DatabaseUnavailable` (503 with
/// `Retry-After`) in about this time rather than hanging; a healthy pool
/// hands out connections in microseconds.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the readiness probe waits for one.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

type Pool = r2d2::Pool<ConnectionManager>;
pub(crate) type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

/// The database: a connection pool and the repositories on it. Cheap to
/// clone; clones share the pool.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    backend: Backend,
    url: std::sync::Arc<str>,
    checkout_waits: std::sync::Arc<observability::CheckoutWaits>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("url", &redact_url(&self.url))
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens a pool of up to `max_connections` connections to the database
    /// at `database_url`. One connection is made right away, so a wrong URL,
    /// password or path fails here with its real cause.
    pub fn open(database_url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let backend = backend_of(database_url)?;
        // Fail fast, with the driver's own message, before the pool starts
        // retrying in the background.
        drop(connect(database_url)?);
        let pool = r2d2::Pool::builder()
            .max_size(max_connections.max(1))
            .min_idle(Some(1))
            .connection_timeout(CHECKOUT_TIMEOUT)
            .error_handler(Box::new(TracingErrorHandler))
            .build(ConnectionManager::new(database_url))
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        tracing::info!(
            backend = backend.name(),
            url = %redact_url(database_url),
            max_connections,
            "opened the database"
        );
        Ok(Store {
            pool,
            backend,
            url: database_url.into(),
            checkout_waits: Default::default(),
        })
    }

    /// The backend the store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the pending migrations and returns their names (empty when
    /// the database is up to date). On PostgreSQL they run under an
    /// advisory lock, so replicas starting together take turns.
    ///
    /// On SQLite, which has no advisory locks, they run under an exclusive
    /// lock on the file `<database>.lock` beside the database (created if
    /// missing and left in place), so two processes migrating one file at
    /// once take turns too.
    pub fn run_migrations(&self) -> Result<Vec<String>, StoreError> {
        migrate::run_locked(&self.url)
    }

    /// A connection from the pool (repositories ask [`Store::conn`]).
    pub(crate) fn pooled(&self) -> Result<PooledConnection, StoreError> {
        observability::checkout(&self.pool, &self.checkout_waits, CHECKOUT_TIMEOUT)
            .map_err(|e| StoreError::Pool(e.to_string()))
    }
}

impl Readiness for Store {
    fn check(&self) -> Result<(), chatdesk_domain::Error> {
        let mut conn = self
            .pool
            .get_timeout(READINESS_TIMEOUT)
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        diesel::sql_query("SELECT 1")
            .execute(&mut *conn)
            .map_err(StoreError::Query)?;
        Ok(())
    }
}
