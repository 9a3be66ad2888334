//! Hiding passwords in URLs before they reach a log.

pub use chatdesk_domain::secret::redact_url;

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
    fn scrubs_secrets() {
        let secrets = vec!["hunter2".to_owned(), String::new(), "b".to_owned()];
        assert_eq!(
            scrub("auth hunter2 failed".to_owned(), &secrets),
            "auth *** failed"
        );
        assert_eq!(scrub("nothing but".to_owned(), &secrets), "nothing but");
    }
}
