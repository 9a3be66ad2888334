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
        if !local_ok || !host.contains('.') || crate::host::validate_host(host).is_err() {
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
}
