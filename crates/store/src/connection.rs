//! One connection type over PostgreSQL and SQLite, picked from the URL
//! scheme, and the r2d2 manager that makes and checks them.

use std::path::Path;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::R2D2Connection;
use diesel::sqlite::SqliteConnection;
use diesel::Connection;

use crate::error::{redact_url, scrub, StoreError};

/// A connection to either backend; the repositories' queries are written
/// once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// PostgreSQL.
    Pg(PgConnection),
    /// SQLite.
    Sqlite(SqliteConnection),
}

/// The database backends chatdesk runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// PostgreSQL: `postgres://…` or `postgresql://…`.
    Postgres,
    /// SQLite: `sqlite://PATH`.
    Sqlite,
}

impl Backend {
    /// The backend's name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

/// Which backend a database URL names, from its scheme. A libpq
/// key=value connection string (`host=db user=app password=… dbname=x`)
/// is PostgreSQL too.
pub fn backend_of(url: &str) -> Result<Backend, StoreError> {
    let lower = url.trim_start().to_ascii_lowercase();
    if lower.starts_with("postgres://")
        || lower.starts_with("postgresql://")
        || is_key_value_conninfo(url)
    {
        Ok(Backend::Postgres)
    } else if lower.starts_with("sqlite://") {
        Ok(Backend::Sqlite)
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// Whether `text` is a libpq key=value connection string: it starts with
/// `keyword=` (spaces around `=` allowed), where a URL starts with
/// `scheme://`.
fn is_key_value_conninfo(text: &str) -> bool {
    let text = text.trim_start();
    let keyword_len = text
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    keyword_len > 0 && text[keyword_len..].trim_start().starts_with('=')
}

/// The path of a `sqlite://PATH` URL.
pub(crate) fn sqlite_path(url: &str) -> Result<&str, StoreError> {
    let trimmed = url.trim_start();
    match trimmed.get(..9) {
        Some(scheme) if scheme.eq_ignore_ascii_case("sqlite://") => {
            let path = &trimmed[9..];
            if path.is_empty() {
                Err(StoreError::UnsupportedUrl(redact_url(url)))
            } else {
                Ok(path)
            }
        }
        _ => Err(StoreError::UnsupportedUrl(redact_url(url))),
    }
}

/// Run on every SQLite connection: wait for locks rather than fail, WAL for
/// concurrent readers, and enforce foreign keys (off by default in SQLite).
/// The switch to WAL is made apart (see [`set_wal`]).
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000;
PRAGMA synchronous = NORMAL;
PRAGMA foreign_keys = ON;";

/// How long a new SQLite connection keeps trying to switch a fresh file to
/// WAL while other connections hold it (as `busy_timeout`).
const WAL_SWITCH_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Switches the file to WAL. On a fresh file the switch needs the file to
/// itself, and SQLite answers "database is locked" at once, without its
/// busy handler, while another connection (another process starting at the
/// same moment) holds it: so it is retried for a while, like a busy lock.
/// Once the file is in WAL mode the pragma changes nothing and succeeds.
fn set_wal(conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
    let started = std::time::Instant::now();
    loop {
        match conn.batch_execute("PRAGMA journal_mode = WAL;") {
            Err(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("locked") && started.elapsed() < WAL_SWITCH_PATIENCE =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Opens one connection, choosing the backend from the URL's scheme, so a
/// failure reports the real cause (e.g. a wrong password) rather than
/// "no backend accepted the URL". SQLite: creates the file (and its
/// directory) if missing, and applies the connection PRAGMAs.
pub fn connect(database_url: &str) -> Result<DbConnection, StoreError> {
    open(database_url, SqliteOpen::CreateIfMissing)
}

/// Whether a SQLite connection may create the database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SqliteOpen {
    /// Create the file and its directory when missing.
    CreateIfMissing,
    /// Open the existing file only: the pool's connections, made after the
    /// store has created it, never silently start an empty database when
    /// the file has been removed.
    ExistingOnly,
}

pub(crate) fn open(database_url: &str, mode: SqliteOpen) -> Result<DbConnection, StoreError> {
    let connect_error = |cause: String| StoreError::Connect {
        url: redact_url(database_url),
        cause: scrub(&cause, database_url),
    };
    match backend_of(database_url)? {
        Backend::Postgres => {
            // libpq would initialise OpenSSL on its first TLS connection,
            // registering OpenSSL's clean-up to run at exit: a process
            // exiting while a pool thread is still in a TLS handshake then
            // crashes in it (seen as segfaults of `chatdesk tenant …`).
            // Initialised here first, without that clean-up.
            openssl_sys::init();
            PgConnection::establish(&with_network_timeouts(database_url.trim_start()))
                .map(DbConnection::Pg)
                .map_err(|e| connect_error(e.to_string()))
        }
        Backend::Sqlite => {
            let path = sqlite_path(database_url)?;
            let target = match mode {
                SqliteOpen::CreateIfMissing => {
                    ensure_parent_dir(Path::new(path))?;
                    path.to_string()
                }
                // diesel opens SQLite with SQLITE_OPEN_URI, so a `file:` URI
                // with `mode=rw` opens without creating.
                SqliteOpen::ExistingOnly => format!("file:{}?mode=rw", uri_path(path)),
            };
            let mut conn =
                SqliteConnection::establish(&target).map_err(|e| connect_error(e.to_string()))?;
            conn.batch_execute(SQLITE_PRAGMAS)
                .and_then(|()| set_wal(&mut conn))
                .map_err(|e| connect_error(format!("setting the connection PRAGMAs: {e}")))?;
            Ok(DbConnection::Sqlite(conn))
        }
    }
}

/// The libpq parameters that bound how long a connection waits on a
/// database that stopped answering (its packets dropped, as during a
/// failover or a network partition), each added to a PostgreSQL URL that
/// does not set it:
/// - `connect_timeout=2`: opening a connection gives up after 2 s;
/// - `keepalives=1`, `keepalives_idle=5`, `keepalives_interval=2`,
///   `keepalives_count=2`: an idle connection whose peer is gone is found
///   broken in about 9 s;
/// - `tcp_user_timeout=3000`: a connection whose sent data stays
///   unacknowledged for 3 s is broken, so the pool's check-out ping and a
///   query fail in about that time rather than after the kernel's
///   retransmissions (minutes).
pub const NETWORK_TIMEOUTS: [(&str, &str); 6] = [
    ("connect_timeout", "2"),
    ("keepalives", "1"),
    ("keepalives_idle", "5"),
    ("keepalives_interval", "2"),
    ("keepalives_count", "2"),
    ("tcp_user_timeout", "3000"),
];

/// `url` (a `postgres://…` URL or a libpq key=value string) with each of
/// [`NETWORK_TIMEOUTS`] it does not set added. What the operator set is
/// never overridden: a parameter already in the URL (its key
/// percent-decoded in the URL form, compared without regard to case),
/// `connect_timeout` when `PGCONNECT_TIMEOUT` is set, and a string naming a
/// `service` (whose pg_service.conf entry may set them) is left as is.
pub(crate) fn with_network_timeouts(url: &str) -> String {
    let connect_timeout_in_env =
        std::env::var_os("PGCONNECT_TIMEOUT").is_some_and(|v| !v.is_empty());
    add_network_timeouts(url, connect_timeout_in_env)
}

fn add_network_timeouts(url: &str, connect_timeout_in_env: bool) -> String {
    let key_value = is_key_value_conninfo(url);
    let set = chatdesk_domain::secret::conninfo_keys(url);
    let is_set = |key: &str| set.iter().any(|k| k.eq_ignore_ascii_case(key));
    if is_set("service") {
        return url.to_string();
    }
    let missing: Vec<(&str, &str)> = NETWORK_TIMEOUTS
        .into_iter()
        .filter(|(key, _)| !is_set(key))
        .filter(|(key, _)| !(*key == "connect_timeout" && connect_timeout_in_env))
        .collect();
    let mut out = url.trim_end().to_string();
    for (key, value) in missing {
        if key_value {
            out.push(' ');
        } else if !out.contains('?') {
            out.push('?');
        } else if !out.ends_with(['?', '&']) {
            out.push('&');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Creates the directory of a SQLite file when missing.
pub(crate) fn ensure_parent_dir(file: &Path) -> Result<(), StoreError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            }),
        _ => Ok(()),
    }
}

/// A file path percent-encoded for a SQLite `file:` URI.
fn uri_path(path: &str) -> String {
    use std::fmt::Write;
    path.bytes()
        .fold(String::with_capacity(path.len()), |mut out, b| {
            if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "%{b:02X}");
            }
            out
        })
}

impl DbConnection {
    /// The connection's backend.
    pub fn backend(&self) -> Backend {
        match self {
            DbConnection::Pg(_) => Backend::Postgres,
            DbConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// Runs `f` in a transaction meant to write. On SQLite it starts with
/// `BEGIN IMMEDIATE`, taking the write lock up front: a deferred
/// transaction that reads and then writes can fail with `SQLITE_BUSY` when
/// another writer got in between, and `busy_timeout` does not help there.
/// On PostgreSQL it is an ordinary transaction; rows a decision depends on
/// are locked with `SELECT … FOR NO KEY UPDATE` inside it.
pub(crate) fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    if let DbConnection::Sqlite(sqlite) = conn {
        // Inside a unit of work (see `crate::unit`) the transaction already
        // holds the write lock, and this one is a savepoint of it.
        let outermost = AnsiTransactionManager::transaction_manager_status_mut(sqlite)
            .transaction_depth()?
            .is_none();
        if outermost {
            AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
            return match f(conn) {
                Ok(value) => {
                    <DbConnection as Connection>::TransactionManager::commit_transaction(conn)?;
                    Ok(value)
                }
                Err(error) => {
                    <DbConnection as Connection>::TransactionManager::rollback_transaction(conn)?;
                    Err(error)
                }
            };
        }
    }
    conn.transaction(f)
}

/// Makes and checks pooled connections.
pub(crate) struct ConnectionManager {
    url: String,
}

impl ConnectionManager {
    pub(crate) fn new(database_url: &str) -> Self {
        ConnectionManager {
            url: database_url.to_string(),
        }
    }
}

impl std::fmt::Debug for ConnectionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionManager")
            .field("url", &redact_url(&self.url))
            .finish()
    }
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = StoreError;

    fn connect(&self) -> Result<DbConnection, StoreError> {
        open(&self.url, SqliteOpen::ExistingOnly)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), StoreError> {
        conn.ping().map_err(StoreError::Query)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

/// Logs the pool's background connection failures through `tracing`.
#[derive(Debug)]
pub(crate) struct TracingErrorHandler;

impl r2d2::HandleError<StoreError> for TracingErrorHandler {
    fn handle_error(&self, error: StoreError) {
        tracing::warn!(error = %error, "database connection failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_from_url_schemes() {
        let table = [
            ("postgres://u@h/d", Some(Backend::Postgres)),
            ("postgresql://u@h/d", Some(Backend::Postgres)),
            ("POSTGRES://u@h/d", Some(Backend::Postgres)),
            ("sqlite://./data/x.sqlite3", Some(Backend::Sqlite)),
            ("sqlite:///tmp/x.sqlite3", Some(Backend::Sqlite)),
            ("mysql://u:pw@h/d", None),
            ("./data/x.sqlite3", None),
            ("", None),
            (
                "host=db user=u password=pw dbname=d",
                Some(Backend::Postgres),
            ),
            ("dbname=postgres://u@h/d", Some(Backend::Postgres)),
            (" dbname = d", Some(Backend::Postgres)),
            ("host", None),
            ("=x", None),
            ("sqlite://./x?mode=rw", Some(Backend::Sqlite)),
        ];
        for (url, expected) in table {
            assert_eq!(backend_of(url).ok(), expected, "{url}");
        }
        let err = backend_of("mysql://u:pw@h/d").expect_err("unsupported");
        let message = err.to_string();
        assert!(message.contains("mysql://u:***@h/d"), "{message}");
        assert!(!message.contains("pw"), "{message}");
    }

    const ALL_TIMEOUTS: &str = "connect_timeout=2&keepalives=1&keepalives_idle=5\
&keepalives_interval=2&keepalives_count=2&tcp_user_timeout=3000";

    #[test]
    fn network_timeouts_are_added_to_urls() {
        let table = [
            (
                "postgres://u:p@db:5432/chatdesk".to_string(),
                format!("postgres://u:p@db:5432/chatdesk?{ALL_TIMEOUTS}"),
            ),
            (
                "postgresql://db/x?sslmode=require".to_string(),
                format!("postgresql://db/x?sslmode=require&{ALL_TIMEOUTS}"),
            ),
            (
                "postgres://db/x?".to_string(),
                format!("postgres://db/x?{ALL_TIMEOUTS}"),
            ),
            (
                "postgres://db/x?sslmode=require&".to_string(),
                format!("postgres://db/x?sslmode=require&{ALL_TIMEOUTS}"),
            ),
            // What the operator set stays, whatever its case or encoding.
            (
                "postgres://db/x?connect_timeout=10&TCP_USER_TIMEOUT=0".to_string(),
                "postgres://db/x?connect_timeout=10&TCP_USER_TIMEOUT=0&keepalives=1\
&keepalives_idle=5&keepalives_interval=2&keepalives_count=2"
                    .to_string(),
            ),
            (
                "postgres://db/x?connect%5Ftimeout=10&keep%61lives=0&keepalives_idle=60\
&keepalives_interval=10&keepalives_count=5&tcp_user_timeout=0"
                    .to_string(),
                "postgres://db/x?connect%5Ftimeout=10&keep%61lives=0&keepalives_idle=60\
&keepalives_interval=10&keepalives_count=5&tcp_user_timeout=0"
                    .to_string(),
            ),
            // A value that merely contains a key's name does not count.
            (
                "postgres://db/x?options=-cconnect_timeout%3D9".to_string(),
                format!("postgres://db/x?options=-cconnect_timeout%3D9&{ALL_TIMEOUTS}"),
            ),
            (
                "postgres://db/x?service=prod".to_string(),
                "postgres://db/x?service=prod".to_string(),
            ),
        ];
        for (url, expected) in table {
            assert_eq!(add_network_timeouts(&url, false), expected, "{url}");
        }
    }

    #[test]
    fn network_timeouts_are_added_to_key_value_strings() {
        let all = ALL_TIMEOUTS.replace('&', " ");
        let table = [
            (
                "host=db user=app dbname=chatdesk".to_string(),
                format!("host=db user=app dbname=chatdesk {all}"),
            ),
            (
                "host=db dbname=x  ".to_string(),
                format!("host=db dbname=x {all}"),
            ),
            (
                "host=db connect_timeout = 7 Keepalives_Idle=30 password='a b\\' tcp_user_timeout=1'"
                    .to_string(),
                "host=db connect_timeout = 7 Keepalives_Idle=30 password='a b\\' tcp_user_timeout=1' \
keepalives=1 keepalives_interval=2 keepalives_count=2 tcp_user_timeout=3000"
                    .to_string(),
            ),
            (
                "host=db service=prod".to_string(),
                "host=db service=prod".to_string(),
            ),
        ];
        for (url, expected) in table {
            assert_eq!(add_network_timeouts(&url, false), expected, "{url}");
        }
    }

    #[test]
    fn pgconnect_timeout_in_the_environment_is_left_to_libpq() {
        assert_eq!(
            add_network_timeouts("postgres://db/x", true),
            "postgres://db/x?keepalives=1&keepalives_idle=5&keepalives_interval=2\
&keepalives_count=2&tcp_user_timeout=3000"
        );
        assert_eq!(
            add_network_timeouts("host=db", true),
            "host=db keepalives=1 keepalives_idle=5 keepalives_interval=2 keepalives_count=2 \
tcp_user_timeout=3000"
        );
    }

    #[test]
    fn sqlite_uri_paths_are_percent_encoded() {
        assert_eq!(
            uri_path("/tmp/a b/c?d#e%.sqlite3"),
            "/tmp/a%20b/c%3Fd%23e%25.sqlite3"
        );
        assert_eq!(
            uri_path("./data/chatdesk.sqlite3"),
            "./data/chatdesk.sqlite3"
        );
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(sqlite_path("sqlite://./data/x").ok(), Some("./data/x"));
        assert_eq!(sqlite_path("sqlite:///tmp/x").ok(), Some("/tmp/x"));
        assert!(sqlite_path("sqlite://").is_err());
    }
}
