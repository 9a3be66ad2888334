//! Running a creating use case at most once per idempotency key (see
//! [`crate::idempotency`]).

use std::sync::Arc;

use crate::error::Error;
use crate::idempotency::{IdempotencyKey, KeyRecord, Reservation, KEY_LIFETIME};
use crate::ports::{Clock, IdempotencyRepository, UnitOfWork};

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
    unit: Arc<dyn UnitOfWork>,
}

impl IdempotencyService {
    /// The service over its ports; `unit` must be the unit of work of the
    /// store the use cases write to, so they join the key's transaction.
    pub fn new(
        clock: Arc<dyn Clock>,
        keys: Arc<dyn IdempotencyRepository>,
        unit: Arc<dyn UnitOfWork>,
    ) -> Self {
        IdempotencyService { clock, keys, unit }
    }

    /// Runs `make` and writes its answer with `answer`, unless the key
    /// (within `scope`, for the request whose fingerprint is
    /// `fingerprint`) was seen: then the first answer is given again, and
    /// a key used for another request is a validation error on the
    /// `Idempotency-Key` header. Without a key, `make` simply runs. With
    /// one, the reservation, what `make` writes and the answer are one
    /// unit ([`UnitOfWork::atomically`]): when `make` or
    /// `answer` fails nothing is kept, and only an answer is remembered.
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
        let now = self.clock.now();
        self.keys.forget_keys_before(now - KEY_LIFETIME)?;
        let digest = key.digest(scope);
        let record = KeyRecord {
            digest: digest.clone(),
            fingerprint: fingerprint.to_string(),
            at: now,
        };
        let mut make = Some(make);
        let mut answer = Some(answer);
        let mut answered = None;
        self.unit.atomically(&mut || {
            match self.keys.reserve_key(&record)? {
                Reservation::Reserved => {
                    let (Some(make), Some(answer)) = (make.take(), answer.take()) else {
                        return Err(Error::Internal("a unit of work ran twice".into()));
                    };
                    let first = make().and_then(|made| answer(&made))?;
                    self.keys.record_answer(
                        &digest,
                        first.status,
                        &key.seal(&first.body),
                        self.clock.now(),
                    )?;
                    answered = Some(first);
                }
                Reservation::Answered { status, sealed } => {
                    let body = key.unseal(&sealed).ok_or_else(|| {
                        Error::Internal("a stored answer does not open with its key".into())
                    })?;
                    answered = Some(Answer {
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
            Ok(())
        })?;
        answered.ok_or_else(|| Error::Internal("a unit of work gave no answer".into()))
    }
}
