//! The widget SDK's storage: the gate of a site key, visitors and their
//! sessions, questions and answers, votes.
//!
//! Reads are single statements. Each write is one short transaction
//! ([`write_transaction`]); on PostgreSQL (read committed) the rows a
//! decision depends on are either locked (`FOR SHARE` on the site whose key
//! is checked, `FOR NO KEY UPDATE` on the session a vote changes) or
//! decided by a conditional `UPDATE … WHERE <rule>`, which PostgreSQL
//! re-checks on the newest row version after waiting for a concurrent
//! writer, so concurrent callers cannot both pass a limit. SQLite write
//! transactions are serialised (`BEGIN IMMEDIATE`).

mod exchange;
mod session;
mod ticket;
mod vote;

use chatdesk_domain::content::{ContentItem, ContentStatus};
use chatdesk_domain::conversation::{TimelineEntry, Vote};
use chatdesk_domain::host::SiteDomain;
use chatdesk_domain::ids::{FeedbackId, MessageId, SessionId, SiteId};
use chatdesk_domain::ports::{
    AskContext, Exchange, ExchangeOutcome, GenerationOutcome, OpenSession, OpenTicket,
    OpenedSession, Page, PageRequest, VisitorRepository, VoteOutcome,
};
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::ticket::SupportTicket;
use chatdesk_domain::visitor::SiteGate;
use chatdesk_domain::Error;
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::{convert, overfetch, Failure};
use crate::connection::{write_transaction, DbConnection};
use crate::rows::{ContentRow, MessageRow, SessionRow, SiteRow, TenantRow, WidgetRow};
use crate::schema::{
    chat_feedback, chat_messages, chat_session_tokens, chat_sessions, chat_widgets, content_items,
    sites, tenants,
};
use crate::{Store, StoreError};

/// The tenant of site `site` when `key` is still the site's API key, else
/// [`Error::InvalidCredentials`]: a plain read in the writing transaction,
/// so a request that starts after a key regeneration has committed finds
/// the new key. (No row lock: a site's every question would otherwise
/// share-lock its row, which on PostgreSQL turns a busy site's row into a
/// multixact hot spot and makes each content-version bump wait.)
///
/// `SELECT tenant_id FROM sites WHERE id = $1 AND api_key_hash = $2`
pub(super) fn check_key(
    conn: &mut DbConnection,
    site: &str,
    key: &SecretHash,
) -> Result<String, Failure> {
    let tenant = sites::table
        .filter(sites::id.eq(site.to_string()))
        .filter(sites::api_key_hash.eq(key.to_hex()))
        .select(sites::tenant_id)
        .first::<String>(conn)
        .optional()?;
    tenant.ok_or(Failure::Domain(Error::InvalidCredentials))
}

/// Reads a session inside a write transaction, locking its row on
/// PostgreSQL (`FOR NO KEY UPDATE`, as [`crate::repo::lock_tenant`]), so
/// votes on its messages are serialised (each reads the vote it replaces
/// and moves the counters by the difference without losing another's), and
/// a ticket reads the votes and the first ticket of a settled session.
pub(super) fn lock_session(conn: &mut DbConnection, id: &str) -> QueryResult<Option<SessionRow>> {
    // `as_select()` is generic over the backend, so each arm builds its own.
    let query = chat_sessions::table.find(id.to_string());
    match conn {
        DbConnection::Pg(pg) => query
            .select(SessionRow::as_select())
            .for_no_key_update()
            .first(pg)
            .optional(),
        DbConnection::Sqlite(_) => query.select(SessionRow::as_select()).first(conn).optional(),
    }
}

/// Moves the last-seen time of the session's visitor on to `at` (never
/// back), in the transaction of their question or vote.
const VISITOR_SEEN: &str = "UPDATE end_users SET last_seen_at = \
     CASE WHEN last_seen_at > $1 THEN last_seen_at ELSE $1 END \
     WHERE id = (SELECT end_user_id FROM chat_sessions WHERE id = $2)";

fn visitor_seen(
    conn: &mut DbConnection,
    session: &str,
    at: chrono::NaiveDateTime,
) -> Result<(), Failure> {
    diesel::sql_query(dialect(conn, VISITOR_SEEN))
        .bind::<diesel::sql_types::Timestamp, _>(at)
        .bind::<diesel::sql_types::Text, _>(session)
        .execute(conn)?;
    Ok(())
}

/// `sql`, written with PostgreSQL's `$n` placeholders, in the connection's
/// dialect: SQLite numbers its placeholders `?n` (the same positions).
fn dialect(conn: &DbConnection, sql: &str) -> String {
    match conn {
        DbConnection::Pg(_) => sql.to_string(),
        DbConnection::Sqlite(_) => sql.replace('$', "?"),
    }
}

/// A stored vote.
pub(super) fn read_vote(value: &str) -> Result<Vote, StoreError> {
    value.parse::<Vote>().map_err(|e| StoreError::InvalidValue {
        table: "chat_feedback",
        column: "vote",
        message: format!("{value:?} {e}"),
    })
}

/// The hosts a site's domain must be for a browser on `host` to be on it:
/// `host` itself and each parent domain, longest first
/// (`a.b.example.com` → `a.b.example.com`, `b.example.com`,
/// `example.com`, `com`). Empty for an empty host.
fn host_and_parents(host: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = host;
    while !rest.is_empty() {
        out.push(rest.to_string());
        rest = match rest.split_once('.') {
            Some((_, parent)) => parent,
            None => "",
        };
    }
    out
}

impl VisitorRepository for Store {
    fn load_gate(&self, key: &SecretHash) -> Result<Option<SiteGate>, Error> {
        let mut conn = self.conn()?;
        // One statement: the site, its tenant and its widget as of one
        // snapshot.
        let row = sites::table
            .inner_join(tenants::table)
            .left_join(chat_widgets::table)
            .filter(sites::api_key_hash.eq(key.to_hex()))
            .select((
                SiteRow::as_select(),
                TenantRow::as_select(),
                Option::<WidgetRow>::as_select(),
            ))
            .first::<(SiteRow, TenantRow, Option<WidgetRow>)>(&mut *conn)
            .optional()
            .map_err(StoreError::Query)?;
        let Some((site, tenant, widget)) = row else {
            return Ok(None);
        };
        Ok(Some(SiteGate {
            site: site.into_domain()?,
            plan: tenant.into_domain()?.plan,
            widget: widget.map(WidgetRow::into_domain).transpose()?,
        }))
    }

    fn open_session(&self, request: &OpenSession) -> Result<OpenedSession, Error> {
        let mut conn = self.conn()?;
        Ok(write_transaction(&mut conn, |conn| {
            session::open_session(conn, request)
        })?)
    }

    fn find_session(
        &self,
        key: &SecretHash,
        token: &SecretHash,
    ) -> Result<Option<AskContext>, Error> {
        let mut conn = self.conn()?;
        let row = chat_session_tokens::table
            .inner_join(chat_sessions::table.inner_join(sites::table))
            .filter(chat_session_tokens::token_hash.eq(token.to_hex()))
            .filter(sites::api_key_hash.eq(key.to_hex()))
            .select((
                SessionRow::as_select(),
                sites::tenant_id,
                sites::content_version,
            ))
            .first::<(SessionRow, String, i64)>(&mut *conn)
            .optional()
            .map_err(StoreError::Query)?;
        let Some((session, tenant_id, content_version)) = row else {
            return Ok(None);
        };
        Ok(Some(AskContext {
            session: session.into_domain()?,
            tenant_id: uuid::Uuid::parse_str(&tenant_id)
                .map_err(|e| StoreError::InvalidValue {
                    table: "sites",
                    column: "tenant_id",
                    message: e.to_string(),
                })?
                .into(),
            content_version,
        }))
    }

    fn admits_origin_host(&self, host: &str) -> Result<bool, Error> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let candidates = host_and_parents(&host);
        if candidates.is_empty() {
            return Ok(false);
        }
        let mut conn = self.conn()?;
        // `domain IN (host, its parents)` is an index lookup per name
        // (sites_domain_idx); a parent only counts on a site that allows
        // subdomains.
        let rows: Vec<(String, bool)> = sites::table
            .filter(sites::domain.eq_any(&candidates))
            .filter(sites::domain.eq(&host).or(sites::allow_subdomains.eq(true)))
            .select((sites::domain, sites::allow_subdomains))
            .distinct()
            .load(&mut *conn)
            .map_err(StoreError::Query)?;
        Ok(rows.iter().any(|(domain, allow_subdomains)| {
            *domain == host
                || (*allow_subdomains
                    && SiteDomain::parse(domain).is_ok_and(|d| d.matches_host(&host, true)))
        }))
    }

    fn published_content(&self, site: SiteId) -> Result<Vec<ContentItem>, Error> {
        let mut conn = self.conn()?;
        let rows = content_items::table
            .filter(content_items::site_id.eq(site.to_string()))
            .filter(content_items::status.eq(ContentStatus::Published.as_str()))
            .select(ContentRow::as_select())
            .order(content_items::id.asc())
            .load(&mut *conn)
            .map_err(StoreError::Query)?;
        Ok(convert(rows, ContentRow::into_domain)?)
    }

    fn list_messages(
        &self,
        session: SessionId,
        page: &PageRequest<MessageId>,
    ) -> Result<Page<TimelineEntry, MessageId>, Error> {
        let mut conn = self.conn()?;
        // Ids are UUID v7 text: ordering by id is ordering by creation.
        let mut query = chat_messages::table
            .left_join(chat_feedback::table)
            .filter(chat_messages::session_id.eq(session.to_string()))
            .select((MessageRow::as_select(), chat_feedback::vote.nullable()))
            .order(chat_messages::id.asc())
            .limit(overfetch(page.limit))
            .into_boxed();
        if let Some(after) = page.after {
            query = query.filter(chat_messages::id.gt(after.to_string()));
        }
        let rows: Vec<(MessageRow, Option<String>)> =
            query.load(&mut *conn).map_err(StoreError::Query)?;
        let entries = convert(rows, |(message, vote)| {
            Ok(TimelineEntry {
                message: message.into_domain()?,
                vote: vote.as_deref().map(read_vote).transpose()?,
            })
        })?;
        Ok(Page::from_overfetch(entries, page.limit, |e| e.message.id))
    }

    fn record_exchange(&self, exchange: &Exchange) -> Result<ExchangeOutcome, Error> {
        let mut conn = self.conn()?;
        Ok(write_transaction(&mut conn, |conn| {
            exchange::record_exchange(conn, exchange)
        })?)
    }

    fn finish_generation(&self, outcome: &GenerationOutcome) -> Result<(), Error> {
        let mut conn = self.conn()?;
        Ok(write_transaction(&mut conn, |conn| {
            exchange::finish_generation(conn, outcome)
        })?)
    }

    fn vote(
        &self,
        session: SessionId,
        message: MessageId,
        vote: Vote,
        new_feedback_id: FeedbackId,
        now: DateTime<Utc>,
    ) -> Result<VoteOutcome, Error> {
        let mut conn = self.conn()?;
        Ok(write_transaction(&mut conn, |conn| {
            vote::vote(conn, session, message, vote, new_feedback_id, now)
        })?)
    }

    fn open_ticket(&self, request: &OpenTicket) -> Result<SupportTicket, Error> {
        let mut conn = self.conn()?;
        Ok(write_transaction(&mut conn, |conn| {
            ticket::open_ticket(conn, request)
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::host_and_parents;

    #[test]
    fn a_host_and_its_parent_domains() {
        let table: [(&str, &[&str]); 4] = [
            (
                "a.b.example.com",
                &["a.b.example.com", "b.example.com", "example.com", "com"],
            ),
            ("example.com", &["example.com", "com"]),
            ("localhost", &["localhost"]),
            ("", &[]),
        ];
        for (host, expected) in table {
            assert_eq!(host_and_parents(host), expected, "{host}");
        }
    }
}
