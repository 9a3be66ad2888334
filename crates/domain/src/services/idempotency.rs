//! Running a creating use case at most once per idempotency key (see
//! [`crate::idempotency`]).

use std::sync::Arc;

use crate::error::Error;
use crate::idempotency::{IdempotencyKey, KeyRecord, Reservation};
use crate::ports::{Clock, IdempotencyRepository};

/// An answer: its HTTP status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// Whether this is the first request's answer, given again.
    pub replayed: bool,
}

/// Keeps creating requests idempotent.
#[derive(Clone)]
pub struct IdempotencyService {
    clock: Arc<dyn Clock>,
    keys: Arc<dyn IdempotencyRepository>,
}

impl IdempotencyService {
    /// The service over its ports.
    pub fn new(clock: Arc<dyn Clock>, keys: Arc<dyn IdempotencyRepository>) -> Self {
        IdempotencyService { clock, keys }
    }

    /// Runs `make` and writes its answer with `answer`, unless the key
    /// (within `scope`, for the request whose fingerprint is
    /// `fingerprint`) was seen: then the first answer is given again, a
    /// key used for another request is a validation error on the
    /// `Idempotency-Key` header, and a key whose first request has not
    /// been answered is [`Error::IdempotencyKeyInUse`]. Without a key,
    /// `make` simply runs. When `make` or `answer` fails the key is freed:
    /// only an answer is remembered.
    pub fn run<T>(
        &self,
        key: Option<&IdempotencyKey>,
        scope: &str,
        fingerprint: &str,
        make: impl FnOnce() -> Result<T, Error>,
        answer: impl FnOnce(&T) -> Result<Answer, Error>,
    ) -> Result<Answer, Error> {
        let Some(key) = key else {
            return make().and_then(|made| answer(&made));
        };
        let digest = key.digest(scope);
        let reservation = self.keys.reserve_key(&KeyRecord {
            digest: digest.clone(),
            fingerprint: fingerprint.to_string(),
            at: self.clock.now(),
        })?;
        match reservation {
            Reservation::Reserved => {}
            Reservation::Answered { status, sealed } => {
                let body = key.unseal(&sealed).ok_or_else(|| {
                    Error::Internal("a stored answer does not open with its key".into())
                })?;
                return Ok(Answer {
                    status,
                    body,
                    replayed: true,
                });
            }
            Reservation::InProgress => return Err(Error::IdempotencyKeyInUse),
            Reservation::OtherRequest => {
                return Err(Error::invalid(
                    crate::idempotency::HEADER,
                    "was already used for another request; use a new key for a new request",
                ))
            }
        }
        match make().and_then(|made| answer(&made)) {
            Ok(answered) => {
                self.keys.record_answer(
                    &digest,
                    answered.status,
                    &key.seal(&answered.body),
                    self.clock.now(),
                )?;
                Ok(answered)
            }
            Err(error) => {
                if let Err(release) = self.keys.release_key(&digest) {
                    tracing::warn!(%release, "an idempotency key could not be released");
                }
                Err(error)
            }
        }
    }
}
