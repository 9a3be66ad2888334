//! Questions and replies: what an exchange stores, the per-session limit
//! and the credits under concurrency, finishing a generated answer, and
//! the timeline.

use std::sync::Barrier;

use chatdesk_domain::content::{ContentItem, ContentKind, GeneratedFrom};
use chatdesk_domain::conversation::{
    preview_of, ChatMessage, ChatSession, ContentRef, MessageRole, MessageStatus, TimelineEntry,
    Vote,
};
use chatdesk_domain::ids::{ContentId, FeedbackId, MessageId, SessionId};
use chatdesk_domain::ports::{
    ContentRepository, Exchange, ExchangeOutcome, GenerationOutcome, PageRequest, TenantRepository,
    VisitorRepository,
};
use chatdesk_domain::{Entity, Error};
use chatdesk_store::schema::{chat_messages, chat_sessions, content_items};
use chatdesk_store::{connect, Store};
use chrono::Duration;
use diesel::prelude::*;
use uuid::Uuid;

use super::{fixture, now, Fixture};
use crate::helpers::stores;

/// Runs every exchange at once, one thread each, released by a barrier.
fn record_together(store: &Store, exchanges: &[Exchange]) -> Vec<ExchangeOutcome> {
    let start = Barrier::new(exchanges.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = exchanges
            .iter()
            .map(|exchange| {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    store.record_exchange(exchange)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("an exchange panicked").expect("records"))
            .collect()
    })
}

/// The session as stored, through one of its tokens.
fn reread(fx: &Fixture, store: &Store, token: &chatdesk_domain::secret::SecretHash) -> ChatSession {
    fx.context(store, token).expect("the session").session
}

fn message_count(store_url: &str) -> i64 {
    let mut conn = connect(store_url).expect("connects");
    chat_messages::table
        .count()
        .get_result(&mut conn)
        .expect("counts")
}

/// Every message of the session, oldest first, `limit` a page.
fn timeline(store: &Store, session: SessionId, limit: u32) -> Vec<Vec<TimelineEntry>> {
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_messages(session, &PageRequest { limit, after })
            .expect("lists");
        pages.push(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return pages,
        }
    }
}

#[test]
fn an_exchange_stores_both_messages_and_moves_the_session_on() {
    for t in stores() {
        let fx = fixture(&t);
        let (session, token) = fx.open(&t, "anon-1");
        let long = format!("  How do I export {}?", "all my data ".repeat(20));
        let first = fx.exchange(&session, &long, 20, 0);
        assert_eq!(
            t.record_exchange(&first).expect("records"),
            ExchangeOutcome::Recorded {
                reply: first.reply.clone(),
                paid: true
            },
            "{}",
            t.name()
        );
        let second = fx.exchange(&session, "And import?", 20, 0);
        t.record_exchange(&second).expect("records");

        let stored = reread(&fx, &t, &token);
        assert_eq!(
            (stored.question_count, stored.message_count),
            (2, 4),
            "{}",
            t.name()
        );
        assert_eq!(
            stored.preview,
            Some(preview_of(&long)),
            "the first question"
        );
        assert_eq!(stored.last_active_at, second.reply.created_at);
        let asked_at = second.reply.created_at.naive_utc();
        // The visitor was last seen asking.
        assert_eq!(
            super::visitors(t.url())[0].last_seen_at,
            asked_at,
            "{}",
            t.name()
        );
        let messages: Vec<ChatMessage> = timeline(&t, session.id, 10)
            .concat()
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(
            messages,
            [first.question, first.reply, second.question, second.reply],
            "{}",
            t.name()
        );

        // An exchange stamped before the session's last activity does not
        // move it back.
        let mut early = fx.exchange(&session, "Late delivery?", 20, 0);
        early.question.created_at = session.started_at - Duration::minutes(1);
        early.reply.created_at = session.started_at - Duration::minutes(1);
        t.record_exchange(&early).expect("records");
        assert_eq!(
            reread(&fx, &t, &token).last_active_at,
            stored.last_active_at,
            "{}",
            t.name()
        );
        assert_eq!(
            super::visitors(t.url())[0].last_seen_at,
            asked_at,
            "{}: last seen never moves back",
            t.name()
        );
    }
}

#[test]
fn an_ended_or_unknown_session_records_nothing() {
    for t in stores() {
        let fx = fixture(&t);
        let (session, _) = fx.open(&t, "anon-1");
        let mut conn = connect(t.url()).expect("connects");
        diesel::update(chat_sessions::table)
            .set(chat_sessions::ended_at.eq(Some(now().naive_utc())))
            .execute(&mut conn)
            .expect("ends the session");
        assert_eq!(
            t.record_exchange(&fx.exchange(&session, "Anyone?", 20, 0)),
            Err(Error::NotFound(Entity::Session)),
            "{}",
            t.name()
        );
        let unknown = ChatSession {
            id: SessionId(Uuid::now_v7()),
            ..session
        };
        assert_eq!(
            t.record_exchange(&fx.exchange(&unknown, "Anyone?", 20, 0)),
            Err(Error::NotFound(Entity::Session))
        );
        assert_eq!(message_count(t.url()), 0, "{}", t.name());
    }
}

#[test]
fn a_session_idle_past_the_cutoff_records_nothing() {
    for t in stores() {
        let fx = fixture(&t);
        let (session, token) = fx.open(&t, "anon-1");
        // Last active before the cutoff: idled out, as if ended.
        let idle = Exchange {
            idle_cutoff: session.last_active_at + Duration::seconds(1),
            ..fx.exchange(&session, "Still there?", 20, 0)
        };
        assert_eq!(
            t.record_exchange(&idle),
            Err(Error::NotFound(Entity::Session)),
            "{}",
            t.name()
        );
        // Even at its limit, an idle session is not found rather than limited.
        let idle_at_limit = Exchange {
            limit: 0,
            ..idle.clone()
        };
        assert_eq!(
            t.record_exchange(&idle_at_limit),
            Err(Error::NotFound(Entity::Session)),
            "{}",
            t.name()
        );
        assert_eq!(message_count(t.url()), 0, "{}", t.name());
        assert_eq!(reread(&fx, &t, &token).question_count, 0, "{}", t.name());
        // Active exactly at the cutoff is still current.
        let current = Exchange {
            idle_cutoff: session.last_active_at,
            ..fx.exchange(&session, "Still there?", 20, 0)
        };
        assert!(
            matches!(
                t.record_exchange(&current),
                Ok(ExchangeOutcome::Recorded { .. })
            ),
            "{}",
            t.name()
        );
    }
}

#[test]
fn parallel_exchanges_stop_exactly_at_the_limit() {
    const LIMIT: u32 = 5;
    const CALLERS: usize = 20;
    for t in stores() {
        let fx = fixture(&t);
        let (session, token) = fx.open(&t, "anon-1");
        let exchanges: Vec<Exchange> = (0..CALLERS)
            .map(|i| fx.exchange(&session, &format!("Question {i}"), LIMIT, 0))
            .collect();
        let outcomes = record_together(&t, &exchanges);
        let recorded = outcomes
            .iter()
            .filter(|o| matches!(o, ExchangeOutcome::Recorded { paid: true, .. }))
            .count();
        let limited: Vec<_> = outcomes
            .iter()
            .filter_map(|o| match o {
                ExchangeOutcome::RateLimited { last_active_at } => Some(*last_active_at),
                ExchangeOutcome::Recorded { .. } => None,
            })
            .collect();
        assert_eq!(
            (recorded, limited.len()),
            (LIMIT as usize, CALLERS - LIMIT as usize),
            "{}",
            t.name()
        );
        let stored = reread(&fx, &t, &token);
        assert_eq!(
            (stored.question_count, stored.message_count),
            (LIMIT, 2 * LIMIT),
            "{}",
            t.name()
        );
        assert_eq!(message_count(t.url()), i64::from(2 * LIMIT), "{}", t.name());
        assert!(
            limited.iter().all(|at| *at <= stored.last_active_at),
            "{}",
            t.name()
        );
        // Once at the limit, a later exchange is limited at the session's
        // last activity.
        assert_eq!(
            t.record_exchange(&fx.exchange(&session, "One more?", LIMIT, 0)),
            Ok(ExchangeOutcome::RateLimited {
                last_active_at: stored.last_active_at
            })
        );
    }
}

#[test]
fn parallel_paid_exchanges_spend_the_credits_there_are_and_no_more() {
    const CREDITS: i64 = 3;
    const CALLERS: usize = 10;
    for t in stores() {
        let fx = fixture(&t);
        let tenant = t
            .add_credits(fx.tenant.id, CREDITS - fx.tenant.credits)
            .expect("sets the balance");
        assert_eq!(tenant.credits, CREDITS);
        let (session, token) = fx.open(&t, "anon-1");
        let exchanges: Vec<Exchange> = (0..CALLERS)
            .map(|i| fx.exchange(&session, &format!("Question {i}"), 100, 1))
            .collect();
        let outcomes = record_together(&t, &exchanges);
        let mut paid = 0;
        for (exchange, outcome) in exchanges.iter().zip(&outcomes) {
            match outcome {
                ExchangeOutcome::Recorded { reply, paid: true } => {
                    assert_eq!(reply, &exchange.reply);
                    paid += 1;
                }
                ExchangeOutcome::Recorded { reply, paid: false } => {
                    assert_eq!(Some(reply), exchange.unpaid_reply.as_ref(), "{}", t.name());
                }
                ExchangeOutcome::RateLimited { .. } => panic!("{}: limited", t.name()),
            }
        }
        assert_eq!(paid, CREDITS, "{}", t.name());
        assert_eq!(
            t.get_tenant(fx.tenant.id).expect("reads").credits,
            0,
            "{}",
            t.name()
        );
        let stored = reread(&fx, &t, &token);
        assert_eq!(stored.question_count, CALLERS as u32);
        let statuses: Vec<MessageStatus> = timeline(&t, session.id, 100)
            .concat()
            .into_iter()
            .filter(|e| e.message.role == MessageRole::Assistant)
            .map(|e| e.message.status)
            .collect();
        let analyzing = statuses
            .iter()
            .filter(|s| **s == MessageStatus::Analyzing)
            .count();
        let unpaid = statuses
            .iter()
            .filter(|s| **s == MessageStatus::InsufficientCredits)
            .count();
        assert_eq!(
            (analyzing, unpaid),
            (CREDITS as usize, CALLERS - CREDITS as usize),
            "{}",
            t.name()
        );
    }
}

/// A paid exchange recorded in `session`; returns its ANALYZING reply.
fn paid_reply(fx: &Fixture, store: &Store, session: &ChatSession) -> ChatMessage {
    let exchange = fx.exchange(session, "How do I archive a project?", 20, 1);
    match store.record_exchange(&exchange).expect("records") {
        ExchangeOutcome::Recorded { reply, paid: true } => reply,
        other => panic!("not paid: {other:?}"),
    }
}

#[test]
fn a_generated_answer_stores_its_flow_once_and_finishes_the_reply() {
    for t in stores() {
        let fx = fixture(&t);
        let (session, token) = fx.open(&t, "anon-1");
        let analyzing = paid_reply(&fx, &t, &session);
        let before = reread(&fx, &t, &token);
        let version_before = fx.context(&t, &token).expect("ctx").content_version;
        let generated = |id: ContentId| {
            let item = ContentItem::generated_flow(
                id,
                fx.site.id,
                "Archive a project".into(),
                "Drafted by the assistant".into(),
                GeneratedFrom {
                    session_id: session.id,
                    message_id: analyzing.id,
                    answer: "Open the project, then Settings → Archive.".into(),
                },
                now(),
            );
            let reply = ChatMessage {
                status: MessageStatus::GeneratedContent,
                content: "Here is a guide: Archive a project".into(),
                content_ref: Some(ContentRef {
                    kind: ContentKind::Flow,
                    id: item.id,
                    name: item.name.clone(),
                }),
                tokens_used: Some(321),
                ..analyzing.clone()
            };
            GenerationOutcome::Generated { item, reply }
        };
        let first = generated(ContentId(Uuid::now_v7()));
        t.finish_generation(&first).expect("finishes");
        let GenerationOutcome::Generated { item, reply } = &first else {
            unreachable!()
        };
        assert_eq!(
            t.get_content(fx.site.id, item.id)
                .expect("the Flow is stored"),
            *item,
            "{}: with its origin",
            t.name()
        );
        assert_eq!(
            fx.context(&t, &token).expect("ctx").content_version,
            version_before + 1
        );
        let entries = timeline(&t, session.id, 10).concat();
        assert_eq!(entries[1].message, *reply, "{}", t.name());

        // Finishing again (a retry, another replica) changes nothing.
        t.finish_generation(&generated(ContentId(Uuid::now_v7())))
            .expect("finishes again");
        let failed = GenerationOutcome::Failed {
            reply: ChatMessage {
                status: MessageStatus::Failed,
                ..analyzing.clone()
            },
            tenant_id: fx.tenant.id,
            refund: 1,
        };
        t.finish_generation(&failed).expect("finishes again");
        let mut conn = connect(t.url()).expect("connects");
        let items: i64 = content_items::table
            .count()
            .get_result(&mut conn)
            .expect("counts");
        assert_eq!(items, 1, "{}", t.name());
        assert_eq!(timeline(&t, session.id, 10).concat(), entries);
        assert_eq!(
            fx.context(&t, &token).expect("ctx").content_version,
            version_before + 1
        );
        assert_eq!(
            t.get_tenant(fx.tenant.id).expect("reads").credits,
            fx.tenant.credits - 1,
            "{}: no refund",
            t.name()
        );
        assert_eq!(reread(&fx, &t, &token), before, "{}", t.name());
    }
}

#[test]
fn a_failed_generation_refunds_once() {
    for t in stores() {
        let fx = fixture(&t);
        let (session, _) = fx.open(&t, "anon-1");
        let analyzing = paid_reply(&fx, &t, &session);
        assert_eq!(
            t.get_tenant(fx.tenant.id).expect("reads").credits,
            fx.tenant.credits - 1
        );
        let failed = GenerationOutcome::Failed {
            reply: ChatMessage {
                status: MessageStatus::Failed,
                content: "Sorry, that did not work.".into(),
                ..analyzing.clone()
            },
            tenant_id: fx.tenant.id,
            refund: 1,
        };
        for _ in 0..2 {
            t.finish_generation(&failed).expect("finishes");
            assert_eq!(
                t.get_tenant(fx.tenant.id).expect("reads").credits,
                fx.tenant.credits,
                "{}",
                t.name()
            );
        }
        let GenerationOutcome::Failed { reply, .. } = &failed else {
            unreachable!()
        };
        let entries = timeline(&t, session.id, 10).concat();
        assert_eq!(entries[1].message, *reply, "{}", t.name());
    }
}

#[test]
fn the_timeline_pages_oldest_first_with_each_messages_vote() {
    for t in stores() {
        let fx = fixture(&t);
        let (session, _) = fx.open(&t, "anon-1");
        let mut expected = Vec::new();
        for i in 0..4 {
            let exchange = fx.exchange(&session, &format!("Question {i}"), 20, 0);
            t.record_exchange(&exchange).expect("records");
            expected.push((exchange.question.id, None));
            expected.push((exchange.reply.id, None));
        }
        for (index, vote) in [(1, Vote::Up), (5, Vote::Down)] {
            t.vote(
                session.id,
                expected[index].0,
                vote,
                FeedbackId(Uuid::now_v7()),
                now(),
            )
            .expect("votes");
            expected[index].1 = Some(vote);
        }
        // Another session's messages stay out.
        let (other, _) = fx.open(&t, "anon-2");
        t.record_exchange(&fx.exchange(&other, "Mine?", 20, 0))
            .expect("records");

        let pages = timeline(&t, session.id, 3);
        assert_eq!(
            pages.iter().map(Vec::len).collect::<Vec<_>>(),
            [3, 3, 2],
            "{}",
            t.name()
        );
        let got: Vec<(MessageId, Option<Vote>)> = pages
            .concat()
            .iter()
            .map(|e| (e.message.id, e.vote))
            .collect();
        assert_eq!(got, expected, "{}", t.name());
        assert!(t
            .list_messages(
                SessionId(Uuid::now_v7()),
                &PageRequest {
                    limit: 10,
                    after: None
                }
            )
            .expect("lists")
            .items
            .is_empty());
    }
}
