//! Votes: one per assistant message of the session, counters kept equal
//! to the votes under concurrency.

use std::sync::Barrier;

use chatdesk_domain::conversation::{ChatMessage, MessageRole, MessageStatus, Vote};
use chatdesk_domain::ids::{FeedbackId, MessageId, SessionId};
use chatdesk_domain::ports::{VisitorRepository, VoteOutcome};
use chatdesk_domain::{Entity, Error};
use chatdesk_store::schema::chat_feedback;
use chatdesk_store::{connect, Store};
use chrono::Duration;
use diesel::prelude::*;
use uuid::Uuid;

use super::{fixture, now};
use crate::helpers::stores;

/// The stored votes, as (message id, vote), by message.
fn votes(url: &str) -> Vec<(String, String)> {
    let mut conn = connect(url).expect("connects");
    chat_feedback::table
        .select((chat_feedback::message_id, chat_feedback::vote))
        .order(chat_feedback::message_id)
        .load(&mut conn)
        .expect("reads votes")
}

fn vote(
    store: &Store,
    session: SessionId,
    message: MessageId,
    vote: Vote,
) -> Result<VoteOutcome, Error> {
    store.vote(session, message, vote, FeedbackId(Uuid::now_v7()), now())
}

#[test]
fn a_vote_replaces_the_messages_previous_one() {
    for t in stores() {
        let fx = fixture(&t);
        let (session, token) = fx.open(&t, "anon-1");
        let exchange = fx.exchange(&session, "How?", 20, 0);
        t.record_exchange(&exchange).expect("records");
        let reply = exchange.reply.id;
        let counters = || {
            let s = fx.context(&t, &token).expect("the session").session;
            (s.up_votes, s.down_votes)
        };

        // (vote, previous, counters after)
        let steps = [
            (Vote::Up, None, (1, 0)),
            (Vote::Up, Some(Vote::Up), (1, 0)),
            (Vote::Down, Some(Vote::Up), (0, 1)),
            (Vote::Up, Some(Vote::Down), (1, 0)),
        ];
        for (i, (new, previous, after)) in steps.into_iter().enumerate() {
            assert_eq!(
                vote(&t, session.id, reply, new),
                Ok(VoteOutcome { previous }),
                "{}: step {i}",
                t.name()
            );
            assert_eq!(counters(), after, "{}: step {i}", t.name());
        }
        assert_eq!(
            votes(t.url()),
            [(reply.to_string(), "UP".to_string())],
            "{}: one row",
            t.name()
        );

        // The vote is activity; an older instant does not move it back.
        let at = now() + Duration::minutes(3);
        t.vote(
            session.id,
            reply,
            Vote::Down,
            FeedbackId(Uuid::now_v7()),
            at,
        )
        .expect("votes");
        let s = fx.context(&t, &token).expect("the session").session;
        assert_eq!(s.last_active_at, at, "{}", t.name());
        t.vote(
            session.id,
            reply,
            Vote::Down,
            FeedbackId(Uuid::now_v7()),
            at - Duration::minutes(10),
        )
        .expect("votes");
        let s = fx.context(&t, &token).expect("the session").session;
        assert_eq!(s.last_active_at, at, "{}", t.name());
    }
}

#[test]
fn only_the_sessions_assistant_messages_take_votes() {
    for t in stores() {
        let fx = fixture(&t);
        let (session, _) = fx.open(&t, "anon-1");
        let (other, _) = fx.open(&t, "anon-2");
        let exchange = fx.exchange(&session, "How?", 20, 0);
        t.record_exchange(&exchange).expect("records");
        let theirs = fx.exchange(&other, "And me?", 20, 0);
        t.record_exchange(&theirs).expect("records");

        let cases: [(SessionId, MessageId, Error); 4] = [
            (
                session.id,
                exchange.question.id,
                Error::NotAnAssistantMessage,
            ),
            (
                session.id,
                theirs.reply.id,
                Error::NotFound(Entity::Message),
            ),
            (
                session.id,
                MessageId(Uuid::now_v7()),
                Error::NotFound(Entity::Message),
            ),
            (
                SessionId(Uuid::now_v7()),
                exchange.reply.id,
                Error::NotFound(Entity::Session),
            ),
        ];
        for (session_id, message, error) in cases {
            assert_eq!(
                vote(&t, session_id, message, Vote::Down),
                Err(error.clone()),
                "{}: {error:?}",
                t.name()
            );
        }
        assert!(votes(t.url()).is_empty(), "{}", t.name());
    }
}

#[test]
fn concurrent_votes_keep_the_counters_equal_to_the_votes() {
    const MESSAGES: usize = 8;
    const VOTERS: usize = 32;
    const VOTES_EACH: usize = 4;
    for t in stores() {
        let fx = fixture(&t);
        let (session, token) = fx.open(&t, "anon-1");
        let replies: Vec<ChatMessage> = (0..MESSAGES)
            .map(|i| {
                let exchange = fx.exchange(&session, &format!("Question {i}"), 100, 0);
                t.record_exchange(&exchange).expect("records");
                exchange.reply
            })
            .collect();
        assert!(replies
            .iter()
            .all(|r| r.role == MessageRole::Assistant && r.status == MessageStatus::Completed));

        // Random choices, drawn up front: (message, vote) per voter.
        let plans: Vec<Vec<(MessageId, Vote)>> = (0..VOTERS)
            .map(|_| {
                (0..VOTES_EACH)
                    .map(|_| {
                        let random = Uuid::new_v4().as_u128();
                        let message = replies[(random % MESSAGES as u128) as usize].id;
                        let vote = if (random >> 64).is_multiple_of(2) {
                            Vote::Up
                        } else {
                            Vote::Down
                        };
                        (message, vote)
                    })
                    .collect()
            })
            .collect();
        let start = Barrier::new(VOTERS);
        std::thread::scope(|s| {
            for plan in &plans {
                let (store, start) = (&t.store, &start);
                s.spawn(move || {
                    start.wait();
                    for (message, choice) in plan {
                        vote(store, session.id, *message, *choice).expect("votes");
                    }
                });
            }
        });

        let stored = votes(t.url());
        let voted: std::collections::BTreeSet<String> =
            plans.concat().iter().map(|(m, _)| m.to_string()).collect();
        assert_eq!(
            stored.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(),
            voted.into_iter().collect::<Vec<_>>(),
            "{}: one row per voted message",
            t.name()
        );
        let ups = stored.iter().filter(|(_, v)| v == "UP").count() as u32;
        let downs = stored.iter().filter(|(_, v)| v == "DOWN").count() as u32;
        let s = fx.context(&t, &token).expect("the session").session;
        assert_eq!((s.up_votes, s.down_votes), (ups, downs), "{}", t.name());
    }
}
