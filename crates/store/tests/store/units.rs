//! Units of work: an idempotency key's reservation, what the use case
//! writes and the answer commit together or not at all — a failure or a
//! panic midway leaves nothing (as a process that dies midway does), the
//! connection goes back to the pool clean, and a second request with the
//! same key waits for the first and finds its answer.

use std::panic::{catch_unwind, AssertUnwindSafe};

use chatdesk_domain::idempotency::{KeyRecord, Reservation};
use chatdesk_domain::ports::{IdempotencyRepository, PageRequest, SiteRepository, UnitOfWork};
use chatdesk_domain::tenant::Plan;
use chatdesk_domain::testing::builders::t0;
use chatdesk_domain::Error;
use chatdesk_store::Store;

use crate::helpers::{race, site_of, stores, tenant_with_owner, ROUNDS};

fn record(digest: &str) -> KeyRecord {
    KeyRecord {
        digest: digest.to_string(),
        fingerprint: "fp".into(),
        at: t0(),
    }
}

fn site_count(store: &Store, tenant: chatdesk_domain::ids::TenantId) -> usize {
    let page = PageRequest {
        limit: 100,
        after: None,
    };
    store.list_sites(tenant, &page).expect("lists").items.len()
}

/// Reserves `digest`, makes a site and records an answer in one unit;
/// `then` decides how the unit ends once all of it was written.
fn keyed_site(
    store: &Store,
    tenant: chatdesk_domain::ids::TenantId,
    digest: &str,
    domain: &str,
    then: impl Fn() -> Result<(), Error>,
) -> Result<Reservation, Error> {
    let mut seen = None;
    store.atomically(&mut || {
        let reservation = store.reserve_key(&record(digest))?;
        if reservation == Reservation::Reserved {
            store.insert_site(&site_of(tenant, domain))?;
            store.record_answer(digest, 201, b"sealed", t0())?;
        }
        seen = Some(reservation);
        then()
    })?;
    seen.ok_or_else(|| Error::Internal("the unit did not run".into()))
}

#[test]
fn a_unit_that_fails_or_panics_leaves_nothing_and_its_connection_is_clean() {
    for db in stores() {
        let store = &db.store;
        let (tenant, _, _) = tenant_with_owner(store, Plan::Enterprise);
        // More rounds than the pool has connections: a connection given
        // back inside a transaction would show up in a later round.
        for round in 0..12 {
            let digest = format!("failed-{round}");
            let failed = keyed_site(
                store,
                tenant.id,
                &digest,
                &format!("f{round}.example.com"),
                || Err(Error::MemberExists),
            );
            assert_eq!(failed, Err(Error::MemberExists), "{}", db.name());
            let digest = format!("panicked-{round}");
            let panicked = catch_unwind(AssertUnwindSafe(|| {
                keyed_site(
                    store,
                    tenant.id,
                    &digest,
                    &format!("p{round}.example.com"),
                    || panic!("the process dies here"),
                )
            }));
            assert!(panicked.is_err(), "{}", db.name());
        }
        assert_eq!(
            site_count(store, tenant.id),
            0,
            "{}: no site kept",
            db.name()
        );
        for round in 0..12 {
            for digest in [format!("failed-{round}"), format!("panicked-{round}")] {
                assert_eq!(
                    store.reserve_key(&record(&digest)),
                    Ok(Reservation::Reserved),
                    "{}: the key {digest} was not kept",
                    db.name()
                );
            }
        }
        // Committed work after all of it: the pool is healthy.
        assert_eq!(
            keyed_site(store, tenant.id, "kept", "kept.example.com", || Ok(())),
            Ok(Reservation::Reserved),
            "{}",
            db.name()
        );
        assert_eq!(site_count(store, tenant.id), 1, "{}", db.name());
        assert_eq!(
            store.reserve_key(&record("kept")),
            Ok(Reservation::Answered {
                status: 201,
                sealed: b"sealed".to_vec()
            }),
            "{}",
            db.name()
        );
    }
}

#[test]
fn the_same_key_twice_at_once_makes_one_thing_and_the_second_gets_its_answer() {
    for db in stores() {
        let store = &db.store;
        let (tenant, _, _) = tenant_with_owner(store, Plan::Enterprise);
        for round in 0..ROUNDS {
            let digest = format!("race-{round}");
            let domain = format!("r{round}.example.com");
            let (a, b) = race(
                || keyed_site(store, tenant.id, &digest, &domain, || Ok(())),
                || keyed_site(store, tenant.id, &digest, &domain, || Ok(())),
            );
            let mut outcomes = [a.expect("first"), b.expect("second")];
            outcomes.sort_by_key(|r| r != &Reservation::Reserved);
            assert_eq!(
                outcomes,
                [
                    Reservation::Reserved,
                    Reservation::Answered {
                        status: 201,
                        sealed: b"sealed".to_vec()
                    }
                ],
                "{} round {round}",
                db.name()
            );
        }
        assert_eq!(site_count(store, tenant.id), ROUNDS, "{}", db.name());
    }
}
