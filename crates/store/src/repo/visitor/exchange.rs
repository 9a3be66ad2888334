//! Questions and their replies: recording an exchange, and finishing a
//! generated answer.

use chatdesk_domain::conversation::{preview_of, ChatMessage};
use chatdesk_domain::ports::{Exchange, ExchangeOutcome, GenerationOutcome};
use chatdesk_domain::{Entity, Error};
use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text, Timestamp};

use super::{check_key, visitor_seen};
use crate::connection::DbConnection;
use crate::repo::content::bump_content_version;
use crate::repo::{violates_foreign_key, Failure};
use crate::rows::{as_stored, from_db_time, to_db_time, ContentRow, MessageRow, ReplyChangeset};
use crate::schema::{chat_messages, chat_sessions, content_items, tenants};

/// The status a reply has while its answer is being generated.
const ANALYZING: &str = "ANALYZING";

/// [`chatdesk_domain::ports::VisitorRepository::record_exchange`], inside
/// its write transaction.
pub(super) fn record_exchange(
    conn: &mut DbConnection,
    exchange: &Exchange,
) -> Result<ExchangeOutcome, Failure> {
    let question = &exchange.question;
    let same_session =
        |m: &ChatMessage| m.session_id == question.session_id && m.site_id == question.site_id;
    if !same_session(&exchange.reply) || !exchange.unpaid_reply.as_ref().is_none_or(same_session) {
        return Err(Error::Internal("an exchange's messages must share one session".into()).into());
    }
    let site = question.site_id.to_string();
    let session = question.session_id.to_string();
    let tenant = check_key(conn, &site, &exchange.key)?;
    if tenant != exchange.tenant_id.to_string() {
        return Err(Error::Internal("an exchange's tenant must be its site's".into()).into());
    }

    // The question counts only while the session is current and below the
    // limit. PostgreSQL re-checks the WHERE on the newest row version after
    // waiting for a concurrent exchange, so no two pass the limit together.
    let limit = i32::try_from(exchange.limit).unwrap_or(i32::MAX);
    let active = to_db_time(question.created_at.max(exchange.reply.created_at));
    let counted = diesel::update(
        chat_sessions::table
            .filter(chat_sessions::id.eq(&session))
            .filter(chat_sessions::site_id.eq(&site))
            .filter(chat_sessions::ended_at.is_null())
            .filter(chat_sessions::last_active_at.ge(to_db_time(exchange.idle_cutoff)))
            .filter(chat_sessions::started_at.ge(to_db_time(exchange.start_cutoff)))
            .filter(chat_sessions::question_count.lt(limit)),
    )
    .set((
        chat_sessions::question_count.eq(chat_sessions::question_count + 1),
        chat_sessions::message_count.eq(chat_sessions::message_count + 2),
        // Moved on to the exchange's time, never back.
        chat_sessions::last_active_at.eq(sql::<Timestamp>("CASE WHEN last_active_at > ")
            .bind::<Timestamp, _>(active)
            .sql(" THEN last_active_at ELSE ")
            .bind::<Timestamp, _>(active)
            .sql(" END")),
        chat_sessions::preview.eq(sql::<Nullable<Text>>("COALESCE(preview, ")
            .bind::<Text, _>(preview_of(&question.content))
            .sql(")")),
    ))
    .execute(conn)?;
    if counted == 0 {
        let state: Option<(Option<NaiveDateTime>, NaiveDateTime, NaiveDateTime)> =
            chat_sessions::table
                .filter(chat_sessions::id.eq(&session))
                .filter(chat_sessions::site_id.eq(&site))
                .select((
                    chat_sessions::ended_at,
                    chat_sessions::started_at,
                    chat_sessions::last_active_at,
                ))
                .first(conn)
                .optional()?;
        // Ended, idle past the cutoff or past its maximum duration (ended
        // in all but name: the next open starts a new session): not found.
        // Else the limit is reached.
        let idle_cutoff = to_db_time(exchange.idle_cutoff);
        let start_cutoff = to_db_time(exchange.start_cutoff);
        return match state {
            Some((None, started_at, last_active_at))
                if last_active_at >= idle_cutoff && started_at >= start_cutoff =>
            {
                Ok(ExchangeOutcome::RateLimited {
                    last_active_at: from_db_time(last_active_at),
                })
            }
            _ => Err(Error::NotFound(Entity::Session).into()),
        };
    }

    visitor_seen(conn, &session, active)?;

    // The credits: spent only if the balance covers them, never below 0.
    let paid = exchange.cost == 0 || {
        let cost = i64::from(exchange.cost);
        diesel::update(
            tenants::table
                .filter(tenants::id.eq(&tenant))
                .filter(tenants::credits.ge(cost)),
        )
        .set(tenants::credits.eq(tenants::credits - cost))
        .execute(conn)?
            == 1
    };
    let reply = if paid {
        &exchange.reply
    } else {
        exchange.unpaid_reply.as_ref().ok_or_else(|| {
            Failure::Domain(Error::Internal(
                "an exchange that costs credits needs an unpaid reply".into(),
            ))
        })?
    };
    for message in [question, reply] {
        diesel::insert_into(chat_messages::table)
            .values(&MessageRow::from_domain(message)?)
            .execute(conn)?;
    }
    Ok(ExchangeOutcome::Recorded {
        reply: ChatMessage {
            created_at: as_stored(reply.created_at),
            ..reply.clone()
        },
        paid,
    })
}

/// Finishes a reply that is still ANALYZING as `reply` says:
/// `UPDATE chat_messages SET status, content, content_kind, content_id,
/// content_name, model, tokens_used WHERE id = $1 AND session_id = $2 AND
/// site_id = $3 AND status = 'ANALYZING'`. Returns whether it was.
fn finish_reply(conn: &mut DbConnection, reply: &ChatMessage) -> Result<bool, Failure> {
    let row = MessageRow::from_domain(reply)?;
    let updated = diesel::update(
        chat_messages::table
            .filter(chat_messages::id.eq(&row.id))
            .filter(chat_messages::session_id.eq(&row.session_id))
            .filter(chat_messages::site_id.eq(&row.site_id))
            .filter(chat_messages::status.eq(ANALYZING)),
    )
    .set(ReplyChangeset::from(&row))
    .execute(conn)?;
    Ok(updated == 1)
}

/// [`chatdesk_domain::ports::VisitorRepository::finish_generation`], inside
/// its write transaction. The reply is finished first, and only while it
/// is still ANALYZING; when it no longer is (another call finished it, or
/// it is gone with its session), nothing is changed — no Flow is stored,
/// no credits are refunded — and the call succeeds, so finishing twice
/// stores one Flow and refunds once.
pub(super) fn finish_generation(
    conn: &mut DbConnection,
    outcome: &GenerationOutcome,
) -> Result<(), Failure> {
    match outcome {
        GenerationOutcome::Generated { item, reply } => {
            if !finish_reply(conn, reply)? {
                return Ok(());
            }
            let row = ContentRow::from_domain(item)?;
            diesel::insert_into(content_items::table)
                .values(&row)
                .execute(conn)
                .map_err(|e| {
                    if violates_foreign_key(&e) {
                        Failure::Domain(Error::NotFound(Entity::Site))
                    } else {
                        e.into()
                    }
                })?;
            bump_content_version(conn, &row.site_id)?;
        }
        GenerationOutcome::Failed {
            reply,
            tenant_id,
            refund,
        } => {
            if !finish_reply(conn, reply)? {
                return Ok(());
            }
            if *refund > 0 {
                diesel::update(tenants::table.filter(tenants::id.eq(tenant_id.to_string())))
                    .set(tenants::credits.eq(tenants::credits + i64::from(*refund)))
                    .execute(conn)?;
            }
        }
    }
    Ok(())
}
