//! A visitor's vote on an assistant message.

use chatdesk_domain::conversation::{check_votable, MessageRole, Vote};
use chatdesk_domain::ids::{FeedbackId, MessageId, SessionId};
use chatdesk_domain::ports::VoteOutcome;
use chatdesk_domain::{Entity, Error};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::{lock_session, read_vote, visitor_seen};
use crate::connection::DbConnection;
use crate::repo::Failure;
use crate::rows::to_db_time;
use crate::schema::{chat_feedback, chat_messages, chat_sessions};
use crate::StoreError;

/// A counter's change as stored.
fn delta(after: u32, before: u32) -> i32 {
    let change = i64::from(after) - i64::from(before);
    i32::try_from(change).unwrap_or(if change < 0 { i32::MIN } else { i32::MAX })
}

/// [`chatdesk_domain::ports::VisitorRepository::vote`], inside its write
/// transaction.
pub(super) fn vote(
    conn: &mut DbConnection,
    session: SessionId,
    message: MessageId,
    vote: Vote,
    new_feedback_id: FeedbackId,
    now: DateTime<Utc>,
) -> Result<VoteOutcome, Failure> {
    let session_id = session.to_string();
    let message_id = message.to_string();
    let now = to_db_time(now);
    let mut session = lock_session(conn, &session_id)?
        .ok_or(Error::NotFound(Entity::Session))?
        .into_domain()?;

    let role: Option<String> = chat_messages::table
        .filter(chat_messages::id.eq(&message_id))
        .filter(chat_messages::session_id.eq(&session_id))
        .select(chat_messages::role)
        .first(conn)
        .optional()?;
    let role = role.ok_or(Error::NotFound(Entity::Message))?;
    let role: MessageRole = role.parse().map_err(|e| StoreError::InvalidValue {
        table: "chat_messages",
        column: "role",
        message: format!("{role:?} {e}"),
    })?;
    check_votable(role)?;

    // One vote per message: the session's row lock keeps a concurrent vote
    // on the same message from inserting between this read and the write.
    let previous: Option<String> = chat_feedback::table
        .filter(chat_feedback::message_id.eq(&message_id))
        .select(chat_feedback::vote)
        .first(conn)
        .optional()?;
    let previous = previous.as_deref().map(read_vote).transpose()?;
    if previous.is_some() {
        diesel::update(chat_feedback::table.filter(chat_feedback::message_id.eq(&message_id)))
            .set((
                chat_feedback::vote.eq(vote.as_str()),
                chat_feedback::updated_at.eq(now),
            ))
            .execute(conn)?;
    } else {
        diesel::insert_into(chat_feedback::table)
            .values((
                chat_feedback::id.eq(new_feedback_id.to_string()),
                chat_feedback::site_id.eq(session.site_id.to_string()),
                chat_feedback::session_id.eq(&session_id),
                chat_feedback::message_id.eq(&message_id),
                chat_feedback::vote.eq(vote.as_str()),
                chat_feedback::created_at.eq(now),
                chat_feedback::updated_at.eq(now),
            ))
            .execute(conn)?;
    }

    let (up_before, down_before) = (session.up_votes, session.down_votes);
    session.record_vote(previous, vote, now.and_utc());
    diesel::update(chat_sessions::table.find(&session_id))
        .set((
            chat_sessions::up_votes
                .eq(chat_sessions::up_votes + delta(session.up_votes, up_before)),
            chat_sessions::down_votes
                .eq(chat_sessions::down_votes + delta(session.down_votes, down_before)),
            chat_sessions::last_active_at.eq(to_db_time(session.last_active_at)),
        ))
        .execute(conn)?;
    visitor_seen(conn, &session_id, now)?;
    Ok(VoteOutcome { previous })
}
