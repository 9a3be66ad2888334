//! The delivery worker's rounds over mocks: what each send's outcome
//! makes the outbox record.

use std::sync::Arc;

use chatdesk_domain::email::Email;
use chatdesk_domain::ids::{SessionId, TicketId};
use chatdesk_domain::ports::{AttemptOutcome, ClaimedEmail, MailError, MailOutcome};
use chatdesk_domain::services::{DeliveryRound, DeliveryService};
use chatdesk_domain::testing::builders::t0;
use chatdesk_domain::testing::{fixed_clock, MockOutboxRepository, MockTicketMailer};
use chatdesk_domain::ticket::{ConversationSnapshot, TicketEmail, DELIVERY_LEASE, MAX_ATTEMPTS};
use uuid::Uuid;

fn claimed(attempt: u32) -> ClaimedEmail {
    ClaimedEmail {
        delivery_id: Uuid::now_v7(),
        lease: t0() + DELIVERY_LEASE,
        attempt,
        recipient: Email::parse("help@example.com").expect("email"),
        message_id: "ticket-1@chatdesk.localhost".into(),
        content: TicketEmail {
            ticket_id: TicketId(Uuid::now_v7()),
            site_name: "Docs".into(),
            site_domain: "docs.example.com".into(),
            visitor_email: Email::parse("ada@example.com").expect("email"),
            subject: "Help".into(),
            body: "Please.".into(),
            created_at: t0(),
            conversation: ConversationSnapshot {
                session_id: SessionId(Uuid::now_v7()),
                anonymous_id: "anon-1".into(),
                external_id: None,
                traits: serde_json::Map::new(),
                messages: Vec::new(),
            },
        },
    }
}

/// One round over one claimed email whose send answers `sent`; returns
/// the round and the outcome recorded.
fn round(
    email: ClaimedEmail,
    sent: Result<MailOutcome, MailError>,
    recorded: bool,
) -> (DeliveryRound, AttemptOutcome) {
    let mut outbox = MockOutboxRepository::new();
    let claim = email.clone();
    outbox
        .expect_claim_due()
        .withf(|now, lease, limit| *now == t0() && *lease == t0() + DELIVERY_LEASE && *limit == 10)
        .return_once(move |_, _, _| Ok(vec![claim]));
    let seen = Arc::new(std::sync::Mutex::new(None));
    let keep = Arc::clone(&seen);
    let (id, lease) = (email.delivery_id, email.lease);
    outbox
        .expect_record_attempt()
        .withf(move |d, l, _, _| *d == id && *l == lease)
        .return_once(move |_, _, outcome, _| {
            *keep.lock().expect("lock") = Some(outcome.clone());
            Ok(recorded)
        });
    let mut mailer = MockTicketMailer::new();
    mailer.expect_send_ticket().return_once(move |_| sent);
    let service = DeliveryService::new(fixed_clock(), Arc::new(outbox), Arc::new(mailer));
    let round = service.deliver_due(10).expect("round");
    let outcome = seen.lock().expect("lock").clone().expect("recorded");
    (round, outcome)
}

#[test]
fn each_send_outcome_is_recorded() {
    let (r, o) = round(claimed(1), Ok(MailOutcome::Sent), true);
    assert_eq!(o, AttemptOutcome::Sent);
    assert_eq!((r.claimed, r.sent), (1, 1));

    let (r, o) = round(claimed(1), Ok(MailOutcome::LoggedOnly), true);
    assert_eq!(o, AttemptOutcome::LoggedOnly);
    assert_eq!(r.logged, 1);

    let (r, o) = round(
        claimed(3),
        Err(MailError::transient("connection refused")),
        true,
    );
    assert_eq!(
        o,
        AttemptOutcome::RetryAt {
            at: t0() + chrono::Duration::seconds(8),
            error: "connection refused".into()
        }
    );
    assert_eq!(r.retried, 1);

    let (r, o) = round(
        claimed(1),
        Err(MailError::permanent("422 invalid `to`")),
        true,
    );
    assert_eq!(
        o,
        AttemptOutcome::Failed {
            error: "422 invalid `to`".into()
        }
    );
    assert_eq!(r.failed, 1);

    let (r, o) = round(
        claimed(MAX_ATTEMPTS),
        Err(MailError::transient("timed out")),
        true,
    );
    assert_eq!(
        o,
        AttemptOutcome::Failed {
            error: "timed out".into()
        }
    );
    assert_eq!(r.failed, 1);
}

#[test]
fn an_outcome_recorded_after_the_claim_ran_out_is_counted_as_lost() {
    let (r, _) = round(claimed(1), Ok(MailOutcome::Sent), false);
    assert_eq!((r.sent, r.lost_claims), (1, 1));
}

#[test]
fn a_round_with_nothing_due_sends_nothing() {
    let mut outbox = MockOutboxRepository::new();
    outbox
        .expect_claim_due()
        .return_once(|_, _, _| Ok(Vec::new()));
    outbox.expect_record_attempt().never();
    let mut mailer = MockTicketMailer::new();
    mailer.expect_send_ticket().never();
    let service = DeliveryService::new(fixed_clock(), Arc::new(outbox), Arc::new(mailer));
    assert_eq!(
        service.deliver_due(10).expect("round"),
        DeliveryRound::default()
    );
}

#[test]
fn an_email_whose_claim_is_nearly_spent_is_left_for_later_unsent() {
    let mut email = claimed(1);
    // A claim with less left than a send may take.
    email.lease = t0() + chatdesk_domain::ticket::SEND_BUDGET - chrono::Duration::seconds(1);
    let mut outbox = MockOutboxRepository::new();
    outbox
        .expect_claim_due()
        .return_once(move |_, _, _| Ok(vec![email]));
    outbox.expect_record_attempt().never();
    let mut mailer = MockTicketMailer::new();
    mailer.expect_send_ticket().never();
    let service = DeliveryService::new(fixed_clock(), Arc::new(outbox), Arc::new(mailer));
    let round = service.deliver_due(10).expect("round");
    assert_eq!((round.claimed, round.deferred, round.sent), (1, 1, 0));
}
