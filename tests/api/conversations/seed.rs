//! Rows written straight into the test's database, for what the API
//! cannot make (or not at a chosen time): a session's time span, support
//! tickets, and bulk messages. Each write keeps the tables as the server
//! would leave them (a session's `ticket_id` is its first ticket, its
//! `message_count` and `last_active_at` follow its messages).

use chatdesk_store::schema::{chat_messages, chat_sessions, support_tickets};
use chatdesk_store::DbConnection;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::helpers::TestApp;

/// A connection to the test server's database.
pub(crate) struct Db(DbConnection);

/// One message row to insert.
type MessageRow = (
    String,
    String,
    String,
    &'static str,
    &'static str,
    String,
    Option<&'static str>,
    Option<String>,
    Option<String>,
    Option<i32>,
    NaiveDateTime,
);

impl Db {
    pub(crate) fn open(app: &TestApp) -> Db {
        Db(chatdesk_store::connect(&app.config.database_url).expect("the test database"))
    }

    /// Moves a session to `[started, last_active]`; its messages move by
    /// the same shift as its start (never past `last_active`), so the
    /// timeline stays inside the session.
    pub(crate) fn set_span(
        &mut self,
        session: &str,
        started: DateTime<Utc>,
        last_active: DateTime<Utc>,
    ) {
        assert!(started <= last_active, "{started} .. {last_active}");
        let conn = &mut self.0;
        let old: NaiveDateTime = chat_sessions::table
            .find(session)
            .select(chat_sessions::started_at)
            .first(conn)
            .expect("the session's row");
        let shift = started.naive_utc() - old;
        let messages: Vec<(String, NaiveDateTime)> = chat_messages::table
            .filter(chat_messages::session_id.eq(session))
            .select((chat_messages::id, chat_messages::created_at))
            .load(conn)
            .expect("the session's messages");
        for (id, created) in messages {
            let moved = (created + shift)
                .min(last_active.naive_utc())
                .max(started.naive_utc());
            diesel::update(chat_messages::table.find(&id))
                .set(chat_messages::created_at.eq(moved))
                .execute(conn)
                .expect("move a message");
        }
        let changed = diesel::update(chat_sessions::table.find(session))
            .set((
                chat_sessions::started_at.eq(started.naive_utc()),
                chat_sessions::last_active_at.eq(last_active.naive_utc()),
            ))
            .execute(conn)
            .expect("move the session");
        assert_eq!(changed, 1);
    }

    /// Adds a support ticket opened from a session at `at` with `status`
    /// (OPEN or IN_PROGRESS), as ticket creation does: the session's
    /// `ticket_id` becomes the ticket unless it already names one (its
    /// first). Returns the ticket's id.
    pub(crate) fn add_ticket(
        &mut self,
        tenant: &str,
        site: &str,
        session: &str,
        at: DateTime<Utc>,
        status: &str,
    ) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        let conn = &mut self.0;
        diesel::insert_into(support_tickets::table)
            .values((
                support_tickets::id.eq(&id),
                support_tickets::tenant_id.eq(tenant),
                support_tickets::site_id.eq(site),
                support_tickets::session_id.eq(session),
                support_tickets::email.eq("visitor@example.com"),
                support_tickets::subject.eq("The export does not work"),
                support_tickets::body.eq("I followed the guide and got nothing."),
                support_tickets::conversation.eq("[]"),
                support_tickets::status.eq(status),
                support_tickets::created_at.eq(at.naive_utc()),
                support_tickets::updated_at.eq(at.naive_utc()),
            ))
            .execute(conn)
            .expect("insert a ticket");
        diesel::update(
            chat_sessions::table
                .find(session)
                .filter(chat_sessions::ticket_id.is_null()),
        )
        .set(chat_sessions::ticket_id.eq(Some(&id)))
        .execute(conn)
        .expect("link the first ticket");
        id
    }

    /// Appends `n` messages to a session after its last one, alternating a
    /// visitor's question and a MATCHED_CONTENT answer pointing at the
    /// Flow `(flow_id, flow_name)`, a microsecond apart from `after` on;
    /// the session's `message_count` and `last_active_at` follow. Returns
    /// the new ids in timeline order (their UUIDs sort in that order too).
    pub(crate) fn append_messages(
        &mut self,
        site: &str,
        session: &str,
        n: usize,
        after: DateTime<Utc>,
        flow: (&str, &str),
    ) -> Vec<String> {
        let mut ids: Vec<String> = (0..n).map(|_| uuid::Uuid::now_v7().to_string()).collect();
        ids.sort();
        let rows: Vec<MessageRow> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let at = (after + Duration::microseconds(i as i64 + 1)).naive_utc();
                if i % 2 == 0 {
                    (
                        id.clone(),
                        site.to_string(),
                        session.to_string(),
                        "USER",
                        "COMPLETED",
                        format!("Question {i}: how do I export invoices?"),
                        None,
                        None,
                        None,
                        None,
                        at,
                    )
                } else {
                    (
                        id.clone(),
                        site.to_string(),
                        session.to_string(),
                        "ASSISTANT",
                        "MATCHED_CONTENT",
                        format!("Answer {i}: follow the guide \"{}\".", flow.1),
                        Some("FLOW"),
                        Some(flow.0.to_string()),
                        Some(flow.1.to_string()),
                        Some(0),
                        at,
                    )
                }
            })
            .collect();
        let conn = &mut self.0;
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            for chunk in rows.chunks(500) {
                let values: Vec<_> = chunk
                    .iter()
                    .map(|r| {
                        (
                            chat_messages::id.eq(r.0.clone()),
                            chat_messages::site_id.eq(r.1.clone()),
                            chat_messages::session_id.eq(r.2.clone()),
                            chat_messages::role.eq(r.3),
                            chat_messages::status.eq(r.4),
                            chat_messages::content.eq(r.5.clone()),
                            chat_messages::content_kind.eq(r.6),
                            chat_messages::content_id.eq(r.7.clone()),
                            chat_messages::content_name.eq(r.8.clone()),
                            chat_messages::tokens_used.eq(r.9),
                            chat_messages::created_at.eq(r.10),
                        )
                    })
                    .collect();
                match conn {
                    DbConnection::Pg(pg) => {
                        diesel::insert_into(chat_messages::table)
                            .values(&values)
                            .execute(pg)?;
                    }
                    DbConnection::Sqlite(lite) => {
                        diesel::insert_into(chat_messages::table)
                            .values(&values)
                            .execute(lite)?;
                    }
                }
            }
            let last = rows.last().map(|r| r.10);
            let count = i32::try_from(n).unwrap_or(i32::MAX);
            if let Some(last) = last {
                diesel::update(chat_sessions::table.find(session))
                    .set((
                        chat_sessions::message_count.eq(chat_sessions::message_count + count),
                        chat_sessions::last_active_at.eq(last),
                    ))
                    .execute(conn)?;
            }
            Ok(())
        })
        .expect("insert the messages");
        ids
    }
}
