//! The store's error type and the redaction of database URLs.

use std::path::PathBuf;

/// Why a storage operation failed. Every message says the real cause and
/// never contains a URL's password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL names no backend chatdesk supports.
    #[error(
        "unsupported database URL `{0}`: expected postgres://…, postgresql://… or sqlite://PATH"
    )]
    UnsupportedUrl(String),
    /// The database could not be opened or reached.
    #[error("cannot connect to the database at {url}: {cause}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// The driver's reason (e.g. a failed password authentication).
        cause: String,
    },
    /// The directory of a SQLite database file could not be created.
    #[error("cannot create the directory {} for the SQLite database: {source}", .path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The reason.
        #[source]
        source: std::io::Error,
    },
    /// No pooled connection could be had in time.
    #[error("no database connection available: {0}")]
    Pool(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// The lock serialising SQLite migrations across processes could not
    /// be taken.
    #[error("cannot lock {} to migrate the SQLite database: {source}", .path.display())]
    MigrationLock {
        /// The lock file.
        path: PathBuf,
        /// The reason.
        #[source]
        source: std::io::Error,
    },
    /// Applying a migration failed.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A stored value cannot be read back into the domain type.
    #[error("unexpected value in {table}.{column}: {message}")]
    InvalidValue {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A value cannot be stored in its column.
    #[error("value out of range for {column}: {value}")]
    OutOfRange {
        /// The column.
        column: &'static str,
        /// The value.
        value: String,
    },
}

impl StoreError {
    /// Whether the database could not be reached rather than a statement
    /// being wrong: no pooled connection in time (the pool could not
    /// connect), or the connection closed or failed under the query. Such
    /// failures pass when the database is back; a retry may succeed.
    pub fn is_unavailable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error as DieselError};
        match self {
            StoreError::Pool(_) => true,
            StoreError::Query(DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            )) => true,
            // A SQLite file that cannot be opened or is locked for longer
            // than busy_timeout.
            StoreError::Query(DieselError::DatabaseError(_, info)) => {
                let message = info.message();
                message.starts_with("database is locked")
                    || message.starts_with("unable to open database file")
            }
            _ => false,
        }
    }
}

/// Unreachable-database failures become `DatabaseUnavailable` (503 with
/// `Retry-After`), logged here with their cause; everything else is
/// `Internal` (a bug to fix, not a condition to wait out).
impl From<StoreError> for chatdesk_domain::Error {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            tracing::warn!(error = %error, "database unavailable");
            chatdesk_domain::Error::DatabaseUnavailable
        } else {
            chatdesk_domain::Error::Internal(format!("storage: {error}"))
        }
    }
}

pub use chatdesk_domain::secret::redact_url;

/// `message` with every password of `url` replaced by `***`.
pub(crate) fn scrub(message: &str, url: &str) -> String {
    chatdesk_domain::secret::url_passwords(url)
        .iter()
        .fold(message.to_string(), |text, password| {
            text.replace(password.as_str(), "***")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatdesk_domain::Error;
    use diesel::result::{DatabaseErrorKind, Error as DieselError};

    fn database_error(kind: DatabaseErrorKind, message: &str) -> StoreError {
        StoreError::Query(DieselError::DatabaseError(
            kind,
            Box::new(message.to_string()),
        ))
    }

    #[test]
    fn unreachable_databases_are_unavailable_and_bugs_internal() {
        let unavailable = [
            StoreError::Pool("timed out waiting for connection".into()),
            database_error(
                DatabaseErrorKind::ClosedConnection,
                "server closed the connection unexpectedly",
            ),
            database_error(
                DatabaseErrorKind::UnableToSendCommand,
                "no connection to the server",
            ),
            database_error(DatabaseErrorKind::Unknown, "database is locked"),
        ];
        for error in unavailable {
            let message = error.to_string();
            assert_eq!(Error::from(error), Error::DatabaseUnavailable, "{message}");
        }
        let internal = [
            StoreError::Query(DieselError::NotFound),
            database_error(
                DatabaseErrorKind::Unknown,
                "syntax error at or near \"SELEC\"",
            ),
            database_error(DatabaseErrorKind::UniqueViolation, "duplicate key"),
            StoreError::Migration("m: table x already exists".into()),
        ];
        for error in internal {
            let message = error.to_string();
            assert_eq!(Error::from(error).code(), "INTERNAL", "{message}");
        }
    }

    #[test]
    fn scrubs_raw_and_decoded_passwords() {
        let url = "postgres://u:p%40ss@h/d";
        assert_eq!(
            scrub("auth failed for p@ss and p%40ss", url),
            "auth failed for *** and ***"
        );
        assert_eq!(scrub("nothing here", "postgres://h/d"), "nothing here");
    }
}
