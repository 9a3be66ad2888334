//! Email addresses and host names, parsed once at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A syntactically valid email address, trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Parses an address: one `@`, a local part of 1–64 printable characters
    /// without spaces, and a valid host name with at least one dot; at most
    /// 254 characters in all. Control and invisible formatting characters
    /// are refused before trimming ([`crate::text::check_single_line`]).
    pub fn parse(raw: &str) -> Result<Email, String> {
        crate::text::check_single_line(raw)?;
        let value = raw.trim().to_lowercase();
        const INVALID: &str = "must be a valid email address";
        if value.is_empty() {
            return Err("must not be empty".into());
        }
        if value.chars().count() > 254 {
            return Err("must be at most 254 characters".into());
        }
        let (local, host) = value.rsplit_once('@').ok_or(INVALID)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_graphic() && !"@()<>[]\\,;:\"".contains(c));
        if !local_ok || !host.contains('.') || validate_host(host).is_err() {
            return Err(INVALID.into());
        }
        Ok(Email(value))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Email::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks that `host` (already lower-cased) is a valid DNS host name: at
/// most 253 characters, labels of 1–63 letters, digits and hyphens that do
/// not start or end with a hyphen, and a last label that is not all digits
/// (so IP addresses are not host names).
pub fn validate_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("must not be empty".into());
    }
    if host.len() > 253 {
        return Err("must be at most 253 characters".into());
    }
    let labels: Vec<&str> = host.split('.').collect();
    for label in &labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err("must be a valid host name, like example.com".into());
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("must be a host name, not an IP address".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        let table = [
            ("ada@example.com", Some("ada@example.com")),
            (
                "  Ada.Lovelace+x@Example.COM ",
                Some("ada.lovelace+x@example.com"),
            ),
            ("", None),
            ("ada", None),
            ("ada@", None),
            ("@example.com", None),
            ("ada@localhost", None),
            ("ada lovelace@example.com", None),
            ("ada@exa mple.com", None),
            (".ada@example.com", None),
            ("a..da@example.com", None),
            ("ada@-example.com", None),
            ("ada@example.com\n", None),
            ("\tada@example.com", None),
            ("ada@example.com\u{85}", None),
            ("ada\u{0}@example.com", None),
            ("ada@example.com\u{202E}", None),
            ("\u{200B}ada@example.com", None),
        ];
        for (raw, expected) in table {
            let parsed = Email::parse(raw).ok();
            assert_eq!(parsed.as_ref().map(Email::as_str), expected, "{raw:?}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn hosts() {
        let table = [
            ("example.com", true),
            ("a.b.example.co.uk", true),
            ("localhost", true),
            ("xn--bcher-kva.example", true),
            ("my-site.io", true),
            ("-bad.com", false),
            ("bad-.com", false),
            ("bad..com", false),
            ("bad_underscore.com", false),
            ("127.0.0.1", false),
            ("example.com/path", false),
            ("example.com:8080", false),
            ("", false),
        ];
        for (host, ok) in table {
            assert_eq!(validate_host(host).is_ok(), ok, "{host:?}");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(validate_host(&long_label).is_err());
        let label = "a".repeat(63);
        let long_host = format!("{label}.{label}.{label}.{label}.com");
        assert!(long_host.len() > 253);
        assert_eq!(
            validate_host(&long_host),
            Err("must be at most 253 characters".into())
        );
    }
}
