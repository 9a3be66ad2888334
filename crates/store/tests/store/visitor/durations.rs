//! A session's maximum duration (issue 8): four hours after it started a
//! session is no longer the visitor's current one, however active it was.
//! Questions in it are refused as in an ended session, the next open ends
//! it and starts another, and votes on its messages still count without
//! moving its last activity; so `last_active_at <= started_at + 4 h`
//! always holds.

use chatdesk_domain::conversation::{ChatSession, Vote};
use chatdesk_domain::ids::{FeedbackId, MessageId};
use chatdesk_domain::ports::{Exchange, ExchangeOutcome, VisitorRepository, VoteOutcome};
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::visitor::{SESSION_IDLE_TIMEOUT, SESSION_MAX_DURATION};
use chatdesk_domain::{Entity, Error};
use chatdesk_store::schema::{chat_messages, chat_sessions};
use chatdesk_store::{connect, Store};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::{anonymous, fixture, now, Fixture};
use crate::helpers::stores;

/// An exchange in `session` asked at `at`, with the cutoffs a request at
/// `at` computes.
fn exchange_at(
    fx: &Fixture,
    session: &ChatSession,
    question: &str,
    at: DateTime<Utc>,
    limit: u32,
) -> Exchange {
    let mut exchange = fx.exchange(session, question, limit, 0);
    exchange.question.created_at = at;
    exchange.reply.created_at = at;
    exchange.idle_cutoff = at - SESSION_IDLE_TIMEOUT;
    exchange.start_cutoff = at - SESSION_MAX_DURATION;
    exchange
}

/// Records a question asked at `at`; returns the reply's id.
fn ask(store: &Store, fx: &Fixture, session: &ChatSession, at: DateTime<Utc>) -> MessageId {
    let exchange = exchange_at(fx, session, "How?", at, 1000);
    match store.record_exchange(&exchange) {
        Ok(ExchangeOutcome::Recorded { reply, .. }) => reply.id,
        other => panic!("{:?}: a question at {at} is recorded: {other:?}", store),
    }
}

/// Keeps `session` (started at `started`) busy: a question every 25
/// minutes from its start until `until`. Returns the last reply.
fn keep_busy(
    store: &Store,
    fx: &Fixture,
    session: &ChatSession,
    started: DateTime<Utc>,
    until: DateTime<Utc>,
) -> MessageId {
    let mut at = started + Duration::minutes(25);
    let mut reply = None;
    while at <= until {
        reply = Some(ask(store, fx, session, at));
        at += Duration::minutes(25);
    }
    reply.expect("at least one question")
}

fn vote_at(
    store: &Store,
    session: &ChatSession,
    message: MessageId,
    vote: Vote,
    at: DateTime<Utc>,
) -> VoteOutcome {
    store
        .vote(session.id, message, vote, FeedbackId(Uuid::now_v7()), at)
        .expect("the vote counts")
}

/// The session as stored, through its token.
fn reread(store: &Store, fx: &Fixture, token: &SecretHash) -> ChatSession {
    fx.context(store, token).expect("the session").session
}

fn messages(url: &str) -> i64 {
    let mut conn = connect(url).expect("connects");
    chat_messages::table
        .count()
        .get_result(&mut conn)
        .expect("counts")
}

/// Every stored session was last active at most four hours after it
/// started.
fn assert_invariant(url: &str, context: &str) {
    let mut conn = connect(url).expect("connects");
    let rows: Vec<(String, NaiveDateTime, NaiveDateTime)> = chat_sessions::table
        .select((
            chat_sessions::id,
            chat_sessions::started_at,
            chat_sessions::last_active_at,
        ))
        .load(&mut conn)
        .expect("reads the sessions");
    assert!(!rows.is_empty());
    for (id, started_at, last_active_at) in rows {
        assert!(
            last_active_at <= started_at + SESSION_MAX_DURATION,
            "{context}: session {id} started {started_at}, last active {last_active_at}"
        );
        assert!(last_active_at >= started_at, "{context}: session {id}");
    }
}

#[test]
fn a_session_past_its_maximum_duration_takes_no_question_even_when_busy() {
    for t in stores() {
        let fx = fixture(&t);
        let asked = now();
        // Busy until a minute ago, but started four hours and half a minute
        // before the question.
        let started = asked - SESSION_MAX_DURATION - Duration::seconds(30);
        let request = fx.request(anonymous("anon-1"), started);
        let session = t.open_session(&request).expect("opens").session;
        let token = request.token;
        keep_busy(&t, &fx, &session, started, asked - Duration::minutes(2));
        let reply = ask(&t, &fx, &session, asked - Duration::minutes(1));
        let busy = reread(&t, &fx, &token);
        assert_eq!(
            busy.last_active_at,
            asked - Duration::minutes(1),
            "{}",
            t.name()
        );
        assert!(busy.is_current(asked - Duration::minutes(1)));
        assert!(!busy.is_current(asked), "{}", t.name());
        let stored_messages = messages(t.url());

        // Refused as not found, under the limit or at it (not rate limited).
        for limit in [1000, busy.question_count] {
            assert_eq!(
                t.record_exchange(&exchange_at(&fx, &session, "And now?", asked, limit)),
                Err(Error::NotFound(Entity::Session)),
                "{}: limit {limit}",
                t.name()
            );
        }
        assert_eq!(messages(t.url()), stored_messages, "{}", t.name());
        assert_eq!(reread(&t, &fx, &token), busy, "{}: unchanged", t.name());

        // A vote on its messages counts, and does not move it on.
        let at = asked + Duration::seconds(1);
        assert_eq!(
            vote_at(&t, &session, reply, Vote::Up, at).previous,
            None,
            "{}",
            t.name()
        );
        let voted = reread(&t, &fx, &token);
        assert_eq!((voted.up_votes, voted.down_votes), (1, 0), "{}", t.name());
        assert_eq!(voted.last_active_at, busy.last_active_at, "{}", t.name());
        assert_eq!(voted.ended_at, None, "{}: ended only by an open", t.name());
        assert_eq!(
            vote_at(&t, &session, reply, Vote::Down, at + Duration::seconds(1)).previous,
            Some(Vote::Up)
        );
        let changed = reread(&t, &fx, &token);
        assert_eq!(
            (changed.up_votes, changed.down_votes, changed.last_active_at),
            (0, 1, busy.last_active_at),
            "{}",
            t.name()
        );
        assert_invariant(t.url(), t.name());

        // The visitor's next open ends it and starts another.
        let reopened_at = asked + Duration::seconds(5);
        let again = fx.request(anonymous("anon-1"), reopened_at);
        let opened = t.open_session(&again).expect("opens");
        assert!(opened.created, "{}", t.name());
        assert_eq!(opened.session.id, again.new_session_id);
        assert_eq!(opened.session.end_user_id, session.end_user_id);
        let ended = reread(&t, &fx, &token);
        assert_eq!(ended.ended_at, Some(reopened_at), "{}", t.name());
        assert_eq!(ended.last_active_at, busy.last_active_at);

        // A late vote on the ended session counts and moves nothing.
        vote_at(
            &t,
            &session,
            reply,
            Vote::Up,
            reopened_at + Duration::minutes(1),
        );
        let late = reread(&t, &fx, &token);
        assert_eq!(
            (late.up_votes, late.down_votes, late.last_active_at),
            (1, 0, busy.last_active_at),
            "{}",
            t.name()
        );

        // In the new session, questions and votes move it on.
        let current = opened.session;
        let new_reply = ask(&t, &fx, &current, reopened_at + Duration::minutes(2));
        vote_at(
            &t,
            &current,
            new_reply,
            Vote::Up,
            reopened_at + Duration::minutes(3),
        );
        let moved = reread(&t, &fx, &again.token);
        assert_eq!(
            (moved.up_votes, moved.last_active_at),
            (1, reopened_at + Duration::minutes(3)),
            "{}",
            t.name()
        );
        assert_invariant(t.url(), t.name());
    }
}

#[test]
fn four_hours_exactly_is_still_current_and_a_microsecond_more_is_not() {
    let micro = Duration::microseconds(1);
    for t in stores() {
        let fx = fixture(&t);
        let started = now() - Duration::hours(5);
        let deadline = started + SESSION_MAX_DURATION;
        let request = fx.request(anonymous("anon-1"), started);
        let session = t.open_session(&request).expect("opens").session;
        let token = request.token;
        let reply = keep_busy(&t, &fx, &session, started, deadline - Duration::minutes(5));
        let before = reread(&t, &fx, &token).last_active_at;
        assert!(before < deadline);

        // A vote at the very end moves it on to the end.
        vote_at(&t, &session, reply, Vote::Up, deadline);
        assert_eq!(
            reread(&t, &fx, &token).last_active_at,
            deadline,
            "{}",
            t.name()
        );
        // A microsecond later: a question is refused, a vote counts
        // without moving it.
        assert_eq!(
            t.record_exchange(&exchange_at(&fx, &session, "More?", deadline + micro, 1000)),
            Err(Error::NotFound(Entity::Session)),
            "{}",
            t.name()
        );
        vote_at(&t, &session, reply, Vote::Down, deadline + micro);
        let after = reread(&t, &fx, &token);
        assert_eq!(
            (after.up_votes, after.down_votes, after.last_active_at),
            (0, 1, deadline),
            "{}",
            t.name()
        );
        // A question asked at the very end still counts.
        ask(&t, &fx, &session, deadline);
        assert_eq!(
            reread(&t, &fx, &token).last_active_at,
            deadline,
            "{}",
            t.name()
        );

        // An open at the very end resumes it; a microsecond later ends it.
        let at_end = t
            .open_session(&fx.request(anonymous("anon-1"), deadline))
            .expect("opens");
        assert!(!at_end.created, "{}", t.name());
        assert_eq!(at_end.session.id, session.id);
        let past = fx.request(anonymous("anon-1"), deadline + micro);
        let opened = t.open_session(&past).expect("opens");
        assert!(opened.created, "{}", t.name());
        assert_eq!(
            reread(&t, &fx, &token).ended_at,
            Some(deadline + micro),
            "{}",
            t.name()
        );
        assert_invariant(t.url(), t.name());
    }
}

#[test]
fn an_idle_session_counts_a_vote_without_moving_on() {
    for t in stores() {
        let fx = fixture(&t);
        let started = now() - Duration::hours(2);
        let request = fx.request(anonymous("anon-1"), started);
        let session = t.open_session(&request).expect("opens").session;
        let reply = ask(&t, &fx, &session, started + Duration::minutes(10));
        // Idle for longer than the timeout, though well within four hours.
        let idle = started + Duration::minutes(10) + SESSION_IDLE_TIMEOUT + Duration::seconds(1);
        vote_at(&t, &session, reply, Vote::Down, idle);
        let stored = reread(&t, &fx, &request.token);
        assert_eq!(
            (stored.down_votes, stored.last_active_at),
            (1, started + Duration::minutes(10)),
            "{}",
            t.name()
        );
        assert_eq!(
            t.record_exchange(&exchange_at(&fx, &session, "Still there?", idle, 1000)),
            Err(Error::NotFound(Entity::Session)),
            "{}",
            t.name()
        );
        assert_invariant(t.url(), t.name());
    }
}
