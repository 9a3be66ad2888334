//! Opening (or resuming) a visitor's session.

use chatdesk_domain::ports::{OpenSession, OpenedSession};
use chatdesk_domain::visitor::check_identity;
use chatdesk_domain::Error;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text, Timestamp};

use super::{check_key, dialect};
use crate::connection::DbConnection;
use crate::repo::Failure;
use crate::rows::{to_db_time, traits_json, SessionRow};
use crate::schema::{chat_session_tokens, chat_sessions, end_users};

/// Adds the visitor unless (site_id, anonymous_id) is taken; a concurrent
/// caller's insert of the same visitor waits for this one's outcome.
const INSERT_VISITOR: &str = "INSERT INTO end_users \
     (id, site_id, anonymous_id, external_id, traits, verified, first_seen_at, last_seen_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT DO NOTHING";

/// Starts a session unless the visitor already has a current one with the
/// widget (the partial unique index `chat_sessions_current_key` on
/// (widget_id, end_user_id) WHERE ended_at IS NULL).
const INSERT_SESSION: &str = "INSERT INTO chat_sessions \
     (id, site_id, widget_id, end_user_id, token_hash, started_at, last_active_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT DO NOTHING";

/// [`chatdesk_domain::ports::VisitorRepository::open_session`], inside its
/// write transaction.
pub(super) fn open_session(
    conn: &mut DbConnection,
    request: &OpenSession,
) -> Result<OpenedSession, Failure> {
    let site = request.site_id.to_string();
    let widget = request.widget_id.to_string();
    let identity = &request.identity;
    let now = to_db_time(request.now);
    check_key(conn, &site, &request.key)?;

    // The visitor: added with what the request says, or found and updated.
    let traits = identity.traits.as_ref().map(traits_json).transpose()?;
    let added = diesel::sql_query(dialect(conn, INSERT_VISITOR))
        .bind::<Text, _>(request.new_visitor_id.to_string())
        .bind::<Text, _>(&site)
        .bind::<Text, _>(&identity.anonymous_id)
        .bind::<Nullable<Text>, _>(identity.external_id.as_deref())
        .bind::<Text, _>(traits.as_deref().unwrap_or("{}"))
        .bind::<Bool, _>(identity.external_id.is_some() && identity.verified)
        .bind::<Timestamp, _>(now)
        .execute(conn)?;
    let visitor_row = end_users::table
        .filter(end_users::site_id.eq(&site))
        .filter(end_users::anonymous_id.eq(&identity.anonymous_id));
    if added == 0 {
        // The stored identity, locked on PostgreSQL so that two requests
        // identifying one anonymous visitor at once are taken in turn.
        let query = visitor_row.select(end_users::external_id);
        let stored: Option<String> = match conn {
            DbConnection::Pg(pg) => query.for_no_key_update().first(pg)?,
            DbConnection::Sqlite(_) => query.first(conn)?,
        };
        check_identity(stored.as_deref(), identity)?;
        // The identity is written only when the request carries one, the
        // traits only when it sends them; first_seen_at stays.
        diesel::update(visitor_row)
            .set((
                end_users::last_seen_at.eq(now),
                identity.external_id.as_ref().map(|external| {
                    (
                        end_users::external_id.eq(external),
                        end_users::verified.eq(identity.verified),
                    )
                }),
                traits.as_ref().map(|traits| end_users::traits.eq(traits)),
            ))
            .execute(conn)?;
    }
    let visitor: String = visitor_row.select(end_users::id).first(conn)?;

    // A current session idle since before the cutoff, or started before
    // its maximum duration's cutoff, ends now.
    diesel::update(
        chat_sessions::table
            .filter(chat_sessions::widget_id.eq(&widget))
            .filter(chat_sessions::end_user_id.eq(&visitor))
            .filter(chat_sessions::ended_at.is_null())
            .filter(
                chat_sessions::last_active_at
                    .lt(to_db_time(request.idle_cutoff))
                    .or(chat_sessions::started_at.lt(to_db_time(request.start_cutoff))),
            ),
    )
    .set(chat_sessions::ended_at.eq(Some(now)))
    .execute(conn)?;

    // A new session, unless the visitor has a current one: then every
    // caller reads the one that is current (a concurrent caller's insert
    // waits for ours, then inserts nothing).
    let new_id = request.new_session_id.to_string();
    let inserted = diesel::sql_query(dialect(conn, INSERT_SESSION))
        .bind::<Text, _>(&new_id)
        .bind::<Text, _>(&site)
        .bind::<Text, _>(&widget)
        .bind::<Text, _>(&visitor)
        .bind::<Text, _>(request.token.to_hex())
        .bind::<Timestamp, _>(now)
        .execute(conn)?;
    let current = chat_sessions::table
        .filter(chat_sessions::widget_id.eq(&widget))
        .filter(chat_sessions::end_user_id.eq(&visitor))
        .filter(chat_sessions::ended_at.is_null())
        .select(SessionRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| {
            Failure::Domain(Error::Internal(
                "the visitor has no current session after opening one".into(),
            ))
        })?;

    // Every caller's token opens the session it got.
    diesel::insert_into(chat_session_tokens::table)
        .values((
            chat_session_tokens::token_hash.eq(request.token.to_hex()),
            chat_session_tokens::session_id.eq(&current.id),
            chat_session_tokens::site_id.eq(&site),
            chat_session_tokens::created_at.eq(now),
        ))
        .execute(conn)?;

    let created = inserted == 1 && current.id == new_id;
    Ok(OpenedSession {
        session: current.into_domain()?,
        created,
    })
}
