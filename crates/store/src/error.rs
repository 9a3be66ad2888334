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

/// The passwords a URL carries, raw and percent-decoded.
fn passwords_in(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        if let Some((_, password)) = userinfo.split_once(':') {
            found.push(password.to_string());
        }
    }
    if let Some((_, query)) = tail.split_once('?') {
        for pair in query.split('&') {
            if let Some((key, value)) = pair.split_once('=') {
                if key.eq_ignore_ascii_case("password") {
                    found.push(value.to_string());
                }
            }
        }
    }
    let decoded: Vec<String> = found.iter().map(|p| percent_decode(p)).collect();
    found.extend(decoded);
    found.retain(|p| !p.is_empty());
    found.sort();
    found.dedup();
    // Longest first, so a password containing another is replaced whole.
    found.sort_by_key(|p| std::cmp::Reverse(p.len()));
    found
}

/// `message` with every password of `url` replaced by `***`.
pub(crate) fn scrub(message: &str, url: &str) -> String {
    passwords_in(url)
        .iter()
        .fold(message.to_string(), |text, password| {
            text.replace(password.as_str(), "***")
        })
}

fn percent_decode(value: &str) -> String {
    fn hex(byte: u8) -> Option<u8> {
        (byte as char)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(high * 16 + low);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
