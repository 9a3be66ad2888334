//! `Idempotency-Key`: a retried creating request (a `POST` whose answer
//! was lost) gets the first answer instead of making the thing twice; the
//! same key with another request is refused.
//!
//! A key is scoped to who sent it (a member, or a widget session) and
//! stored only as a digest of that scope and the key. The first answer is
//! stored sealed with a keystream derived from the key itself: it may
//! hold a secret shown once (a new site's API key, a new member's token),
//! and without the client's key the stored bytes reveal nothing.
//!
//! The use case and the answer's record share one hop to the blocking
//! pool and one database transaction: the key is reserved (a unique row),
//! the use case runs, and the answer is recorded, all committed together.
//! A failed use case rolls the reservation back with what it wrote, so a
//! retry runs it again; a process that dies midway leaves nothing behind,
//! so a retry makes the thing once. A concurrent request with the same key
//! waits for the first one's transaction and then gets its answer (a
//! reservation found without an answer, which no transaction commits, is
//! [`Error::IdempotencyKeyInUse`]).

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// How long a key is remembered.
pub const KEY_LIFETIME: Duration = Duration::hours(24);

/// The request header.
pub const HEADER: &str = "Idempotency-Key";

/// A client's idempotency key: 1–255 visible ASCII characters.
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl std::fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdempotencyKey(***)")
    }
}

impl IdempotencyKey {
    /// Checks a header value.
    pub fn parse(raw: &str) -> Result<IdempotencyKey, Error> {
        if raw.is_empty() || raw.len() > 255 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                HEADER,
                "must be 1-255 visible ASCII characters (a UUID is a good key)",
            ));
        }
        Ok(IdempotencyKey(raw.to_string()))
    }

    /// The stored digest of the key in `scope` (who sent it).
    pub fn digest(&self, scope: &str) -> String {
        hex(&Sha256::new()
            .chain_update(b"chatdesk idempotency key\0")
            .chain_update(scope.as_bytes())
            .chain_update(b"\0")
            .chain_update(self.0.as_bytes())
            .finalize())
    }

    fn mac(&self, label: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_bytes())
            .unwrap_or_else(|_| unreachable_hmac());
        mac.update(label);
        mac
    }

    fn subkey(&self, label: &[u8]) -> [u8; 32] {
        self.mac(label).finalize().into_bytes().into()
    }

    /// Seals an answer: XOR with an HMAC-SHA256 keystream, then an
    /// HMAC-SHA256 tag, both keyed by subkeys of this key.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut out = keystream_xor(&self.subkey(b"seal"), plaintext);
        let tag = tag(&self.subkey(b"tag"), &out);
        out.extend_from_slice(&tag);
        out
    }

    /// Opens what [`IdempotencyKey::seal`] sealed; `None` when it was not
    /// sealed by this key or was altered.
    pub fn unseal(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        let split = sealed.len().checked_sub(32)?;
        let (body, their_tag) = sealed.split_at(split);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.subkey(b"tag")).ok()?;
        mac.update(body);
        mac.verify_slice(their_tag).ok()?;
        Some(keystream_xor(&self.subkey(b"seal"), body))
    }
}

#[allow(clippy::panic)]
fn unreachable_hmac() -> Hmac<Sha256> {
    panic!("HMAC accepts keys of every length")
}

fn keystream_xor(key: &[u8; 32], data: &[u8]) -> Vec<u8> {
    data.chunks(32)
        .enumerate()
        .flat_map(|(i, chunk)| {
            let mut mac =
                <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable_hmac());
            mac.update(&(i as u64).to_be_bytes());
            let block = mac.finalize().into_bytes();
            chunk
                .iter()
                .zip(block)
                .map(|(b, k)| b ^ k)
                .collect::<Vec<u8>>()
        })
        .collect()
}

fn tag(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable_hmac());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The fingerprint of a request: its method, path and body. A key reused
/// with another fingerprint is refused.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    hex(&Sha256::new()
        .chain_update(method.as_bytes())
        .chain_update(b" ")
        .chain_update(path.as_bytes())
        .chain_update(b"\0")
        .chain_update(body)
        .finalize())
}

/// What reserving a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// The key is new: it is now reserved for this request.
    Reserved,
    /// The key's first request was answered: here is its answer, sealed.
    Answered {
        /// The answer's HTTP status.
        status: u16,
        /// Its body, sealed with the key.
        sealed: Vec<u8>,
    },
    /// The key's first request has not been answered yet (it is running,
    /// or its process died before recording the answer).
    InProgress,
    /// The key was used for another request.
    OtherRequest,
}

/// A reserved key's record, for the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// [`IdempotencyKey::digest`].
    pub digest: String,
    /// [`fingerprint`] of the request.
    pub fingerprint: String,
    /// When it was reserved.
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        assert!(IdempotencyKey::parse("0190f2c4-5b1e-7c3a-9d2f-1a2b3c4d5e6f").is_ok());
        for bad in ["", " ", "a b", "caf\u{e9}", "tab\t", &"k".repeat(256)] {
            let err = IdempotencyKey::parse(bad).expect_err(bad);
            assert_eq!(err.field_errors()[0].field, HEADER);
        }
        assert!(
            !format!("{:?}", IdempotencyKey::parse("secret-key").expect("ok")).contains("secret")
        );
    }

    #[test]
    fn digests_depend_on_scope_and_key() {
        let a = IdempotencyKey::parse("key-1").expect("ok");
        let b = IdempotencyKey::parse("key-2").expect("ok");
        assert_eq!(a.digest("member:1"), a.digest("member:1"));
        assert_ne!(a.digest("member:1"), a.digest("member:2"));
        assert_ne!(a.digest("member:1"), b.digest("member:1"));
        assert_eq!(a.digest("m").len(), 64);
        assert_ne!(
            fingerprint("POST", "/a", b"{}"),
            fingerprint("POST", "/a", b"{ }")
        );
        assert_ne!(
            fingerprint("POST", "/a", b"{}"),
            fingerprint("POST", "/b", b"{}")
        );
    }

    #[test]
    fn sealed_answers_open_only_with_their_key() {
        let key = IdempotencyKey::parse("key-1").expect("ok");
        for text in [&b""[..], b"x", &[7u8; 31], &[9u8; 32], &[1u8; 1000]] {
            let sealed = key.seal(text);
            assert_eq!(sealed.len(), text.len() + 32);
            assert_eq!(key.unseal(&sealed).as_deref(), Some(text));
        }
        let secret = br#"{"apiKey":"cd_live_abc"}"#;
        let sealed = key.seal(secret);
        assert!(!sealed.windows(7).any(|w| w == b"cd_live"));
        let other = IdempotencyKey::parse("key-2").expect("ok");
        assert_eq!(other.unseal(&sealed), None);
        let mut altered = sealed.clone();
        altered[0] ^= 1;
        assert_eq!(key.unseal(&altered), None);
        assert_eq!(key.unseal(&sealed[..10]), None);
    }
}
