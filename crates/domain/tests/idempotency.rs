//! Idempotent creating requests over a mocked key store: a first request
//! runs and is remembered, a retry gets the first answer, another request
//! with the key is refused, an unanswered key is in use, and the
//! reservation, the use case and the answer are one unit of work that a
//! failure rolls back whole.

use std::sync::{Arc, Mutex};

use chatdesk_domain::idempotency::{IdempotencyKey, Reservation};
use chatdesk_domain::ports::UnitOfWork;
use chatdesk_domain::services::{Answer, IdempotencyService};
use chatdesk_domain::testing::{fixed_clock, MockIdempotencyRepository, WithoutTransaction};
use chatdesk_domain::Error;

fn answer(body: &str) -> Answer {
    Answer {
        status: 201,
        body: body.as_bytes().to_vec(),
        replayed: false,
    }
}

fn service(repo: MockIdempotencyRepository) -> IdempotencyService {
    with_unit(repo, Arc::new(WithoutTransaction))
}

fn with_unit(mut repo: MockIdempotencyRepository, unit: Arc<dyn UnitOfWork>) -> IdempotencyService {
    repo.expect_forget_keys_before().returning(|_| Ok(()));
    IdempotencyService::new(fixed_clock(), Arc::new(repo), unit)
}

/// A unit of work that records how each unit ended: `true` kept
/// (committed), `false` rolled back.
#[derive(Default)]
struct Outcomes(Mutex<Vec<bool>>);

impl UnitOfWork for Outcomes {
    fn atomically(&self, work: &mut dyn FnMut() -> Result<(), Error>) -> Result<(), Error> {
        let result = work();
        self.0.lock().expect("lock").push(result.is_ok());
        result
    }
}

#[test]
fn a_first_request_runs_and_its_answer_is_kept_sealed() {
    let key = IdempotencyKey::parse("k-1").expect("key");
    let kept = Arc::new(Mutex::new(None));
    let mut repo = MockIdempotencyRepository::new();
    let digest = key.digest("member:1");
    let expected = digest.clone();
    repo.expect_reserve_key()
        .withf(move |r| r.digest == expected && r.fingerprint == "fp")
        .return_once(|_| Ok(Reservation::Reserved));
    let keep = Arc::clone(&kept);
    repo.expect_record_answer()
        .withf(move |d, status, _, _| *d == digest && *status == 201)
        .return_once(move |_, _, sealed, _| {
            *keep.lock().expect("lock") = Some(sealed.to_vec());
            Ok(())
        });
    let got = service(repo)
        .run(
            Some(&key),
            "member:1",
            "fp",
            || Ok(7),
            |n| Ok(answer(&format!("{{\"n\":{n}}}"))),
        )
        .expect("runs");
    assert_eq!(got, answer("{\"n\":7}"));
    let sealed = kept.lock().expect("lock").clone().expect("kept");
    assert_ne!(sealed, b"{\"n\":7}".to_vec(), "not kept in the clear");
    assert_eq!(key.unseal(&sealed), Some(b"{\"n\":7}".to_vec()));
}

#[test]
fn a_retry_gets_the_first_answer_without_running() {
    let key = IdempotencyKey::parse("k-1").expect("key");
    let sealed = key.seal(b"{\"first\":true}");
    let mut repo = MockIdempotencyRepository::new();
    repo.expect_reserve_key().return_once(move |_| {
        Ok(Reservation::Answered {
            status: 201,
            sealed,
        })
    });
    repo.expect_record_answer().never();
    let got = service(repo)
        .run(
            Some(&key),
            "s",
            "fp",
            || -> Result<u8, Error> { panic!("must not run") },
            |_| Ok(answer("x")),
        )
        .expect("replayed");
    assert_eq!(
        got,
        Answer {
            status: 201,
            body: b"{\"first\":true}".to_vec(),
            replayed: true
        }
    );
}

#[test]
fn another_request_or_an_unanswered_key_is_refused_and_a_failure_rolls_the_reservation_back() {
    let key = IdempotencyKey::parse("k-1").expect("key");
    let mut repo = MockIdempotencyRepository::new();
    repo.expect_reserve_key()
        .return_once(|_| Ok(Reservation::OtherRequest));
    let err = service(repo)
        .run(Some(&key), "s", "fp", || Ok(1), |_| Ok(answer("x")))
        .expect_err("refused");
    assert_eq!(err.field_errors()[0].field, "Idempotency-Key");

    let mut repo = MockIdempotencyRepository::new();
    repo.expect_reserve_key()
        .return_once(|_| Ok(Reservation::InProgress));
    let err = service(repo)
        .run(Some(&key), "s", "fp", || Ok(1), |_| Ok(answer("x")))
        .expect_err("in use");
    assert_eq!(err, Error::IdempotencyKeyInUse);

    let mut repo = MockIdempotencyRepository::new();
    repo.expect_reserve_key()
        .return_once(|_| Ok(Reservation::Reserved));
    repo.expect_record_answer().never();
    let outcomes = Arc::new(Outcomes::default());
    let err = with_unit(repo, outcomes.clone())
        .run(
            Some(&key),
            "s",
            "fp",
            || -> Result<u8, Error> { Err(Error::MemberExists) },
            |_| Ok(answer("x")),
        )
        .expect_err("failed");
    assert_eq!(err, Error::MemberExists);
    assert_eq!(
        *outcomes.0.lock().expect("lock"),
        vec![false],
        "the reservation is rolled back with the failed use case"
    );

    // Without a key the use case simply runs.
    let repo = MockIdempotencyRepository::new();
    let got = service(repo)
        .run(None, "s", "fp", || Ok(2), |n| Ok(answer(&n.to_string())))
        .expect("runs");
    assert_eq!(got.body, b"2");
}
