//! Writes of the visitor side raced against the write that could undo them
//! or see half of them, on both backends.

use chatdesk_domain::content::{ContentItem, ContentKind, GeneratedFrom};
use chatdesk_domain::conversation::{ChatMessage, ContentRef, MessageStatus, Vote};
use chatdesk_domain::ids::{ContentId, FeedbackId};
use chatdesk_domain::ports::{GenerationOutcome, TenantRepository, VisitorRepository};
use chatdesk_domain::visitor::VisitorIdentity;
use chatdesk_domain::Error;
use chatdesk_store::connect;
use chatdesk_store::schema::{content_items, end_users};
use diesel::prelude::*;
use uuid::Uuid;

use super::{anonymous, fixture, now};
use crate::helpers::{race, stores, ROUNDS};

/// Two people identifying one anonymous browser at once (a shared
/// computer): exactly one gets the visitor, the other 409, and the stored
/// identity is the winner's.
#[test]
fn two_identities_racing_for_one_browser_leave_exactly_one() {
    for t in stores() {
        let fx = fixture(&t);
        for round in 0..ROUNDS {
            let browser = format!("shared-{round}");
            fx.open(&t, &browser);
            let as_person = |external: &str| VisitorIdentity {
                external_id: Some(external.into()),
                verified: true,
                ..anonymous(&browser)
            };
            let (alice, bob) = race(
                || t.open_session(&fx.request(as_person("alice"), now())),
                || t.open_session(&fx.request(as_person("bob"), now())),
            );
            let winner = match (&alice, &bob) {
                (Ok(_), Err(Error::IdentityConflict)) => "alice",
                (Err(Error::IdentityConflict), Ok(_)) => "bob",
                other => panic!("{} round {round}: {other:?}", t.name()),
            };
            let mut conn = connect(t.url()).expect("connects");
            let stored: Option<String> = end_users::table
                .filter(end_users::anonymous_id.eq(&browser))
                .select(end_users::external_id)
                .first(&mut conn)
                .expect("the visitor");
            assert_eq!(
                stored.as_deref(),
                Some(winner),
                "{} round {round}",
                t.name()
            );
        }
    }
}

/// A generated answer being stored while the same reply is failed (a
/// retry after a lost commit, another replica): one outcome wins whole,
/// the Flow or the refund, never both and never half.
#[test]
fn a_generation_finished_and_failed_at_once_keeps_one_outcome() {
    for t in stores() {
        let fx = fixture(&t);
        t.add_credits(fx.tenant.id, ROUNDS as i64).expect("credits");
        let credits = || t.get_tenant(fx.tenant.id).expect("reads").credits;
        let mut conn = connect(t.url()).expect("connects");
        let flows = |conn: &mut chatdesk_store::DbConnection| -> i64 {
            content_items::table
                .count()
                .get_result(conn)
                .expect("counts")
        };
        for round in 0..ROUNDS {
            let (session, _) = fx.open(&t, &format!("anon-{round}"));
            let exchange = fx.exchange(&session, "How do I archive a project?", 20, 1);
            t.record_exchange(&exchange).expect("records");
            let analyzing = exchange.reply;
            let (credits_before, flows_before) = (credits(), flows(&mut conn));
            let item = ContentItem::generated_flow(
                ContentId(Uuid::now_v7()),
                fx.site.id,
                "Archive a project".into(),
                String::new(),
                GeneratedFrom {
                    session_id: session.id,
                    message_id: analyzing.id,
                    answer: "Open Settings, then Archive.".into(),
                },
                now(),
            );
            let generated = GenerationOutcome::Generated {
                reply: ChatMessage {
                    status: MessageStatus::GeneratedContent,
                    content_ref: Some(ContentRef {
                        kind: ContentKind::Flow,
                        id: item.id,
                        name: item.name.clone(),
                    }),
                    ..analyzing.clone()
                },
                item,
            };
            let failed = GenerationOutcome::Failed {
                reply: ChatMessage {
                    status: MessageStatus::Failed,
                    ..analyzing.clone()
                },
                tenant_id: fx.tenant.id,
                refund: 1,
            };
            let (a, b) = race(
                || t.finish_generation(&generated),
                || t.finish_generation(&failed),
            );
            assert_eq!((a, b), (Ok(()), Ok(())), "{} round {round}", t.name());
            let outcome = (flows(&mut conn) - flows_before, credits() - credits_before);
            assert!(
                outcome == (1, 0) || outcome == (0, 1),
                "{} round {round}: {outcome:?} (new Flows, credits back)",
                t.name()
            );
        }
    }
}

/// Questions and votes in one session at once: the question, message and
/// vote counters each end exact (none of the updates undoes another).
#[test]
fn questions_and_votes_at_once_keep_every_counter() {
    for t in stores() {
        let fx = fixture(&t);
        let (session, token) = fx.open(&t, "anon-1");
        let first = fx.exchange(&session, "How?", 100, 0);
        t.record_exchange(&first).expect("records");
        let answer = first.reply.id;
        for round in 0..ROUNDS / 4 {
            let question = fx.exchange(&session, "And then?", 100, 0);
            let vote = if round % 2 == 0 { Vote::Up } else { Vote::Down };
            let (asked, voted) = race(
                || t.record_exchange(&question),
                || t.vote(session.id, answer, vote, FeedbackId(Uuid::now_v7()), now()),
            );
            asked.expect("records");
            voted.expect("votes");
            let s = fx.context(&t, &token).expect("the session").session;
            let asked = 2 + round as u32;
            assert_eq!(
                (s.question_count, s.message_count),
                (asked, 2 * asked),
                "{} round {round}",
                t.name()
            );
            let expected = if vote == Vote::Up { (1, 0) } else { (0, 1) };
            assert_eq!(
                (s.up_votes, s.down_votes),
                expected,
                "{} round {round}",
                t.name()
            );
        }
    }
}
