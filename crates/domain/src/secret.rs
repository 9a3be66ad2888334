//! Secrets: member tokens, site API keys, identity secrets and session
//! tokens. Each is a high-entropy random string with a visible prefix, shown
//! to its owner once and stored only as its SHA-256 hash.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The kinds of secret chatdesk issues, each with its own prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A team member's dashboard token.
    MemberToken,
    /// A site's API key, used by the widget SDK.
    SiteKey,
    /// A site's identity-verification secret.
    IdentitySecret,
    /// A chat session's token, held by the widget.
    SessionToken,
}

impl SecretKind {
    /// The visible prefix of secrets of this kind.
    pub fn prefix(self) -> &'static str {
        match self {
            SecretKind::MemberToken => "cd_pat_",
            SecretKind::SiteKey => "cd_live_",
            SecretKind::IdentitySecret => "cd_ids_",
            SecretKind::SessionToken => "cd_sess_",
        }
    }
}

/// How many random bytes back a secret (256 bits).
pub const SECRET_BYTES: usize = 32;

/// How many characters of a secret, after its prefix, are kept for display.
pub const DISPLAY_CHARS: usize = 6;

/// The SHA-256 hash of a secret, the only form in which it is stored.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// Hashes a presented secret.
    pub fn of(secret: &str) -> SecretHash {
        SecretHash(Sha256::digest(secret.as_bytes()).into())
    }

    /// The hash as lower-case hex (64 characters), as stored.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Reads a stored hash.
    pub fn from_hex(value: &str) -> Option<SecretHash> {
        if value.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(value.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(SecretHash(bytes))
    }

    /// Whether `secret` hashes to this hash, compared in constant time.
    pub fn verify(&self, secret: &str) -> bool {
        SecretHash::of(secret).0.ct_eq(&self.0).into()
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hashes are not secrets, but keep logs short.
        write!(f, "SecretHash({}…)", &self.to_hex()[..8])
    }
}

/// A freshly issued secret: the full value (to show once), its hash (to
/// store) and its display prefix (to store and show forever).
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedSecret {
    /// The full secret; never stored, never logged.
    pub plaintext: String,
    /// Its hash.
    pub hash: SecretHash,
    /// The kind prefix plus the first few characters, e.g. `cd_live_3f9a1c`.
    pub display_prefix: String,
}

impl IssuedSecret {
    /// Builds a secret of `kind` from random bytes (see the `IdGenerator` port).
    pub fn new(kind: SecretKind, random: [u8; SECRET_BYTES]) -> IssuedSecret {
        let plaintext = format!("{}{}", kind.prefix(), hex(&random));
        let display_prefix = plaintext[..kind.prefix().len() + DISPLAY_CHARS].to_string();
        IssuedSecret {
            hash: SecretHash::of(&plaintext),
            plaintext,
            display_prefix,
        }
    }
}

impl fmt::Debug for IssuedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedSecret")
            .field("plaintext", &"[redacted]")
            .field("display_prefix", &self.display_prefix)
            .finish()
    }
}

/// Checks a visitor's `userHash` for `external_id` against a site's stored
/// identity-secret hash.
///
/// The site's own server computes `hex(HMAC-SHA256(identitySecret,
/// externalId))`. HMAC-SHA256 first replaces a key longer than its 64-byte
/// block with the key's SHA-256, and every identity secret chatdesk issues is
/// longer than 64 bytes, so keying the HMAC with the stored hash gives the
/// same value: the secret itself never needs to be kept.
pub fn verify_user_hash(identity_secret: &SecretHash, external_id: &str, user_hash: &str) -> bool {
    let expected = user_hash_with_key(identity_secret.as_bytes(), external_id);
    let presented = user_hash.trim().to_ascii_lowercase();
    expected.as_bytes().ct_eq(presented.as_bytes()).into()
}

fn user_hash_with_key(key: &[u8], external_id: &str) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(external_id.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// The keywords whose values are secrets, in a URL's query and in a
/// key=value connection string.
const SECRET_KEYS: [&str; 2] = ["password", "sslpassword"];

fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
}

/// Whether a URL query key names a secret once percent-decoded, as libpq
/// decodes it (`pass%77ord` is `password`).
fn is_secret_query_key(key: &str) -> bool {
    is_secret_key(&percent_decode(key))
}

/// A database or SMTP URL with every secret replaced by `***`, fit for logs
/// and messages:
/// - the password of a URL's user info (`smtp://user:***@host`) and any
///   `password=`/`sslpassword=` query parameter
///   (`postgres://db/x?password=***`);
/// - in a libpq key=value connection string, the `password` and
///   `sslpassword` values, quoted or not (`host=db password=***`), and any
///   URL given as a value (`dbname=postgres://u:***@h/d`).
///
/// Works on text, not a parsed URL, so a malformed URL is redacted too. The
/// user info ends at the last `@`, so a password holding `/`, `?`, `#` or
/// `@` is hidden whole; a key=value string that cannot be read to its end
/// is hidden from where it stops making sense. When in doubt, more is
/// hidden rather than less.
pub fn redact_url(url: &str) -> String {
    match conninfo_pairs(url) {
        Some(pairs) => redact_conninfo(url, &pairs),
        None => redact_uri(url),
    }
}

fn redact_uri(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let (head, rest) = url.split_at(start);
    let (authority, after) = match rest.rfind('@') {
        Some(at) => {
            let (userinfo, host_and_more) = rest.split_at(at);
            match userinfo.find(':') {
                Some(colon) => (format!("{}:***", &userinfo[..colon]), host_and_more),
                None => (userinfo.to_string(), host_and_more),
            }
        }
        None => (String::new(), rest),
    };
    let after = match after.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if is_secret_query_key(key) => format!("{key}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => after.to_string(),
    };
    format!("{head}{authority}{after}")
}

fn redact_conninfo(text: &str, pairs: &ConninfoPairs) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for pair in &pairs.pairs {
        out.push_str(&text[copied..pair.span.start]);
        if is_secret_key(pair.key) {
            out.push_str("***");
        } else if pair.value.contains("://") {
            out.push_str(&redact_uri(&pair.value));
        } else {
            out.push_str(&text[pair.span.clone()]);
        }
        copied = pair.span.end;
    }
    match pairs.unreadable_from {
        Some(from) => {
            out.push_str(&text[copied..from]);
            out.push_str("***");
        }
        None => out.push_str(&text[copied..]),
    }
    out
}

/// The secrets a URL or key=value connection string carries (see
/// [`redact_url`]), each as written and unescaped or percent-decoded,
/// longest first: what to scrub from a driver's message that may echo
/// them.
pub fn url_passwords(url: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    match conninfo_pairs(url) {
        Some(pairs) => {
            for pair in &pairs.pairs {
                if is_secret_key(pair.key) {
                    found.push(url[pair.span.clone()].to_string());
                    found.push(pair.value.clone());
                } else if pair.value.contains("://") {
                    found.extend(uri_passwords(&pair.value));
                }
            }
            if let Some(from) = pairs.unreadable_from {
                found.push(url[from..].trim().to_string());
            }
        }
        None => found.extend(uri_passwords(url)),
    }
    found.retain(|p| !p.is_empty());
    found.sort();
    found.dedup();
    // Longest first, so a password containing another is replaced whole.
    found.sort_by_key(|p| std::cmp::Reverse(p.len()));
    found
}

fn uri_passwords(url: &str) -> Vec<String> {
    let rest = url.find("://").map_or(url, |i| &url[i + 3..]);
    let (userinfo, after) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let mut found: Vec<String> = Vec::new();
    if let Some((_, password)) = userinfo.and_then(|u| u.split_once(':')) {
        found.push(password.to_string());
    }
    if let Some((_, query)) = after.split_once('?') {
        found.extend(query.split('&').filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            is_secret_query_key(key).then(|| value.to_string())
        }));
    }
    let decoded: Vec<String> = found.iter().map(|p| percent_decode(p)).collect();
    found.extend(decoded);
    found
}

/// The parameters a PostgreSQL connection string sets, by keyword: the
/// keys of a libpq key=value string, or the percent-decoded query keys of
/// a `postgres://` URL (as libpq reads them).
pub fn conninfo_keys(url: &str) -> Vec<String> {
    if let Some(conninfo) = conninfo_pairs(url) {
        return conninfo.pairs.iter().map(|p| p.key.to_string()).collect();
    }
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| percent_decode(pair.split_once('=').map_or(pair, |(key, _)| key)))
        .collect()
}

/// One `keyword=value` of a key=value connection string.
#[derive(Debug)]
struct ConninfoPair<'a> {
    key: &'a str,
    /// The value as written (quotes included), as a byte range of the text.
    span: std::ops::Range<usize>,
    /// The value with quotes and backslash escapes removed.
    value: String,
}

#[derive(Debug)]
struct ConninfoPairs<'a> {
    pairs: Vec<ConninfoPair<'a>>,
    /// Where the text stopped being `keyword=value` pairs (a keyword with no
    /// `=`, or an unterminated quote), if it did.
    unreadable_from: Option<usize>,
}

/// Reads a libpq key=value connection string (`host=db password='a b'`):
/// `None` when `text` does not start with `keyword=` (a URL starts with
/// `scheme://`). Values are single-quoted (with `\'` and `\\` escapes) or
/// run to the next white space.
fn conninfo_pairs(text: &str) -> Option<ConninfoPairs<'_>> {
    let trimmed = text.trim_start();
    let keyword_len = trimmed
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    if keyword_len == 0 || !trimmed[keyword_len..].trim_start().starts_with('=') {
        return None;
    }
    let bytes = text.as_bytes();
    let skip_space = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut pairs = Vec::new();
    let mut i = skip_space(0);
    while i < bytes.len() {
        let key_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'=' {
            i += 1;
        }
        let key = &text[key_start..i];
        i = skip_space(i);
        if key.is_empty() || bytes.get(i) != Some(&b'=') {
            if pairs.is_empty() {
                return None;
            }
            return Some(ConninfoPairs {
                pairs,
                unreadable_from: Some(key_start),
            });
        }
        i = skip_space(i + 1);
        let value_start = i;
        let quoted = bytes.get(i) == Some(&b'\'');
        if quoted {
            i += 1;
        }
        let mut value = Vec::new();
        let mut closed = !quoted;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if i + 1 < bytes.len() => {
                    value.push(bytes[i + 1]);
                    i += 2;
                }
                b'\'' if quoted => {
                    i += 1;
                    closed = true;
                    break;
                }
                byte if !quoted && byte.is_ascii_whitespace() => break,
                byte => {
                    value.push(byte);
                    i += 1;
                }
            }
        }
        if !closed {
            return Some(ConninfoPairs {
                pairs,
                unreadable_from: Some(value_start),
            });
        }
        pairs.push(ConninfoPair {
            key,
            span: value_start..i,
            value: String::from_utf8_lossy(&value).into_owned(),
        });
        i = skip_space(i);
    }
    Some(ConninfoPairs {
        pairs,
        unreadable_from: None,
    })
}

/// `%XX` escapes decoded; malformed escapes are kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], escaped) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_secrets_carry_their_prefix_and_verify() {
        for kind in [
            SecretKind::MemberToken,
            SecretKind::SiteKey,
            SecretKind::IdentitySecret,
            SecretKind::SessionToken,
        ] {
            let secret = IssuedSecret::new(kind, [7u8; SECRET_BYTES]);
            assert!(secret.plaintext.starts_with(kind.prefix()));
            assert_eq!(secret.plaintext.len(), kind.prefix().len() + 64);
            assert_eq!(
                secret.display_prefix.len(),
                kind.prefix().len() + DISPLAY_CHARS
            );
            assert!(secret.plaintext.starts_with(&secret.display_prefix));
            assert!(secret.hash.verify(&secret.plaintext));
            assert!(!secret.hash.verify(&secret.display_prefix));
            assert!(!format!("{secret:?}").contains(&secret.plaintext));
        }
    }

    #[test]
    fn hashes_round_trip_through_hex() {
        let hash = SecretHash::of("cd_pat_abc");
        assert_eq!(SecretHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(SecretHash::from_hex("zz"), None);
        assert_eq!(SecretHash::from_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn user_hash_keyed_by_the_stored_hash_matches_the_raw_secret() {
        let secret = IssuedSecret::new(SecretKind::IdentitySecret, [42u8; SECRET_BYTES]);
        assert!(
            secret.plaintext.len() > 64,
            "the equivalence needs > 64 bytes"
        );
        // What the customer's server computes, with the raw secret.
        let from_raw = user_hash_with_key(secret.plaintext.as_bytes(), "user-123");
        assert!(verify_user_hash(&secret.hash, "user-123", &from_raw));
        assert!(verify_user_hash(
            &secret.hash,
            "user-123",
            &from_raw.to_uppercase()
        ));
        assert!(!verify_user_hash(&secret.hash, "user-124", &from_raw));
        assert!(!verify_user_hash(&secret.hash, "user-123", ""));
        let other = IssuedSecret::new(SecretKind::IdentitySecret, [1u8; SECRET_BYTES]);
        assert!(!verify_user_hash(&other.hash, "user-123", &from_raw));
    }

    #[test]
    fn urls_are_redacted() {
        let table = [
            ("smtp://127.0.0.1:2525", "smtp://127.0.0.1:2525"),
            (
                "smtp://user:pass@host:587?tls=required",
                "smtp://user:***@host:587?tls=required",
            ),
            (
                "smtps://user:p%40ss@mail.example.com",
                "smtps://user:***@mail.example.com",
            ),
            ("smtp://user:pa/ss?x#y@host", "smtp://user:***@host"),
            ("smtp://user:p@ss@host", "smtp://user:***@host"),
            ("smtp://user@host", "smtp://user@host"),
            ("smtp://:secret@host", "smtp://:***@host"),
            ("user:secret@host", "user:***@host"),
            ("", ""),
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
            (
                "postgres://db/x?sslpassword=k3y&sslmode=verify-full",
                "postgres://db/x?sslpassword=***&sslmode=verify-full",
            ),
            (
                "postgres://db/x?PASSWORD=p%20w",
                "postgres://db/x?PASSWORD=***",
            ),
            // Query keys are percent-decoded before matching, as libpq does.
            (
                "postgres://db/x?pass%77ord=pw&sslmode=require",
                "postgres://db/x?pass%77ord=***&sslmode=require",
            ),
            (
                "postgres://db/x?%73slpassword=k3y",
                "postgres://db/x?%73slpassword=***",
            ),
            // libpq key=value connection strings.
            (
                "host=db user=app password=s3cret dbname=chatdesk",
                "host=db user=app password=*** dbname=chatdesk",
            ),
            (
                "host=db password='a b\\'c' sslmode=require",
                "host=db password=*** sslmode=require",
            ),
            (
                "  host = db   password =  'it\\'s' port=5432",
                "  host = db   password =  *** port=5432",
            ),
            (
                "host=db password=back\\ slash user=u",
                "host=db password=*** user=u",
            ),
            ("host=db sslpassword=k3y", "host=db sslpassword=***"),
            ("host=db user=app", "host=db user=app"),
            (
                "dbname=postgres://u:pw@h/d?password=x host=h",
                "dbname=postgres://u:***@h/d?password=*** host=h",
            ),
            // Unreadable from some point: hidden from there.
            ("host=db password='never closed", "host=db password=***"),
            ("host=db password=a b c", "host=db password=*** ***"),
        ];
        for (url, expected) in table {
            assert_eq!(redact_url(url), expected, "{url:?}");
        }
    }

    #[test]
    fn no_form_prints_its_secret() {
        // Each string holds the secret "hunter2" (possibly escaped or
        // encoded): neither its redaction nor a message scrubbed of its
        // passwords shows it.
        let forms = [
            "postgres://app:hunter2@db/x",
            "postgresql://app:hunt%65r2@db/x",
            "postgres://db/x?user=app&password=hunter2",
            "postgres://db/x?password=hunt%65r2",
            "postgres://db/x?pass%77ord=hunter2",
            "smtp://app:hunter2@mail:587?tls=required",
            "smtps://app:hunt%65r2@mail",
            "host=db password=hunter2",
            "host=db password='hunter2'",
            "host=db password='hun ter2'",
            "host=db password=hun\\ter2",
            "host=db password = 'hun\\'ter2' dbname=x",
            "host=db sslpassword=hunter2",
            "dbname=postgres://app:hunter2@db/x",
            "host=db password='hunter2",
        ];
        for form in forms {
            let redacted = redact_url(form);
            let message = format!("connection to {form} failed");
            let scrubbed = url_passwords(form)
                .iter()
                .fold(message, |m, p| m.replace(p.as_str(), "***"));
            for shown in [&redacted, &scrubbed] {
                assert!(
                    !shown.contains("hunter2") && !shown.contains("ter2"),
                    "{form:?} shows {shown:?}"
                );
            }
        }
    }

    #[test]
    fn conninfo_values_are_unescaped() {
        assert_eq!(
            url_passwords("host=db password='a b\\'c\\\\' user=u"),
            ["'a b\\'c\\\\'", "a b'c\\"]
        );
        assert_eq!(url_passwords("host=db password=pw"), ["pw"]);
        assert!(url_passwords("host=db user=u").is_empty());
        assert!(url_passwords("host=db password=''")
            .iter()
            .all(|p| p == "''"));
    }

    #[test]
    fn url_passwords_cover_raw_decoded_and_query_forms() {
        assert_eq!(url_passwords("smtp://u:p%40ss@host"), ["p%40ss", "p@ss"]);
        assert_eq!(url_passwords("smtp://u:pass@host"), ["pass"]);
        assert!(url_passwords("smtp://u@host").is_empty());
        assert!(url_passwords("smtp://host:25").is_empty());
        assert!(url_passwords("smtp://u:@host").is_empty());
        assert_eq!(
            url_passwords("postgres://u:ab@h/d?password=abcd&x=1"),
            ["abcd", "ab"]
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%zz%4"), "a b%zz%4");
        assert_eq!(percent_decode("%C3%A9t%C3%A9"), "été");
    }

    #[test]
    fn known_sha256_vector() {
        assert_eq!(
            SecretHash::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn conninfo_keys_of_both_forms() {
        let table: [(&str, &[&str]); 5] = [
            ("postgres://u:p@h/d", &[]),
            (
                "postgres://h/d?sslmode=require&connect%5Ftimeout=5",
                &["sslmode", "connect_timeout"],
            ),
            (
                "host=h password='a b' connect_timeout = 5",
                &["host", "password", "connect_timeout"],
            ),
            ("host=h sslmode", &["host"]),
            ("", &[]),
        ];
        for (url, keys) in table {
            assert_eq!(conninfo_keys(url), keys, "{url}");
        }
    }
}
