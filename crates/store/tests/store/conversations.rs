//! The schema of conversations, tickets and the email outbox: one current
//! session per widget and visitor, one outbox row per ticket, cascades
//! from a site, and the list queries' indexes. These tables have no
//! repository yet, so rows are written through diesel directly.

use std::sync::{Arc, Barrier};

use chatdesk_domain::ports::{SiteRepository, WidgetRepository};
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::site::Site;
use chatdesk_domain::tenant::Tenant;
use chatdesk_domain::testing::builders::{a_widget, t0};
use chatdesk_domain::version::Precondition;
use chatdesk_domain::widget::NamedSettings;
use chatdesk_store::schema::*;
use chatdesk_store::{connect, DbConnection, Store};
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::Text;
use uuid::Uuid;

use crate::helpers::{stored_site, stores, tenant_and_site};

fn id() -> String {
    Uuid::now_v7().to_string()
}

fn at(minutes: i64) -> NaiveDateTime {
    (t0() + Duration::minutes(minutes)).naive_utc()
}

/// The ids of a site's rows the tests build on.
struct Ids {
    tenant: String,
    site: String,
    widget: String,
}

/// A stored widget of `site`.
fn widget_of(store: &Store, tenant: &Tenant, site: &Site) -> Ids {
    let widget = a_widget().site_id(site.id).build();
    store
        .save_widget_settings(tenant.id, &widget, &NamedSettings::ALL, &Precondition::None)
        .expect("stores the widget");
    Ids {
        tenant: tenant.id.to_string(),
        site: site.id.to_string(),
        widget: widget.id.to_string(),
    }
}

fn visitor(conn: &mut DbConnection, ids: &Ids, anonymous_id: &str) -> String {
    let user = id();
    diesel::insert_into(end_users::table)
        .values((
            end_users::id.eq(&user),
            end_users::site_id.eq(&ids.site),
            end_users::anonymous_id.eq(anonymous_id),
            end_users::first_seen_at.eq(at(0)),
            end_users::last_seen_at.eq(at(0)),
        ))
        .execute(conn)
        .expect("stores the visitor");
    user
}

/// Inserts a session of `user` with the widget, current unless `ended_at`.
fn session(
    conn: &mut DbConnection,
    ids: &Ids,
    user: &str,
    ended_at: Option<NaiveDateTime>,
) -> QueryResult<String> {
    let session = id();
    diesel::insert_into(chat_sessions::table)
        .values((
            chat_sessions::id.eq(&session),
            chat_sessions::site_id.eq(&ids.site),
            chat_sessions::widget_id.eq(&ids.widget),
            chat_sessions::end_user_id.eq(user),
            chat_sessions::token_hash.eq(SecretHash::of(&session).to_hex()),
            chat_sessions::started_at.eq(at(0)),
            chat_sessions::last_active_at.eq(at(1)),
            chat_sessions::ended_at.eq(ended_at),
        ))
        .execute(conn)
        .map(|_| session)
}

/// The visitor's current session with the widget.
fn current_session(conn: &mut DbConnection, ids: &Ids, user: &str) -> Option<String> {
    chat_sessions::table
        .filter(chat_sessions::widget_id.eq(&ids.widget))
        .filter(chat_sessions::end_user_id.eq(user))
        .filter(chat_sessions::ended_at.is_null())
        .select(chat_sessions::id)
        .get_result(conn)
        .optional()
        .expect("reads the current session")
}

/// Opens a ticket from `session` (its first one becomes the session's
/// ticket, i.e. escalates it).
fn ticket(conn: &mut DbConnection, ids: &Ids, session: &str, created_at: NaiveDateTime) -> String {
    let ticket = id();
    diesel::insert_into(support_tickets::table)
        .values((
            support_tickets::id.eq(&ticket),
            support_tickets::tenant_id.eq(&ids.tenant),
            support_tickets::site_id.eq(&ids.site),
            support_tickets::session_id.eq(session),
            support_tickets::email.eq("visitor@example.com"),
            support_tickets::subject.eq("Help"),
            support_tickets::body.eq("It does not work"),
            support_tickets::conversation.eq("[]"),
            support_tickets::status.eq("OPEN"),
            support_tickets::created_at.eq(created_at),
            support_tickets::updated_at.eq(created_at),
        ))
        .execute(conn)
        .expect("stores the ticket");
    diesel::update(
        chat_sessions::table
            .find(session)
            .filter(chat_sessions::ticket_id.is_null()),
    )
    .set(chat_sessions::ticket_id.eq(&ticket))
    .execute(conn)
    .expect("escalates the session");
    ticket
}

/// Queues the email of `ticket` as PENDING with `message_id`.
fn outbox(
    conn: &mut DbConnection,
    ids: &Ids,
    ticket: &str,
    message_id: &str,
) -> QueryResult<String> {
    let row = id();
    diesel::insert_into(email_outbox::table)
        .values((
            email_outbox::id.eq(&row),
            email_outbox::ticket_id.eq(ticket),
            email_outbox::site_id.eq(&ids.site),
            email_outbox::tenant_id.eq(&ids.tenant),
            email_outbox::status.eq("PENDING"),
            email_outbox::recipient.eq("help@example.com"),
            email_outbox::message_id.eq(message_id),
            email_outbox::next_attempt_at.eq(at(0)),
            email_outbox::created_at.eq(at(0)),
            email_outbox::updated_at.eq(at(0)),
        ))
        .execute(conn)
        .map(|_| row)
}

fn is_unique_violation<T: std::fmt::Debug>(result: &QueryResult<T>) -> bool {
    matches!(
        result,
        Err(DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            _
        ))
    )
}

#[test]
fn one_current_session_per_widget_and_visitor() {
    for t in stores() {
        let (tenant, site) = tenant_and_site(&t);
        let ids = widget_of(&t, &tenant, &site);
        let mut conn = connect(t.url()).expect("connects");
        let ada = visitor(&mut conn, &ids, "anon-ada");
        let bob = visitor(&mut conn, &ids, "anon-bob");

        let first = session(&mut conn, &ids, &ada, None).expect("a first current session");
        let second = session(&mut conn, &ids, &ada, None);
        assert!(
            is_unique_violation(&second),
            "{}: a second current session is refused: {second:?}",
            t.name()
        );
        session(&mut conn, &ids, &bob, None).expect("another visitor has their own");
        session(&mut conn, &ids, &ada, Some(at(5))).expect("ended sessions do not count");

        // Ending the current session makes room for a new current one.
        diesel::update(chat_sessions::table.find(&first))
            .set(chat_sessions::ended_at.eq(Some(at(5))))
            .execute(&mut conn)
            .expect("ends the session");
        let next = session(&mut conn, &ids, &ada, None).expect("a new current session");
        assert_eq!(current_session(&mut conn, &ids, &ada), Some(next));
        assert!(is_unique_violation(&session(&mut conn, &ids, &ada, None)));
        let ada_sessions: i64 = chat_sessions::table
            .filter(chat_sessions::end_user_id.eq(&ada))
            .count()
            .get_result(&mut conn)
            .expect("counts");
        assert_eq!(ada_sessions, 3, "{}: two ended, one current", t.name());

        // An ended session cannot end before it started.
        let backwards = diesel::update(chat_sessions::table.find(&first))
            .set(chat_sessions::ended_at.eq(Some(at(-5))))
            .execute(&mut conn);
        assert!(backwards.is_err(), "{}", t.name());
    }
}

#[test]
fn concurrent_session_creation_returns_the_same_session() {
    const VISITS: usize = 8;
    for t in stores() {
        let (tenant, site) = tenant_and_site(&t);
        let ids = Arc::new(widget_of(&t, &tenant, &site));
        let user: Arc<str> = {
            let mut conn = connect(t.url()).expect("connects");
            visitor(&mut conn, &ids, "anon-racer").into()
        };
        let url: Arc<str> = t.url().into();
        let start = Arc::new(Barrier::new(VISITS));
        let handles: Vec<_> = (0..VISITS)
            .map(|_| {
                let (ids, user, url, start) = (
                    Arc::clone(&ids),
                    Arc::clone(&user),
                    Arc::clone(&url),
                    Arc::clone(&start),
                );
                std::thread::spawn(move || {
                    let mut conn = connect(&url).expect("connects");
                    let mine = id();
                    start.wait();
                    // What session creation does: insert, and on a
                    // conflict with the current session read that one.
                    // (diesel's MultiBackend has no ON CONFLICT: one
                    // statement per backend.)
                    let row = (
                        chat_sessions::id.eq(&mine),
                        chat_sessions::site_id.eq(&ids.site),
                        chat_sessions::widget_id.eq(&ids.widget),
                        chat_sessions::end_user_id.eq(&*user),
                        chat_sessions::token_hash.eq(SecretHash::of(&mine).to_hex()),
                        chat_sessions::started_at.eq(at(0)),
                        chat_sessions::last_active_at.eq(at(0)),
                    );
                    let insert = diesel::insert_into(chat_sessions::table)
                        .values(row)
                        .on_conflict_do_nothing();
                    let inserted = match &mut conn {
                        DbConnection::Pg(pg) => insert.execute(pg),
                        DbConnection::Sqlite(sqlite) => insert.execute(sqlite),
                    }
                    .expect("inserts or does nothing");
                    let current = current_session(&mut conn, &ids, &user);
                    (inserted, mine, current)
                })
            })
            .collect();
        let outcomes: Vec<(usize, String, Option<String>)> = handles
            .into_iter()
            .map(|h| h.join().expect("joins"))
            .collect();
        let winners: Vec<&String> = outcomes
            .iter()
            .filter(|(inserted, _, _)| *inserted == 1)
            .map(|(_, mine, _)| mine)
            .collect();
        assert_eq!(winners.len(), 1, "{}: {outcomes:?}", t.name());
        for (_, _, current) in &outcomes {
            assert_eq!(current.as_ref(), Some(winners[0]), "{}", t.name());
        }
    }
}

#[test]
fn the_outbox_holds_one_email_per_ticket_with_a_unique_message_id() {
    for t in stores() {
        let (tenant, site) = tenant_and_site(&t);
        let ids = widget_of(&t, &tenant, &site);
        let mut conn = connect(t.url()).expect("connects");
        let user = visitor(&mut conn, &ids, "anon-1");
        let session = session(&mut conn, &ids, &user, None).expect("session");
        let first = ticket(&mut conn, &ids, &session, at(1));
        let second = ticket(&mut conn, &ids, &session, at(2));

        outbox(&mut conn, &ids, &first, "first@chatdesk").expect("queues the first email");
        let again = outbox(&mut conn, &ids, &first, "other@chatdesk");
        assert!(
            is_unique_violation(&again),
            "{}: one email per ticket: {again:?}",
            t.name()
        );
        let reused = outbox(&mut conn, &ids, &second, "first@chatdesk");
        assert!(
            is_unique_violation(&reused),
            "{}: Message-IDs are unique: {reused:?}",
            t.name()
        );
        outbox(&mut conn, &ids, &second, "second@chatdesk").expect("queues the second email");

        // The session's ticket is its first one: that is "escalated".
        let linked: Option<String> = chat_sessions::table
            .find(&session)
            .select(chat_sessions::ticket_id)
            .get_result(&mut conn)
            .expect("reads");
        assert_eq!(linked, Some(first.clone()), "{}", t.name());

        // The outbox's own rules.
        let set = |conn: &mut DbConnection, sql: &str| {
            diesel::sql_query(format!(
                "UPDATE email_outbox SET {sql} WHERE ticket_id = '{first}'"
            ))
            .execute(conn)
        };
        for refused in [
            "status = 'BOUNCED'",
            "attempts = -1",
            // PENDING rows are always due at some time; final rows never.
            "next_attempt_at = NULL",
            "status = 'FAILED'",
            // SENT exactly when sent_at is stamped.
            "status = 'SENT', next_attempt_at = NULL",
            "sent_at = next_attempt_at",
            "status = 'NO_RECIPIENT', next_attempt_at = NULL",
        ] {
            assert!(
                set(&mut conn, refused).is_err(),
                "{}: {refused} is refused",
                t.name()
            );
        }
        for allowed in [
            "attempts = 1, locked_until = next_attempt_at, last_error = 'timed out'",
            "status = 'SENT', next_attempt_at = NULL, locked_until = NULL, sent_at = updated_at",
        ] {
            assert_eq!(
                set(&mut conn, allowed).expect("allowed"),
                1,
                "{}: {allowed}",
                t.name()
            );
        }
    }
}

/// Rows of `site` in the tables below it: visitors, sessions, tickets, outbox.
fn rows_of(conn: &mut DbConnection, site: &str) -> [i64; 4] {
    [
        end_users::table
            .filter(end_users::site_id.eq(site))
            .count()
            .get_result(conn),
        chat_sessions::table
            .filter(chat_sessions::site_id.eq(site))
            .count()
            .get_result(conn),
        support_tickets::table
            .filter(support_tickets::site_id.eq(site))
            .count()
            .get_result(conn),
        email_outbox::table
            .filter(email_outbox::site_id.eq(site))
            .count()
            .get_result(conn),
    ]
    .map(|count| count.expect("counts"))
}

#[test]
fn deleting_a_site_removes_its_sessions_tickets_and_outbox_rows() {
    for t in stores() {
        let (tenant, site) = tenant_and_site(&t);
        let keep = stored_site(&t, tenant.id, "keep.example.com");
        let mut conn = connect(t.url()).expect("connects");
        for s in [&site, &keep] {
            let ids = widget_of(&t, &tenant, s);
            let user = visitor(&mut conn, &ids, "anon-1");
            session(&mut conn, &ids, &user, Some(at(1))).expect("an ended session");
            let current = session(&mut conn, &ids, &user, None).expect("the current session");
            let ticket = ticket(&mut conn, &ids, &current, at(2));
            outbox(&mut conn, &ids, &ticket, &format!("{ticket}@chatdesk")).expect("outbox");
        }
        let (site_id, keep_id) = (site.id.to_string(), keep.id.to_string());
        assert_eq!(rows_of(&mut conn, &site_id), [1, 2, 1, 1], "{}", t.name());

        t.delete_site(tenant.id, site.id).expect("deletes the site");
        assert_eq!(rows_of(&mut conn, &site_id), [0; 4], "{}", t.name());
        assert_eq!(
            rows_of(&mut conn, &keep_id),
            [1, 2, 1, 1],
            "{}: the other site keeps its rows",
            t.name()
        );
    }
}

#[test]
fn deleting_a_ticket_removes_its_email_and_unescalates_its_session() {
    for t in stores() {
        let (tenant, site) = tenant_and_site(&t);
        let ids = widget_of(&t, &tenant, &site);
        let mut conn = connect(t.url()).expect("connects");
        let user = visitor(&mut conn, &ids, "anon-1");
        let session = session(&mut conn, &ids, &user, None).expect("session");
        let ticket = ticket(&mut conn, &ids, &session, at(1));
        outbox(&mut conn, &ids, &ticket, "m@chatdesk").expect("outbox");

        diesel::delete(support_tickets::table.find(&ticket))
            .execute(&mut conn)
            .expect("deletes the ticket");
        let linked: Option<String> = chat_sessions::table
            .find(&session)
            .select(chat_sessions::ticket_id)
            .get_result(&mut conn)
            .expect("the session stays");
        assert_eq!(linked, None, "{}: no longer escalated", t.name());
        assert_eq!(rows_of(&mut conn, &ids.site), [1, 1, 0, 0], "{}", t.name());
    }
}

/// The query plan of `query`: PostgreSQL's EXPLAIN, or SQLite's EXPLAIN
/// QUERY PLAN, one line per node.
fn plan_of(conn: &mut DbConnection, query: &str) -> String {
    #[derive(QueryableByName)]
    struct PgLine {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        line: String,
    }
    #[derive(QueryableByName)]
    struct SqliteLine {
        #[diesel(sql_type = Text)]
        detail: String,
    }
    let lines: Vec<String> = match conn {
        DbConnection::Pg(pg) => diesel::sql_query(format!("EXPLAIN {query}"))
            .load::<PgLine>(pg)
            .expect("explains")
            .into_iter()
            .map(|l| l.line)
            .collect(),
        DbConnection::Sqlite(sqlite) => diesel::sql_query(format!("EXPLAIN QUERY PLAN {query}"))
            .load::<SqliteLine>(sqlite)
            .expect("explains")
            .into_iter()
            .map(|l| l.detail)
            .collect(),
    };
    lines.join("\n")
}

/// A site with sessions of every kind (voted up, down, both, not at all;
/// escalated or not) and tickets of every status, next to another site.
fn seeded_site(t: &Store, tenant: &Tenant, site: &Site, conn: &mut DbConnection) -> Ids {
    let ids = widget_of(t, tenant, site);
    conn.transaction(|conn| {
        for i in 0..240_i64 {
            let user = visitor(conn, &ids, &format!("anon-{i}"));
            let session = session(conn, &ids, &user, None)?;
            let (up, down) = [(1, 0), (0, 2), (3, 1), (0, 0)][(i % 4) as usize];
            diesel::update(chat_sessions::table.find(&session))
                .set((
                    chat_sessions::up_votes.eq(up),
                    chat_sessions::down_votes.eq(down),
                    chat_sessions::last_active_at.eq(at(i)),
                ))
                .execute(conn)?;
            if i % 3 == 0 {
                let ticket = ticket(conn, &ids, &session, at(i));
                let status = ["OPEN", "IN_PROGRESS"][(i % 2) as usize];
                diesel::update(support_tickets::table.find(&ticket))
                    .set(support_tickets::status.eq(status))
                    .execute(conn)?;
                outbox(conn, &ids, &ticket, &format!("{ticket}@chatdesk"))?;
            }
        }
        QueryResult::Ok(())
    })
    .expect("seeds the site");
    ids
}

#[test]
fn conversation_filters_and_the_ticket_list_use_their_indexes() {
    for t in stores() {
        let (tenant, site) = tenant_and_site(&t);
        let other = stored_site(&t, tenant.id, "other.example.com");
        let mut conn = connect(t.url()).expect("connects");
        let ids = seeded_site(&t, &tenant, &site, &mut conn);
        seeded_site(&t, &tenant, &other, &mut conn);
        let postgres = matches!(conn, DbConnection::Pg(_));
        if postgres {
            // Fresh statistics and visibility map (index-only scans), and
            // no sequential scan unless nothing else can answer.
            diesel::sql_query("VACUUM ANALYZE chat_sessions")
                .execute(&mut conn)
                .expect("vacuums");
            diesel::sql_query("ANALYZE support_tickets")
                .execute(&mut conn)
                .expect("analyzes");
            diesel::sql_query("SET enable_seqscan = off")
                .execute(&mut conn)
                .expect("sets");
        } else {
            diesel::sql_query("ANALYZE")
                .execute(&mut conn)
                .expect("analyzes");
        }
        let site_id = &ids.site;
        let window = format!(
            "AND started_at <= '{}' AND last_active_at >= '{}'",
            at(300),
            at(-300)
        );
        let cursor = format!("AND (last_active_at, id) < ('{}', '{}')", at(100), id());

        // The Conversations list, as the migration's comment writes it.
        let filters = [
            ("", "chat_sessions_site_recent_idx"),
            (
                "AND ticket_id IS NOT NULL",
                "chat_sessions_site_escalated_recent_idx",
            ),
            (
                "AND ticket_id IS NULL",
                "chat_sessions_site_not_escalated_recent_idx",
            ),
            (
                "AND (up_votes > 0 OR down_votes > 0)",
                "chat_sessions_site_voted_recent_idx",
            ),
            (
                "AND up_votes > 0 AND down_votes = 0",
                "chat_sessions_site_up_only_recent_idx",
            ),
            (
                "AND up_votes = 0 AND down_votes > 0",
                "chat_sessions_site_down_only_recent_idx",
            ),
            (
                "AND up_votes = 0 AND down_votes = 0",
                "chat_sessions_site_unvoted_recent_idx",
            ),
        ];
        for (filter, index) in filters {
            for extra in ["", &window, &cursor, &format!("{window} {cursor}")] {
                let query = format!(
                    "SELECT id FROM chat_sessions WHERE site_id = '{site_id}' {filter} {extra} \
                     ORDER BY last_active_at DESC, id DESC LIMIT 26"
                );
                let plan = plan_of(&mut conn, &query);
                let expected = if postgres {
                    format!("Index Only Scan using {index}")
                } else {
                    format!("INDEX {index}")
                };
                assert!(
                    plan.contains(&expected),
                    "{}: {query}\nuses {index}:\n{plan}",
                    t.name()
                );
                assert!(
                    !plan.contains("Seq Scan")
                        && !plan.contains("Sort")
                        && !plan.contains("TEMP B-TREE"),
                    "{}: {query}\nneither scans nor sorts the table:\n{plan}",
                    t.name()
                );
            }
        }

        // The Tickets tab, with and without ?status=, first and next pages.
        let tickets = [
            (
                "AND status = 'OPEN'",
                "support_tickets_site_status_created_idx",
            ),
            ("", "support_tickets_site_created_idx"),
        ];
        for (filter, index) in tickets {
            for extra in [
                String::new(),
                format!("AND (created_at, id) < ('{}', '{}')", at(200), id()),
            ] {
                // A page of ten (`?limit=10`, plus one to see if more follow).
                let query = format!(
                    "SELECT * FROM support_tickets WHERE site_id = '{site_id}' {filter} {extra} \
                     ORDER BY created_at DESC, id DESC LIMIT 11"
                );
                let plan = plan_of(&mut conn, &query);
                assert!(
                    plan.contains(index),
                    "{}: {query}\nuses {index}:\n{plan}",
                    t.name()
                );
                assert!(
                    !plan.contains("Seq Scan")
                        && !plan.contains("Sort")
                        && !plan.contains("TEMP B-TREE"),
                    "{}: {query}\nneither scans nor sorts the table:\n{plan}",
                    t.name()
                );
            }
        }

        // The delivery worker's claim.
        let claim = format!(
            "SELECT id FROM email_outbox WHERE status = 'PENDING' AND next_attempt_at <= '{}' \
             ORDER BY next_attempt_at LIMIT 10",
            at(500)
        );
        let plan = plan_of(&mut conn, &claim);
        assert!(
            plan.contains("email_outbox_due_idx"),
            "{}: {claim}\n{plan}",
            t.name()
        );
    }
}
