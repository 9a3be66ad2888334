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

/// The URL with its password (in the authority or a `password=` query
/// parameter) replaced by `***`, fit for logs and messages.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{authority}{tail}"),
        None => format!("{authority}{tail}"),
    }
}

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
    fn redacts_passwords_in_authority_and_query() {
        let table = [
            (
                "postgres://app:s3cret@db:5432/chatdesk",
                "postgres://app:***@db:5432/chatdesk",
            ),
            ("postgres://app@db/chatdesk", "postgres://app@db/chatdesk"),
            (
                "postgres://db/x?user=a&password=pw&sslmode=require",
                "postgres://db/x?user=a&password=***&sslmode=require",
            ),
            (
                "postgresql://u:p%40ss@h/d?options=-csearch_path%3Dt",
                "postgresql://u:***@h/d?options=-csearch_path%3Dt",
            ),
            (
                "sqlite://./data/chatdesk.sqlite3",
                "sqlite://./data/chatdesk.sqlite3",
            ),
        ];
        for (url, expected) in table {
            assert_eq!(redact_url(url), expected);
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
