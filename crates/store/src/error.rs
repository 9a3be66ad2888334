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

impl From<StoreError> for chatdesk_domain::Error {
    fn from(error: StoreError) -> Self {
        chatdesk_domain::Error::Internal(format!("storage: {error}"))
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
