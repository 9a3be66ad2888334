//! Hiding passwords in URLs before they reach a log.

/// The URL with the password of its user info replaced by `***`:
/// `smtp://user:pass@host:587` → `smtp://user:***@host:587`.
///
/// Works on text, not a parsed URL, so a malformed URL is redacted too. The
/// user info ends at the last `@`, so a password holding `/`, `?`, `#` or
/// `@` is hidden whole; when in doubt, more is hidden rather than less.
pub fn redact_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let (head, rest) = url.split_at(start);
    let Some(at) = rest.rfind('@') else {
        return url.to_owned();
    };
    let (userinfo, host_and_more) = rest.split_at(at);
    match userinfo.find(':') {
        Some(colon) => format!("{head}{}:***{host_and_more}", &userinfo[..colon]),
        None => url.to_owned(),
    }
}

/// Secrets shorter than this are not scrubbed: replacing every `a` of a
/// message would make it unreadable, and neither lettre nor the URL parser
/// echo passwords anyway (scrubbing is a second line of defence).
const MIN_SCRUBBED_LEN: usize = 4;

/// Replaces every occurrence of each secret (of at least 4 bytes) in
/// `text` by `***`.
pub(crate) fn scrub(text: String, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= MIN_SCRUBBED_LEN)
        .fold(text, |text, secret| text.replace(secret.as_str(), "***"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
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
        ];
        for (url, expected) in table {
            assert_eq!(redact_url(url), expected, "{url:?}");
        }
    }

    #[test]
    fn scrubs_secrets() {
        let secrets = vec!["hunter2".to_owned(), String::new(), "b".to_owned()];
        assert_eq!(
            scrub("auth hunter2 failed".to_owned(), &secrets),
            "auth *** failed"
        );
        assert_eq!(scrub("nothing but".to_owned(), &secrets), "nothing but");
    }
}
