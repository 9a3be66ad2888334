//! Host names: the validation of a DNS host name, a site's domain, and
//! whether a browser's host or `Origin` is on a site.

use std::fmt;

use serde::{Deserialize, Serialize};

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

/// A site's domain: trimmed, lower-cased, at most 253 characters, a valid
/// host name (no scheme, port or path).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SiteDomain(String);

impl SiteDomain {
    /// Parses a domain as typed by a user (control characters are refused
    /// before trimming).
    pub fn parse(raw: &str) -> Result<SiteDomain, String> {
        crate::text::check_single_line(raw)?;
        let value = raw.trim().to_lowercase();
        if value.contains("://") {
            return Err(
                "must be a bare domain like example.com, without http:// or https://".into(),
            );
        }
        let value = value.strip_suffix('.').unwrap_or(&value).to_string();
        validate_host(&value)?;
        Ok(SiteDomain(value))
    }

    /// The domain.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a browser on `host` is on this site: the domain itself, or,
    /// when `allow_subdomains`, any host ending in `.` + the domain.
    pub fn matches_host(&self, host: &str, allow_subdomains: bool) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host == self.0 {
            return true;
        }
        allow_subdomains
            && host.len() > self.0.len() + 1
            && host.ends_with(&self.0)
            && host.as_bytes()[host.len() - self.0.len() - 1] == b'.'
    }

    /// Whether an `Origin` header value (`scheme://host[:port]`) is on this
    /// site. A malformed or opaque (`null`) origin never is.
    pub fn matches_origin(&self, origin: &str, allow_subdomains: bool) -> bool {
        origin_host(origin).is_some_and(|host| self.matches_host(&host, allow_subdomains))
    }
}

/// The host of an `Origin` header value: `https://app.example.com:8443` →
/// `app.example.com`. `None` for anything that is not `http(s)://host[:port]`.
pub fn origin_host(origin: &str) -> Option<String> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))?;
    if rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    let host = match rest.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        Some(_) => return None,
        None => rest,
    };
    let host = host.to_ascii_lowercase();
    validate_host(&host).ok()?;
    Some(host)
}

impl TryFrom<String> for SiteDomain {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        SiteDomain::parse(&value)
    }
}

impl From<SiteDomain> for String {
    fn from(value: SiteDomain) -> Self {
        value.0
    }
}

impl fmt::Display for SiteDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The endpoint `{base_url}{path}` of an HTTP API that an adapter calls
/// (the model's chat completions, Resend's emails), or why the configured
/// base URL cannot be used: it must be an http or https URL with a host, no
/// credentials (the key has its own setting, `key_variable`), no query or
/// fragment, and not already end with `path`. `example_root` shows the
/// right form in the messages.
pub fn api_endpoint(
    base_url: &str,
    path: &str,
    example_root: &str,
    key_variable: &str,
) -> Result<String, String> {
    let url = base_url.trim();
    if url.is_empty() {
        return Err("it is empty".into());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("it has no http:// or https:// scheme".into());
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err("only http and https are supported".into());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains spaces or control characters".into());
    }
    if url.contains(['?', '#']) {
        return Err(format!(
            "it has a query or fragment; give the API root, e.g. {example_root}"
        ));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!(
            "it carries credentials; put the key in {key_variable} instead"
        ));
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Err("it has no host".into());
    }
    let root = url.trim_end_matches('/');
    if root.ends_with(path) {
        return Err(format!(
            "give the API root ({example_root}), not the {path} endpoint"
        ));
    }
    Ok(format!("{root}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_lower_cased_and_validated() {
        let table: [(&str, Result<&str, &str>); 8] = [
            ("Example.COM", Ok("example.com")),
            ("  shop.example.com ", Ok("shop.example.com")),
            ("example.com.", Ok("example.com")),
            (
                "https://example.com",
                Err("must be a bare domain like example.com, without http:// or https://"),
            ),
            (
                "example.com/path",
                Err("must be a valid host name, like example.com"),
            ),
            (
                "exa mple.com",
                Err("must be a valid host name, like example.com"),
            ),
            ("10.0.0.1", Err("must be a host name, not an IP address")),
            ("", Err("must not be empty")),
        ];
        for (raw, expected) in table {
            let parsed = SiteDomain::parse(raw);
            assert_eq!(
                parsed
                    .as_ref()
                    .map(SiteDomain::as_str)
                    .map_err(String::as_str),
                expected,
                "{raw:?}"
            );
        }
        let label = "a".repeat(63);
        let at_limit = format!("{label}.{label}.{label}.{}", "b".repeat(61));
        assert_eq!(at_limit.len(), 253);
        assert!(SiteDomain::parse(&at_limit).is_ok());
        assert!(SiteDomain::parse(&format!("{at_limit}c")).is_err());
    }

    #[test]
    fn subdomain_matching() {
        let domain = SiteDomain::parse("example.com").expect("valid");
        // (host, allow_subdomains, matches)
        let table = [
            ("example.com", false, true),
            ("EXAMPLE.com", false, true),
            ("example.com.", false, true),
            ("app.example.com", false, false),
            ("app.example.com", true, true),
            ("a.b.example.com", true, true),
            ("badexample.com", true, false),
            ("example.com.evil.io", true, false),
            ("xample.com", true, false),
            (".example.com", true, false),
            ("other.org", true, false),
        ];
        for (host, allow, expected) in table {
            assert_eq!(
                domain.matches_host(host, allow),
                expected,
                "{host} allow={allow}"
            );
        }
    }

    #[test]
    fn origins() {
        let table = [
            ("https://example.com", Some("example.com")),
            ("http://App.Example.com:8080", Some("app.example.com")),
            ("https://example.com:", None),
            ("https://example.com/path", None),
            ("https://user@example.com", None),
            ("ftp://example.com", None),
            ("null", None),
            ("https://127.0.0.1", None),
        ];
        for (origin, expected) in table {
            assert_eq!(origin_host(origin).as_deref(), expected, "{origin}");
        }
        let domain = SiteDomain::parse("example.com").expect("valid");
        assert!(domain.matches_origin("https://example.com", false));
        assert!(!domain.matches_origin("https://www.example.com", false));
        assert!(domain.matches_origin("https://www.example.com", true));
        assert!(!domain.matches_origin("null", true));
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
