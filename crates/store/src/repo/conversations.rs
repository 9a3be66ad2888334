//! The Conversations tab's reads: a site's sessions, filtered and paged on
//! the keyset (`last_active_at`, `id`), and one session's detail.
//!
//! Every combination of the vote and escalation filters has a partial
//! index of its own (migrations 000003 and 000005) whose predicate is the
//! filter, written exactly as [`conversation_list_sql`] writes it; the
//! list reads a range of that index, newest first, and stops after the
//! page. On SQLite the statement names the index (`INDEXED BY`), so a
//! statement the index cannot serve fails instead of scanning; on
//! PostgreSQL the planner picks it (`make bench-conversations` prints the
//! plans at a million sessions).

use chatdesk_domain::conversation::{
    ConversationCursor, ConversationHead, ConversationQuery, ConversationSummary, TicketLink,
    TimelineEntry, VoteClass,
};
use chatdesk_domain::ids::{MessageId, SessionId, SiteId};
use chatdesk_domain::ports::{ConversationRepository, Page, PageRequest};
use chatdesk_domain::ticket::TicketStatus;
use chatdesk_domain::{Entity, Error};
use chrono::{DateTime, NaiveDate, NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};

use super::visitor::read_vote;
use super::{convert, overfetch};
use crate::connection::{Backend, DbConnection};
use crate::rows::{read_enum, to_db_time, EndUserRow, MessageRow, SessionRow};
use crate::schema::{chat_feedback, chat_messages, chat_sessions, end_users, support_tickets};
use crate::{Store, StoreError};

/// The index that serves a list of `votes` and `escalated`, named as in
/// the migrations.
pub fn conversation_list_index(votes: VoteClass, escalated: Option<bool>) -> &'static str {
    use VoteClass::*;
    match (votes, escalated) {
        (Any, None) => "chat_sessions_site_recent_idx",
        (Any, Some(true)) => "chat_sessions_site_escalated_recent_idx",
        (Any, Some(false)) => "chat_sessions_site_not_escalated_recent_idx",
        (Voted, None) => "chat_sessions_site_voted_recent_idx",
        (Voted, Some(true)) => "chat_sessions_site_voted_escalated_recent_idx",
        (Voted, Some(false)) => "chat_sessions_site_voted_not_escalated_recent_idx",
        (UpOnly, None) => "chat_sessions_site_up_only_recent_idx",
        (UpOnly, Some(true)) => "chat_sessions_site_up_only_escalated_recent_idx",
        (UpOnly, Some(false)) => "chat_sessions_site_up_only_not_escalated_recent_idx",
        (DownOnly, None) => "chat_sessions_site_down_only_recent_idx",
        (DownOnly, Some(true)) => "chat_sessions_site_down_only_escalated_recent_idx",
        (DownOnly, Some(false)) => "chat_sessions_site_down_only_not_escalated_recent_idx",
        (Unvoted, None) => "chat_sessions_site_unvoted_recent_idx",
        (Unvoted, Some(true)) => "chat_sessions_site_unvoted_escalated_recent_idx",
        (Unvoted, Some(false)) => "chat_sessions_site_unvoted_not_escalated_recent_idx",
    }
}

/// The predicate of a vote class, as its index's `WHERE` writes it.
fn vote_predicate(votes: VoteClass) -> Option<&'static str> {
    match votes {
        VoteClass::Any => None,
        VoteClass::Voted => Some("(s.up_votes > 0 OR s.down_votes > 0)"),
        VoteClass::UpOnly => Some("s.up_votes > 0 AND s.down_votes = 0"),
        VoteClass::DownOnly => Some("s.up_votes = 0 AND s.down_votes > 0"),
        VoteClass::Unvoted => Some("s.up_votes = 0 AND s.down_votes = 0"),
    }
}

/// The predicate of an escalation filter, as its index's `WHERE` writes it.
fn escalation_predicate(escalated: Option<bool>) -> Option<&'static str> {
    escalated.map(|e| {
        if e {
            "s.ticket_id IS NOT NULL"
        } else {
            "s.ticket_id IS NULL"
        }
    })
}

/// The statement of a conversation page with the filters `votes` and
/// `escalated`, in `backend`'s dialect. Its parameters, in order:
///
/// 1. the site id (text);
/// 2. the window's `from` — sessions last active at or after it;
/// 3. the window's `to` — sessions started at or before it;
/// 4. `to` plus the longest a session lasts (implied by 3 for every
///    session, it bounds the index range a window reads);
/// 5. and 6. the cursor's `last_active_at`, 7. the cursor's id — the page
///    continues after that session;
/// 8. how many rows to return.
///
/// An unset bound is bound to a value that holds for every row (see
/// [`ListBounds`]), so each combination is one statement whatever the
/// window and cursor: the filters themselves are part of the text, so the
/// index predicates match them literally.
pub fn conversation_list_sql(
    backend: Backend,
    votes: VoteClass,
    escalated: Option<bool>,
) -> String {
    let index = conversation_list_index(votes, escalated);
    let hint = match backend {
        Backend::Postgres => String::new(),
        Backend::Sqlite => format!(" INDEXED BY {index}"),
    };
    let filters: String = vote_predicate(votes)
        .into_iter()
        .chain(escalation_predicate(escalated))
        .map(|p| format!("\n   AND {p}"))
        .collect();
    let sql = format!(
        "SELECT s.id, s.site_id, s.widget_id, s.end_user_id, s.started_at, s.last_active_at, \
         s.ended_at, s.message_count, s.question_count, s.up_votes, s.down_votes, s.ticket_id, \
         s.preview, u.anonymous_id, u.external_id\n  \
         FROM chat_sessions AS s{hint}\n  \
         JOIN end_users AS u ON u.id = s.end_user_id\n \
         WHERE s.site_id = $1{filters}\n   \
         AND s.last_active_at >= $2\n   \
         AND s.started_at <= $3 AND s.last_active_at <= $4\n   \
         AND s.last_active_at <= $5 AND (s.last_active_at < $6 OR s.id < $7)\n \
         ORDER BY s.last_active_at DESC, s.id DESC\n \
         LIMIT $8"
    );
    match backend {
        Backend::Postgres => sql,
        // SQLite numbers its parameters `?NNN`.
        Backend::Sqlite => sql.replace('$', "?"),
    }
}

/// The values bound to a conversation page's statement (see
/// [`conversation_list_sql`]), unset bounds widened to hold for every row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListBounds {
    /// 1: the site.
    pub site: String,
    /// 2: last active at or after.
    pub from: NaiveDateTime,
    /// 3: started at or before.
    pub to: NaiveDateTime,
    /// 4: last active at or before (`to` plus a session's longest run).
    pub latest_activity: NaiveDateTime,
    /// 5, 6: the cursor's `last_active_at`.
    pub cursor_at: NaiveDateTime,
    /// 7: the cursor's id.
    pub cursor_id: String,
    /// 8: the rows to fetch.
    pub limit: i64,
}

/// `t` rounded up to a whole microsecond.
fn micros_ceil(t: DateTime<Utc>) -> DateTime<Utc> {
    let truncated = t.trunc_subsecs(6);
    if truncated < t {
        truncated + chrono::Duration::microseconds(1)
    } else {
        truncated
    }
}

/// Before every stored instant.
fn earliest() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or(NaiveDateTime::MIN)
}

/// After every stored instant.
fn latest() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .unwrap_or(NaiveDateTime::MAX)
}

impl ListBounds {
    /// The bounds of a page of `query` on `site`, fetching `rows` rows.
    pub fn new(
        site: SiteId,
        query: &ConversationQuery,
        after: Option<&ConversationCursor>,
        rows: i64,
    ) -> ListBounds {
        let time = |t: Option<DateTime<Utc>>, open: NaiveDateTime| t.map_or(open, to_db_time);
        ListBounds {
            site: site.to_string(),
            // Stored instants have whole microseconds: `>= from` holds for
            // them exactly when it holds against `from` rounded up (and
            // `<= to` against `to` rounded down, as `to_db_time` does).
            from: query
                .window
                .from
                .map_or_else(earliest, |from| to_db_time(micros_ceil(from))),
            to: time(query.window.to, latest()),
            // Capped at the latest instant (nothing stored is later): past
            // year 9999 the text SQLite compares would sort first.
            latest_activity: time(query.window.latest_activity(), latest()).min(latest()),
            cursor_at: time(after.map(|c| c.last_active_at), latest()),
            // Every id sorts before the cursor's at a later instant; at the
            // open cursor's instant (year 9999) there are no rows.
            cursor_id: after.map_or_else(String::new, |c| c.id.to_string()),
            limit: rows,
        }
    }
}

/// A page row: the session and its visitor's ids.
#[derive(QueryableByName)]
struct SummaryRow {
    #[diesel(embed)]
    session: SessionRow,
    #[diesel(sql_type = Text)]
    anonymous_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    external_id: Option<String>,
}

/// Runs a page's statement.
fn load_page(
    conn: &mut DbConnection,
    query: &ConversationQuery,
    bounds: &ListBounds,
) -> QueryResult<Vec<SummaryRow>> {
    let sql = conversation_list_sql(conn.backend(), query.votes, query.escalated);
    diesel::sql_query(sql)
        .bind::<Text, _>(&bounds.site)
        .bind::<Timestamp, _>(bounds.from)
        .bind::<Timestamp, _>(bounds.to)
        .bind::<Timestamp, _>(bounds.latest_activity)
        .bind::<Timestamp, _>(bounds.cursor_at)
        .bind::<Timestamp, _>(bounds.cursor_at)
        .bind::<Text, _>(&bounds.cursor_id)
        .bind::<BigInt, _>(bounds.limit)
        .load(conn)
}

impl ConversationRepository for Store {
    fn list_conversations(
        &self,
        site: SiteId,
        query: &ConversationQuery,
        page: &PageRequest<ConversationCursor>,
    ) -> Result<Page<ConversationSummary, ConversationCursor>, Error> {
        let bounds = ListBounds::new(site, query, page.after.as_ref(), overfetch(page.limit));
        let mut conn = self.conn()?;
        let rows = load_page(&mut conn, query, &bounds).map_err(StoreError::Query)?;
        let items = convert(rows, |row| {
            Ok(ConversationSummary {
                session: row.session.into_domain()?,
                anonymous_id: row.anonymous_id,
                external_id: row.external_id,
            })
        })?;
        Ok(Page::from_overfetch(items, page.limit, |s| {
            ConversationCursor::of(&s.session)
        }))
    }

    fn conversation_head(&self, site: SiteId, id: SessionId) -> Result<ConversationHead, Error> {
        let mut conn = self.conn()?;
        let found: Option<(SessionRow, EndUserRow)> = chat_sessions::table
            .inner_join(end_users::table)
            .filter(chat_sessions::id.eq(id.to_string()))
            .filter(chat_sessions::site_id.eq(site.to_string()))
            .select((SessionRow::as_select(), EndUserRow::as_select()))
            .first(&mut *conn)
            .optional()
            .map_err(StoreError::Query)?;
        let (session, end_user) = found.ok_or(Error::NotFound(Entity::Session))?;
        let session = session.into_domain()?;
        let ticket = match session.ticket_id {
            None => None,
            Some(ticket) => support_tickets::table
                .find(ticket.to_string())
                .select(support_tickets::status)
                .first::<String>(&mut *conn)
                .optional()
                .map_err(StoreError::Query)?
                .map(|status| {
                    read_enum::<TicketStatus>("support_tickets", "status", &status)
                        .map(|status| TicketLink { id: ticket, status })
                })
                .transpose()?,
        };
        let last_message: Option<String> = chat_messages::table
            .filter(chat_messages::session_id.eq(id.to_string()))
            .select(chat_messages::id)
            .order(chat_messages::id.desc())
            .first(&mut *conn)
            .optional()
            .map_err(StoreError::Query)?;
        let last_message = last_message
            .map(|m| {
                m.parse::<MessageId>()
                    .map_err(|_| StoreError::InvalidValue {
                        table: "chat_messages",
                        column: "id",
                        message: format!("{m:?} is not an id"),
                    })
            })
            .transpose()?;
        Ok(ConversationHead {
            session,
            end_user: end_user.into_domain()?,
            ticket,
            last_message,
        })
    }

    fn timeline_chunk(
        &self,
        site: SiteId,
        session: SessionId,
        after: Option<MessageId>,
        last: MessageId,
        limit: u32,
    ) -> Result<Vec<TimelineEntry>, Error> {
        let mut conn = self.conn()?;
        // Ids are UUID v7 text: ordering by id is ordering by creation.
        let mut query = chat_messages::table
            .left_join(chat_feedback::table)
            .filter(chat_messages::session_id.eq(session.to_string()))
            .filter(chat_messages::site_id.eq(site.to_string()))
            .filter(chat_messages::id.le(last.to_string()))
            .select((MessageRow::as_select(), chat_feedback::vote.nullable()))
            .order(chat_messages::id.asc())
            .limit(i64::from(limit))
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(chat_messages::id.gt(after.to_string()));
        }
        let rows: Vec<(MessageRow, Option<String>)> =
            query.load(&mut *conn).map_err(StoreError::Query)?;
        Ok(convert(rows, |(message, vote)| {
            Ok(TimelineEntry {
                message: message.into_domain()?,
                vote: vote.as_deref().map(read_vote).transpose()?,
            })
        })?)
    }
}
