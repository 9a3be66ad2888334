//! The email outbox for the delivery worker (`OutboxRepository`), on both
//! backends: claims of due emails under a lease, the outcome of each
//! attempt recorded only while the lease holds, a crashed worker's email
//! taken over, and workers claiming at once.

use std::collections::HashSet;
use std::sync::Barrier;

use chatdesk_domain::email::Email;
use chatdesk_domain::ids::SessionId;
use chatdesk_domain::ports::{
    AttemptOutcome, ClaimedEmail, OpenTicket, OutboxRepository, TicketRepository, VisitorRepository,
};
use chatdesk_domain::ticket::{DeliveryStatus, SupportTicket, TicketEmail};
use chatdesk_store::schema::tenant_members;
use chatdesk_store::{connect, Backend, Store};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::helpers::{stored, stores};
use crate::tickets::{downvoted, naive, outbox_row, ticket_request, OutboxRow};
use crate::visitor::{fixture, now, Fixture};

/// The fixture tenant's owner, who receives its tickets.
const OWNER: &str = "owner@acme.test";

/// Opens a ticket from `session` at `at` (its email due then); returns the
/// request and the ticket.
fn open(
    store: &Store,
    fx: &Fixture,
    session: SessionId,
    at: DateTime<Utc>,
) -> (OpenTicket, SupportTicket) {
    let request = ticket_request(fx, session, at);
    let ticket = store.open_ticket(&request).expect("opens the ticket");
    (request, ticket)
}

/// What a claim of the ticket opened by `request` gives, on attempt
/// `attempt` under `lease`.
fn claimed(
    fx: &Fixture,
    request: &OpenTicket,
    ticket: &SupportTicket,
    attempt: u32,
    lease: DateTime<Utc>,
) -> ClaimedEmail {
    ClaimedEmail {
        delivery_id: request.delivery_id,
        lease: stored(lease),
        attempt,
        recipient: Email::parse(OWNER).expect("valid"),
        message_id: request.message_id.clone(),
        content: TicketEmail {
            ticket_id: ticket.id,
            site_name: fx.site.name.clone(),
            site_domain: fx.site.domain.as_str().to_string(),
            visitor_email: ticket.email.clone(),
            subject: ticket.subject.clone(),
            body: ticket.body.clone(),
            created_at: ticket.created_at,
            conversation: serde_json::from_value(ticket.conversation.clone())
                .expect("a conversation snapshot"),
        },
    }
}

/// An outcome's columns: (status, next attempt, last error, sent).
type Expected<'a> = (&'a str, Option<DateTime<Utc>>, Option<&'a str>, bool);

/// Claims in the order of their outbox ids, to compare claimed sets.
fn by_delivery(mut claims: Vec<ClaimedEmail>) -> Vec<ClaimedEmail> {
    claims.sort_by_key(|c| c.delivery_id);
    claims
}

fn delivery_ids(claims: &[ClaimedEmail]) -> Vec<Uuid> {
    claims.iter().map(|c| c.delivery_id).collect()
}

#[test]
fn a_claim_takes_due_pending_emails_with_a_free_lease_oldest_first() {
    for t in stores() {
        let fx = fixture(&t);
        let asked = downvoted(&t, &fx, "anon-1");
        let s = asked.session.id;
        let at = now();
        let minutes = |m: i64| at + Duration::minutes(m);

        // Claimed by another worker whose lease still holds at `at`.
        let (held, held_ticket) = open(&t, &fx, s, minutes(-20));
        let claims = t.claim_due(minutes(-19), minutes(1), 10).expect("claims");
        assert_eq!(delivery_ids(&claims), [held.delivery_id], "{}", t.name());
        // Sent already.
        let (sent, _) = open(&t, &fx, s, minutes(-15));
        let claims = t.claim_due(minutes(-14), minutes(-12), 10).expect("claims");
        assert_eq!(delivery_ids(&claims), [sent.delivery_id], "{}", t.name());
        assert!(t
            .record_attempt(
                sent.delivery_id,
                claims[0].lease,
                &AttemptOutcome::Sent,
                minutes(-13)
            )
            .expect("records"));
        // Nobody receives it: never claimed.
        let lonely = fixture(&t);
        let mut conn = connect(t.url()).expect("connects");
        diesel::delete(
            tenant_members::table
                .filter(tenant_members::tenant_id.eq(lonely.tenant.id.to_string())),
        )
        .execute(&mut conn)
        .expect("removes the members");
        let lonely_session = downvoted(&t, &lonely, "anon-1");
        let (_, unaddressed) = open(&t, &lonely, lonely_session.session.id, minutes(-30));
        assert_eq!(unaddressed.delivery.status, DeliveryStatus::NoRecipient);

        // Due ones, out of order; another site's too (the worker serves
        // every site); `b` and `c` are due at the same instant.
        let other = fixture(&t);
        let other_session = downvoted(&t, &other, "anon-1");
        let (b, b_ticket) = open(&t, &fx, s, minutes(-3));
        let (c, c_ticket) = open(&t, &fx, s, minutes(-3));
        let (a, a_ticket) = open(&t, &fx, s, minutes(-5));
        let (theirs, theirs_ticket) = open(&t, &other, other_session.session.id, minutes(-4));
        let (later, later_ticket) = open(&t, &fx, s, minutes(5));

        // A lease with nanoseconds is kept to the microsecond.
        let lease = Utc::now() + Duration::minutes(10);
        // (The order of the claimed emails is checked on its own below.)
        let first = by_delivery(t.claim_due(at, lease, 2).expect("claims"));
        assert_eq!(
            first,
            by_delivery(vec![
                claimed(&fx, &a, &a_ticket, 1, lease),
                claimed(&other, &theirs, &theirs_ticket, 1, lease),
            ]),
            "{}: the two oldest due",
            t.name()
        );
        let second = by_delivery(t.claim_due(at, lease, 2).expect("claims"));
        assert_eq!(
            second,
            by_delivery(vec![
                claimed(&fx, &b, &b_ticket, 1, lease),
                claimed(&fx, &c, &c_ticket, 1, lease),
            ]),
            "{}: the next two (due at the same instant)",
            t.name()
        );
        assert_eq!(
            t.claim_due(at, lease, 10).expect("claims"),
            [],
            "{}: nothing else is due and free",
            t.name()
        );
        assert_eq!(
            t.claim_due(minutes(60), minutes(70), 0).expect("claims"),
            []
        );

        // Each claim counted its attempt and took the lease.
        for ticket in [&a_ticket, &b_ticket, &c_ticket] {
            let row = outbox_row(t.url(), ticket.id);
            assert_eq!(
                (
                    row.status.as_str(),
                    row.attempts,
                    row.locked_until,
                    row.next_attempt_at,
                    row.updated_at
                ),
                (
                    "PENDING",
                    1,
                    Some(naive(lease)),
                    Some(naive(ticket.created_at)),
                    naive(at)
                ),
                "{}",
                t.name()
            );
            let delivery = t.get_ticket(fx.site.id, ticket.id).expect("reads").delivery;
            assert_eq!(
                (delivery.status, delivery.attempts),
                (DeliveryStatus::Pending, 1)
            );
        }
        let row = outbox_row(t.url(), unaddressed.id);
        assert_eq!((row.status.as_str(), row.attempts), ("NO_RECIPIENT", 0));

        // Later: the email due now, and the one whose lease ran out (its
        // worker died), oldest due first.
        let claims = by_delivery(t.claim_due(minutes(5), minutes(7), 10).expect("claims"));
        assert_eq!(
            claims,
            by_delivery(vec![
                claimed(&fx, &held, &held_ticket, 2, minutes(7)),
                claimed(&fx, &later, &later_ticket, 1, minutes(7)),
            ]),
            "{}",
            t.name()
        );
    }
}

/// A claim returns its emails oldest due first (then by id), so a worker
/// sending a batch one by one sends the longest-waiting first.
#[test]
fn claimed_emails_come_back_oldest_due_first() {
    let mut wrong = Vec::new();
    for t in stores() {
        let fx = fixture(&t);
        let asked = downvoted(&t, &fx, "anon-1");
        let at = now();
        // Due at distinct instants, opened in another order, and two pairs
        // due at the same instant.
        let offsets = [7, 2, 11, 5, 0, 9, 3, 3, 1, 10, 6, 6, 4, 8];
        let mut due: Vec<(DateTime<Utc>, Uuid)> = offsets
            .iter()
            .map(|s| {
                let when = at - Duration::seconds(20 - s);
                (when, open(&t, &fx, asked.session.id, when).0.delivery_id)
            })
            .collect();
        due.sort();
        let expected: Vec<Uuid> = due.iter().map(|(_, id)| *id).collect();
        let lease = at + Duration::minutes(2);
        let mut got = Vec::new();
        for limit in [1, 2, 5, 100] {
            got.extend(delivery_ids(
                &t.claim_due(at, lease, limit).expect("claims"),
            ));
        }
        // The right emails are claimed in each batch (the set is checked
        // above); here, their order.
        let position = |id: &Uuid| expected.iter().position(|e| e == id).unwrap_or(usize::MAX);
        if got != expected {
            wrong.push(format!(
                "{}: claimed in the order {:?} (0 = due first)",
                t.name(),
                got.iter().map(position).collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "not oldest due first:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn a_crashed_workers_email_is_taken_over_once_its_lease_runs_out() {
    for t in stores() {
        let fx = fixture(&t);
        let asked = downvoted(&t, &fx, "anon-1");
        let at = now();
        let seconds = |s: i64| at + Duration::seconds(s);
        let (request, ticket) = open(&t, &fx, asked.session.id, at);

        let first = t.claim_due(at, seconds(120), 10).expect("claims");
        assert_eq!(first, [claimed(&fx, &request, &ticket, 1, seconds(120))]);
        for (now, case) in [
            (seconds(60), "while the lease holds"),
            (seconds(120), "at the instant it ends"),
        ] {
            assert_eq!(
                t.claim_due(now, now + Duration::seconds(120), 10)
                    .expect("claims"),
                [],
                "{}: {case}",
                t.name()
            );
        }
        // The first worker is presumed dead; another takes the email over.
        let second = t.claim_due(seconds(121), seconds(241), 10).expect("claims");
        assert_eq!(
            second,
            [claimed(&fx, &request, &ticket, 2, seconds(241))],
            "{}",
            t.name()
        );
        let taken = outbox_row(t.url(), ticket.id);

        // The first worker comes back: its lease is stale, nothing changes.
        for outcome in [
            AttemptOutcome::Sent,
            AttemptOutcome::Failed {
                error: "late".into(),
            },
        ] {
            assert_eq!(
                t.record_attempt(request.delivery_id, first[0].lease, &outcome, seconds(130)),
                Ok(false),
                "{}",
                t.name()
            );
            assert_eq!(outbox_row(t.url(), ticket.id), taken, "{}", t.name());
        }
        assert_eq!(
            t.record_attempt(
                Uuid::now_v7(),
                second[0].lease,
                &AttemptOutcome::Sent,
                seconds(130)
            ),
            Ok(false),
            "{}: an unknown email",
            t.name()
        );

        assert_eq!(
            t.record_attempt(
                request.delivery_id,
                second[0].lease,
                &AttemptOutcome::Sent,
                seconds(130)
            ),
            Ok(true),
            "{}",
            t.name()
        );
        let delivery = t.get_ticket(fx.site.id, ticket.id).expect("reads").delivery;
        assert_eq!(
            (delivery.status, delivery.attempts, delivery.last_error),
            (DeliveryStatus::Sent, 2, None),
            "{}",
            t.name()
        );
        // Recorded once: the same lease records nothing more.
        let sent = outbox_row(t.url(), ticket.id);
        assert_eq!(
            t.record_attempt(
                request.delivery_id,
                second[0].lease,
                &AttemptOutcome::Failed {
                    error: "again".into()
                },
                seconds(131)
            ),
            Ok(false)
        );
        assert_eq!(outbox_row(t.url(), ticket.id), sent, "{}", t.name());
        assert_eq!(
            t.claim_due(seconds(1000), seconds(1100), 10)
                .expect("claims"),
            []
        );
    }
}

#[test]
fn each_outcome_is_recorded_in_its_columns_and_shown_on_the_ticket() {
    for t in stores() {
        let fx = fixture(&t);
        let asked = downvoted(&t, &fx, "anon-1");
        let at = now();
        let seconds = |s: i64| at + Duration::seconds(s);
        let opened: Vec<(OpenTicket, SupportTicket)> = (0..5)
            .map(|i| open(&t, &fx, asked.session.id, at + Duration::milliseconds(i)))
            .collect();
        let lease = seconds(120);
        let claims = t.claim_due(seconds(1), lease, 10).expect("claims");
        assert_eq!(claims.len(), 5, "{}", t.name());

        let outcomes = [
            AttemptOutcome::Sent,
            AttemptOutcome::LoggedOnly,
            AttemptOutcome::RetryAt {
                at: seconds(30),
                error: "connection refused".into(),
            },
            AttemptOutcome::Failed {
                error: "550 no such user".into(),
            },
            AttemptOutcome::RetryAt {
                at: seconds(40),
                error: "timed out".into(),
            },
        ];
        // Recorded at an instant finer than a microsecond.
        let recorded_at = Utc::now() + Duration::seconds(2);
        for ((request, _), outcome) in opened.iter().zip(&outcomes) {
            assert_eq!(
                t.record_attempt(request.delivery_id, lease, outcome, recorded_at),
                Ok(true),
                "{}: {outcome:?}",
                t.name()
            );
        }
        // (status, next attempt, last error, sent)
        let expected: [Expected; 5] = [
            ("SENT", None, None, true),
            ("LOG_ONLY", None, None, false),
            (
                "PENDING",
                Some(seconds(30)),
                Some("connection refused"),
                false,
            ),
            ("FAILED", None, Some("550 no such user"), false),
            ("PENDING", Some(seconds(40)), Some("timed out"), false),
        ];
        for ((request, ticket), (status, next, error, sent)) in opened.iter().zip(expected) {
            let row = outbox_row(t.url(), ticket.id);
            assert_eq!(
                row,
                OutboxRow {
                    status: status.into(),
                    next_attempt_at: next.map(naive),
                    locked_until: None,
                    last_error: error.map(str::to_string),
                    updated_at: naive(recorded_at),
                    sent_at: sent.then(|| naive(recorded_at)),
                    attempts: 1,
                    ..row.clone()
                },
                "{}: {status}",
                t.name()
            );
            assert_eq!(row.id, request.delivery_id.to_string());
            assert_eq!(row.recipient.as_deref(), Some(OWNER));
            let delivery = t.get_ticket(fx.site.id, ticket.id).expect("reads").delivery;
            assert_eq!(
                (
                    delivery.status.as_str(),
                    delivery.attempts,
                    delivery.last_error.as_deref(),
                    delivery.recipient.as_ref().map(Email::as_str),
                ),
                (status, 1, error, Some(OWNER)),
                "{}: {status}",
                t.name()
            );
        }

        // Only the retries come back, each when due.
        assert_eq!(
            t.claim_due(seconds(29), seconds(200), 10).expect("claims"),
            []
        );
        let retry = t.claim_due(seconds(30), seconds(200), 10).expect("claims");
        assert_eq!(
            retry,
            [claimed(&fx, &opened[2].0, &opened[2].1, 2, seconds(200))],
            "{}",
            t.name()
        );
        // Sent on the second attempt: the earlier error goes.
        assert_eq!(
            t.record_attempt(
                opened[2].0.delivery_id,
                seconds(200),
                &AttemptOutcome::Sent,
                seconds(31)
            ),
            Ok(true)
        );
        let delivery = t
            .get_ticket(fx.site.id, opened[2].1.id)
            .expect("reads")
            .delivery;
        assert_eq!(
            (delivery.status, delivery.attempts, delivery.last_error),
            (DeliveryStatus::Sent, 2, None),
            "{}",
            t.name()
        );
        let row = outbox_row(t.url(), opened[2].1.id);
        assert_eq!(
            (row.sent_at, row.next_attempt_at, row.locked_until),
            (Some(naive(seconds(31))), None, None)
        );

        // The other retry fails for good: its new error is kept.
        let retry = t.claim_due(seconds(40), seconds(300), 10).expect("claims");
        assert_eq!(delivery_ids(&retry), [opened[4].0.delivery_id]);
        assert_eq!(
            t.record_attempt(
                opened[4].0.delivery_id,
                seconds(300),
                &AttemptOutcome::Failed {
                    error: "554 rejected".into()
                },
                seconds(41)
            ),
            Ok(true)
        );
        let delivery = t
            .get_ticket(fx.site.id, opened[4].1.id)
            .expect("reads")
            .delivery;
        assert_eq!(
            (
                delivery.status,
                delivery.attempts,
                delivery.last_error.as_deref()
            ),
            (DeliveryStatus::Failed, 2, Some("554 rejected")),
            "{}",
            t.name()
        );

        // Final emails are never claimed again, and record nothing more.
        assert_eq!(
            t.claim_due(seconds(100_000), seconds(100_100), 10)
                .expect("claims"),
            [],
            "{}",
            t.name()
        );
        for (request, ticket) in &opened {
            let row = outbox_row(t.url(), ticket.id);
            for lease in [row.locked_until.map(|l| l.and_utc()), Some(lease)]
                .into_iter()
                .flatten()
            {
                assert_eq!(
                    t.record_attempt(
                        request.delivery_id,
                        lease,
                        &AttemptOutcome::LoggedOnly,
                        seconds(500)
                    ),
                    Ok(false)
                );
            }
            assert_eq!(outbox_row(t.url(), ticket.id), row, "{}", t.name());
        }
    }
}

/// Four workers, each with its own connection pool (as on four replicas),
/// claiming from 40 due emails at once, a few at a time, until none is
/// left: every email is claimed by exactly one. Each round the leases run
/// out and all 40 are claimed again.
#[test]
fn workers_claiming_at_once_take_disjoint_emails_and_leave_none() {
    const WORKERS: usize = 4;
    const EMAILS: usize = 40;
    const ROUNDS: usize = 5;
    for t in stores() {
        let fx = fixture(&t);
        let asked = downvoted(&t, &fx, "anon-1");
        let at = now();
        let all: HashSet<Uuid> = (0..EMAILS)
            .map(|i| {
                let due = at - Duration::seconds(i as i64 % 7);
                open(&t, &fx, asked.session.id, due).0.delivery_id
            })
            .collect();
        let workers: Vec<Store> = (0..WORKERS)
            .map(|_| Store::open(t.url(), 1).expect("opens a worker's store"))
            .collect();
        let lease_length = Duration::minutes(2);
        let mut busy_workers = Vec::new();
        for round in 0..ROUNDS {
            let now = at + (lease_length + Duration::seconds(1)) * round as i32;
            let lease = now + lease_length;
            let start = Barrier::new(WORKERS);
            let claimed: Vec<Vec<ClaimedEmail>> = std::thread::scope(|s| {
                let handles: Vec<_> = workers
                    .iter()
                    .map(|store| {
                        let start = &start;
                        s.spawn(move || {
                            start.wait();
                            let mut mine = Vec::new();
                            loop {
                                let claims = store.claim_due(now, lease, 2).expect("claims");
                                if claims.is_empty() {
                                    return mine;
                                }
                                mine.extend(claims);
                            }
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a worker panicked"))
                    .collect()
            });
            let total: usize = claimed.iter().map(Vec::len).sum();
            let union: HashSet<Uuid> = claimed.iter().flatten().map(|c| c.delivery_id).collect();
            assert_eq!(
                total,
                EMAILS,
                "{} round {round}: {:?} claims per worker",
                t.name(),
                claimed.iter().map(Vec::len).collect::<Vec<_>>()
            );
            assert_eq!(union, all, "{} round {round}: every email once", t.name());
            assert!(
                claimed
                    .iter()
                    .flatten()
                    .all(|c| c.attempt == round as u32 + 1 && c.lease == stored(lease)),
                "{} round {round}",
                t.name()
            );
            busy_workers.push(claimed.iter().filter(|c| !c.is_empty()).count());
        }
        eprintln!(
            "{}: workers that claimed something, per round: {busy_workers:?}",
            t.name()
        );
    }
}

/// On PostgreSQL a claim passes over an email whose row another
/// transaction holds (`FOR UPDATE SKIP LOCKED`) instead of waiting for it.
#[test]
fn on_postgresql_a_claim_skips_a_locked_email_without_waiting() {
    for t in stores() {
        if t.backend() != Backend::Postgres {
            continue;
        }
        let fx = fixture(&t);
        let asked = downvoted(&t, &fx, "anon-1");
        let at = now();
        let (locked, _) = open(&t, &fx, asked.session.id, at - Duration::seconds(2));
        let (free, _) = open(&t, &fx, asked.session.id, at - Duration::seconds(1));
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (claims, waited) = std::thread::scope(|s| {
            let url = t.url();
            s.spawn(move || {
                let mut conn = connect(url).expect("connects");
                conn.transaction(|conn| {
                    diesel::sql_query("SELECT id FROM email_outbox WHERE id = $1 FOR UPDATE")
                        .bind::<diesel::sql_types::Text, _>(locked.delivery_id.to_string())
                        .execute(conn)?;
                    locked_tx.send(()).expect("signals the lock");
                    // Held until the claim is done, or for ten seconds if
                    // the claim waits for it.
                    let _ = release_rx.recv_timeout(std::time::Duration::from_secs(10));
                    Ok::<_, diesel::result::Error>(())
                })
                .expect("the locking transaction");
            });
            locked_rx.recv().expect("the row is locked");
            let started = std::time::Instant::now();
            let claims = t.claim_due(at, at + Duration::minutes(2), 10);
            let waited = started.elapsed();
            let _ = release_tx.send(());
            (claims.expect("claims"), waited)
        });
        assert!(
            waited < std::time::Duration::from_secs(5),
            "the claim waited {waited:?} for the locked row"
        );
        assert_eq!(delivery_ids(&claims), [free.delivery_id]);
        // Once the lock is gone the skipped email is claimed.
        let claims = t
            .claim_due(at, at + Duration::minutes(2), 10)
            .expect("claims");
        assert_eq!(delivery_ids(&claims), [locked.delivery_id]);
    }
}
