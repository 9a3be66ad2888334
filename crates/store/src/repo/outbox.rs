//! The email outbox for the delivery worker: claims of due emails under a
//! lease, and the outcome of each attempt, recorded only while the lease
//! holds (see the migration's description of `email_outbox`).

use chatdesk_domain::ports::{AttemptOutcome, ClaimedEmail, OutboxRepository};
use chatdesk_domain::ticket::{ConversationSnapshot, DeliveryStatus, TicketEmail};
use chatdesk_domain::Error;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text, Timestamp};
use uuid::Uuid;

use super::Failure;
use crate::connection::{write_transaction, Backend, DbConnection};
use crate::rows::{as_stored, from_db_time, read_email, read_id, read_u32, to_db_time, TicketRow};
use crate::schema::{email_outbox, sites, support_tickets};
use crate::{Store, StoreError};

/// Claims due rows: leases them and counts the attempt, returning what
/// sending needs. `{lock}` is `FOR UPDATE SKIP LOCKED` on PostgreSQL
/// (rows another worker is claiming are passed over, not waited for) and
/// nothing on SQLite, whose write transactions are serialised.
const CLAIM: &str = "UPDATE email_outbox \
     SET locked_until = $1, attempts = attempts + 1, updated_at = $2 \
     WHERE id IN (SELECT id FROM email_outbox \
                  WHERE status = 'PENDING' AND next_attempt_at <= $2 \
                    AND (locked_until IS NULL OR locked_until < $2) \
                  ORDER BY next_attempt_at, id LIMIT $3 {lock}) \
     RETURNING id, ticket_id, recipient, message_id, attempts, next_attempt_at";

#[derive(QueryableByName)]
struct ClaimedRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    ticket_id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    recipient: Option<String>,
    #[diesel(sql_type = Text)]
    message_id: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<Timestamp>)]
    next_attempt_at: Option<NaiveDateTime>,
}

fn claim_sql(backend: Backend) -> String {
    match backend {
        Backend::Postgres => CLAIM.replace("{lock}", "FOR UPDATE SKIP LOCKED"),
        Backend::Sqlite => CLAIM.replace("{lock}", "").replace('$', "?"),
    }
}

/// What a claimed row's email says: its ticket and site.
fn content(conn: &mut DbConnection, ticket: &str) -> Result<TicketEmail, Failure> {
    let (ticket, site_name, site_domain): (TicketRow, String, String) = support_tickets::table
        .inner_join(sites::table.on(sites::id.eq(support_tickets::site_id)))
        .filter(support_tickets::id.eq(ticket))
        .select((TicketRow::as_select(), sites::name, sites::domain))
        .first(conn)?;
    const T: &str = "support_tickets";
    let conversation: ConversationSnapshot =
        serde_json::from_str(&ticket.conversation).map_err(|e| StoreError::InvalidValue {
            table: T,
            column: "conversation",
            message: format!("is not a conversation snapshot: {e}"),
        })?;
    Ok(TicketEmail {
        ticket_id: read_id(T, "id", &ticket.id)?,
        site_name,
        site_domain,
        visitor_email: read_email(T, "email", &ticket.email)?,
        subject: ticket.subject,
        body: ticket.body,
        created_at: from_db_time(ticket.created_at),
        conversation,
    })
}

impl OutboxRepository for Store {
    fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ClaimedEmail>, Error> {
        let (now, lease) = (to_db_time(now), to_db_time(lease));
        let mut conn = self.conn()?;
        Ok(write_transaction(&mut conn, |conn| {
            let mut rows: Vec<ClaimedRow> = diesel::sql_query(claim_sql(conn.backend()))
                .bind::<Timestamp, _>(lease)
                .bind::<Timestamp, _>(now)
                .bind::<BigInt, _>(i64::from(limit))
                .load(conn)?;
            // RETURNING gives the rows in the order the update reached
            // them: the batch is sent oldest due first.
            rows.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
            rows.into_iter()
                .map(|row| claimed(conn, row, lease))
                .collect::<Result<Vec<_>, Failure>>()
        })?)
    }

    fn record_attempt(
        &self,
        delivery_id: Uuid,
        lease: DateTime<Utc>,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let now = to_db_time(as_stored(now));
        let (status, next, error, sent): (_, Option<NaiveDateTime>, Option<&str>, _) = match outcome
        {
            AttemptOutcome::Sent => (DeliveryStatus::Sent, None, None, Some(now)),
            AttemptOutcome::LoggedOnly => (DeliveryStatus::LogOnly, None, None, None),
            AttemptOutcome::RetryAt { at, error } => (
                DeliveryStatus::Pending,
                Some(to_db_time(*at)),
                Some(error.as_str()),
                None,
            ),
            AttemptOutcome::Failed { error } => {
                (DeliveryStatus::Failed, None, Some(error.as_str()), None)
            }
        };
        let mut conn = self.conn()?;
        let recorded = diesel::update(
            email_outbox::table
                .find(delivery_id.to_string())
                .filter(email_outbox::status.eq(DeliveryStatus::Pending.as_str()))
                .filter(email_outbox::locked_until.eq(to_db_time(lease))),
        )
        .set((
            email_outbox::status.eq(status.as_str()),
            email_outbox::next_attempt_at.eq(next),
            email_outbox::locked_until.eq(None::<NaiveDateTime>),
            email_outbox::last_error.eq(error),
            email_outbox::sent_at.eq(sent),
            email_outbox::updated_at.eq(now),
        ))
        .execute(&mut *conn)
        .map_err(StoreError::Query)?;
        Ok(recorded == 1)
    }
}

fn claimed(
    conn: &mut DbConnection,
    row: ClaimedRow,
    lease: NaiveDateTime,
) -> Result<ClaimedEmail, Failure> {
    const T: &str = "email_outbox";
    let recipient = row
        .recipient
        .as_deref()
        .ok_or_else(|| StoreError::InvalidValue {
            table: T,
            column: "recipient",
            message: "a PENDING email has no recipient".into(),
        })?;
    Ok(ClaimedEmail {
        delivery_id: read_id(T, "id", &row.id)?,
        lease: from_db_time(lease),
        attempt: read_u32(T, "attempts", row.attempts)?,
        recipient: read_email(T, "recipient", recipient)?,
        message_id: row.message_id,
        content: content(conn, &row.ticket_id)?,
    })
}
