//! The bulk load: a million sessions and about ten million messages made
//! by PostgreSQL itself (`INSERT … SELECT` over `generate_series`), in
//! batches of sessions, into the migrated tables with every index and
//! foreign key in place.
//!
//! Every value is a function of the session's number `i` (hashed with
//! `hashint8extended`), so a run is reproducible and the messages, votes
//! and tickets of a session can be generated in separate statements that
//! agree with each other: `bench_plan` holds each session's shape (start,
//! length, questions, votes, tickets), and the inserts read it.
//!
//! The shape of the data:
//! - sessions start evenly over 180 days ending a few hours ago, each
//!   lasting `questions × 15–315 s` (2 % of them 1–4 h; never more than
//!   4 h, the product's limit), ended (`ended_at`) 30 minutes after their
//!   last activity;
//! - 1–20 questions per session (geometric, mean about 5), each a USER
//!   message and an ASSISTANT reply (55 % MATCHED_CONTENT and 15 %
//!   GENERATED_CONTENT pointing at a library item, 25 % COMPLETED, 3 %
//!   FAILED, 2 % INSUFFICIENT_CREDITS), spread evenly over the session;
//! - votes: 85 % of sessions unvoted, 7 % UP only (1–3 votes), 5 % DOWN
//!   only (1–2), 3 % both; one `chat_feedback` row per vote, on the
//!   session's first replies, so the counters match the rows;
//! - tickets: 30 % of the DOWN-only sessions and 40 % of the mixed ones
//!   are escalated (a ticket needs a DOWN vote), and 0.5 % of the UP-only
//!   ones (their DOWN vote was changed to UP after the ticket); one in ten
//!   escalated sessions has a second ticket, and `ticket_id` is the first;
//! - visitors: 70 % as many as sessions; visitor `u` has the sessions
//!   `u, u + U, …` (so 30 % of sessions are a returning visitor's), 20 %
//!   identified with an external id and traits;
//! - ids are UUID v7 text made from the row's own instant (48 bits of
//!   milliseconds, then hashed bits), so they sort by creation time as
//!   the application's `Uuid::now_v7()` ids do.
//!
//! Three more sessions are made for the export: of 100 messages, 1,000
//! and `BENCH_EXPORT_MESSAGES` (10,000).

use std::time::{Duration, Instant};

use chrono::{Duration as Span, NaiveDateTime, Timelike, Utc};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Text};

use crate::seed::Seeded;
use crate::Result;

/// The days the sessions are spread over.
pub(crate) const DAYS: i64 = 180;
/// Messages of the smallest export session (one chunk of the stream).
pub(crate) const SMALL_EXPORT: usize = 100;
/// Messages of the middle one (two chunks).
pub(crate) const MEDIUM_EXPORT: usize = 1_000;
/// Room for each session's message numbers in a message's hash salt.
const MESSAGE_SALT: i64 = 1 << 20;

/// What the load made.
pub(crate) struct Loaded {
    /// The first session's start and the last one's.
    pub(crate) first: NaiveDateTime,
    pub(crate) last: NaiveDateTime,
    /// The export sessions, smallest first: (id, messages).
    pub(crate) exports: Vec<(String, usize)>,
}

/// The size of the load.
pub(crate) struct Shape {
    pub(crate) sessions: usize,
    pub(crate) batch: usize,
    /// Connections loading at once.
    pub(crate) connections: usize,
    pub(crate) export_messages: usize,
}

const PREFIXES: [&str; 6] = [
    "How do I ",
    "Where can I ",
    "Is there a way to ",
    "Can you show me how to ",
    "I need to ",
    "Quick question: how to ",
];

const ANSWERS: [&str; 5] = [
    "Open Settings, then Workspace. The option is in the second section; change it there and \
     press Save. Everyone in the workspace sees the change at once.",
    "You can do that from the Admin page: pick the item in the list, open its menu (the three \
     dots on the right) and choose the action. It takes effect immediately.",
    "That is on the Billing page, which only owners and admins can open. If you do not see it \
     in the sidebar, ask an owner of your workspace to change your role first.",
    "Not directly, but there is a workaround: export the list as CSV, edit it, and import it \
     again from the same page. The import keeps the existing ids.",
    "Yes. Go to Integrations, find it in the catalogue and press Connect; you will be asked to \
     sign in to the other service and to choose what it may read.",
];

/// A SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn array(values: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = values.into_iter().map(|v| literal(&v)).collect();
    format!("ARRAY[{}]::text[]", items.join(", "))
}

/// `items[1 + floor(r × n)]` for a SQL array of `n` items.
fn pick(items: &str, n: usize, r: &str) -> String {
    format!("({items})[1 + floor({r} * {n})::int]")
}

/// The helper functions and the plan of every session.
fn plan_sql(shape: &Shape, base: NaiveDateTime) -> String {
    let n = shape.sessions;
    let users = (n * 7).div_ceil(10);
    let span = DAYS * 86_400;
    let base = base.format("%Y-%m-%d %H:%M:%S");
    let mid = format!("TIMESTAMP '{base}' + INTERVAL '{} seconds'", span / 2);
    let large_q = shape.export_messages / 2;
    let small_q = SMALL_EXPORT / 2;
    let medium_q = MEDIUM_EXPORT / 2;
    format!(
        r#"
CREATE FUNCTION bench_u01(i bigint, s integer) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (hashint8extended(i, s) & 16777215) / 16777216.0::double precision $$;

CREATE FUNCTION bench_start(i bigint) RETURNS timestamp
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT TIMESTAMP '{base}' + ((i + bench_u01(i, 1)) * {span} / {n}) * INTERVAL '1 second' $$;

CREATE FUNCTION bench_uuid7(ts timestamp, salt bigint, kind integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (lpad(to_hex(floor(extract(epoch FROM ts) * 1000)::bigint), 12, '0')
              || '7' || lpad(to_hex(hashint8extended(salt, kind * 2) & 4095), 3, '0')
              || to_hex(8 | (hashint8extended(salt, kind * 2) >> 12 & 3))
              || lpad(to_hex(hashint8extended(salt, kind * 2 + 1) & 1152921504606846975), 15, '0')
             )::uuid::text $$;

CREATE FUNCTION bench_msg_at(started timestamp, last timestamp, dur double precision, q integer, k integer)
RETURNS timestamp LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN k >= 2 * q - 1 THEN last
                  ELSE started + (dur * k / (2 * q - 1)) * INTERVAL '1 second' END $$;

CREATE TABLE bench_plan AS
WITH drawn AS (
  SELECT i, bench_start(i) AS started_at,
         least(20, 1 + floor(-4.5 * ln(1 - bench_u01(i, 2))))::int AS q,
         bench_u01(i, 3) AS r_long, bench_u01(i, 4) AS r_dur, bench_u01(i, 5) AS r_class,
         bench_u01(i, 6) AS r_up, bench_u01(i, 7) AS r_down, bench_u01(i, 8) AS r_esc,
         bench_u01(i, 9) AS r_again
    FROM generate_series(0::bigint, {n} - 1) AS i
), shaped AS (
  SELECT *,
         CASE WHEN r_long < 0.02 THEN 3600 + r_dur * 10740 ELSE q * (15 + r_dur * 300) END AS dur_s,
         CASE WHEN r_class < 0.85 THEN 0 WHEN r_class < 0.92 THEN 1
              WHEN r_class < 0.97 OR q = 1 THEN 2 ELSE 3 END AS class
    FROM drawn
), voted AS (
  SELECT *,
         (CASE class WHEN 1 THEN 1 + floor(r_up * least(q, 3))
                     WHEN 3 THEN 1 + floor(r_up * least(q - 1, 2)) ELSE 0 END)::int AS up
    FROM shaped
), planned AS (
  SELECT i, bench_uuid7(started_at, i, 1) AS id, i % {users} AS user_i,
         bench_uuid7(bench_start(i % {users}), i % {users}, 2) AS user_id,
         (i % {users}) + {users} * (({n} - 1 - i % {users}) / {users}) AS user_last_i,
         started_at, started_at + dur_s * INTERVAL '1 second' AS last_active_at, dur_s, q, up,
         (CASE class WHEN 2 THEN 1 + floor(r_down * least(q, 2))
                     WHEN 3 THEN 1 + floor(r_down * least(q - up, 2)) ELSE 0 END)::int AS down,
         (CASE WHEN (class = 2 AND r_esc < 0.30) OR (class = 3 AND r_esc < 0.40)
                    OR (class = 1 AND r_esc < 0.005)
               THEN CASE WHEN r_again < 0.10 THEN 2 ELSE 1 END ELSE 0 END) AS tickets
    FROM voted
)
SELECT * FROM planned;

INSERT INTO bench_plan (i, id, user_i, user_id, user_last_i, started_at, last_active_at, dur_s, q, up, down, tickets)
SELECT i, bench_uuid7(at, i, 1), i, bench_uuid7(at, i, 2), i, at, at + dur * INTERVAL '1 second', dur, q, 2, 1, 0
  FROM (VALUES ({n}::bigint, {mid} + INTERVAL '1 hour', 3000::double precision, {small_q}),
               ({n}::bigint + 1, {mid} + INTERVAL '3 hours', 7000::double precision, {medium_q}),
               ({n}::bigint + 2, {mid} + INTERVAL '5 hours', 14000::double precision, {large_q}))
       AS special (i, at, dur, q);

ALTER TABLE bench_plan ADD PRIMARY KEY (i);
ANALYZE bench_plan;
"#
    )
}

/// The statements loading the sessions `[lo, hi)` of the plan, by table.
fn batch_sql(seeded: &Seeded, lo: i64, hi: i64) -> Vec<(&'static str, String)> {
    let site = literal(&seeded.site);
    let widget = literal(&seeded.widget);
    let tenant = literal(&seeded.tenant);
    let owner = literal(&seeded.owner);
    let range = format!("p.i >= {lo} AND p.i < {hi}");
    let prefixes = array(PREFIXES.iter().map(|s| s.to_string()));
    let tasks = array(crate::seed::TASKS.iter().map(|s| s.to_string()));
    let answers = array(ANSWERS.iter().map(|s| s.to_string()));
    let items = &seeded.items;
    let flows: Vec<_> = items.iter().filter(|i| i.kind == "FLOW").collect();
    let (n_items, n_flows) = (items.len(), flows.len());
    let item_ids = array(items.iter().map(|i| i.id.clone()));
    let item_kinds = array(items.iter().map(|i| i.kind.clone()));
    let item_names = array(items.iter().map(|i| i.name.clone()));
    let flow_ids = array(flows.iter().map(|i| i.id.clone()));
    let flow_names = array(flows.iter().map(|i| i.name.clone()));
    // The question asked as message `salt`.
    let question = |salt: &str| {
        format!(
            "{} || {} || {}",
            pick(&prefixes, PREFIXES.len(), &format!("bench_u01({salt}, 21)")),
            pick(
                &tasks,
                crate::seed::TASKS.len(),
                &format!("bench_u01({salt}, 22)")
            ),
            pick(
                "ARRAY['?', '? I cannot find it in the settings.', ' from the mobile app?']",
                3,
                &format!("bench_u01({salt}, 26)")
            ),
        )
    };
    let first_question = question(&format!("p.i * {MESSAGE_SALT}"));
    let asked = question("m.salt");
    let item = |names: &str, n: usize| pick(names, n, "m.r_item");

    let end_users = format!(
        r#"INSERT INTO end_users (id, site_id, anonymous_id, external_id, traits, verified, first_seen_at, last_seen_at)
SELECT p.user_id, {site}, 'anon-' || substr(md5('anonymous ' || p.i), 1, 24),
       CASE WHEN x.r < 0.2 THEN 'customer-' || p.i END,
       CASE WHEN x.r < 0.2 THEN '{{"email":"visitor' || p.i || '@example.com","plan":"'
                                || (ARRAY['free', 'team', 'business'])[1 + (p.i % 3)::int] || '"}}'
            ELSE '{{}}' END,
       x.r < 0.12, p.started_at, l.last_active_at
  FROM bench_plan p
  JOIN bench_plan l ON l.i = p.user_last_i
 CROSS JOIN LATERAL (SELECT bench_u01(p.i, 10) AS r) x
 WHERE {range} AND p.user_i = p.i
 ORDER BY p.i"#
    );
    let sessions = format!(
        r#"INSERT INTO chat_sessions (id, site_id, widget_id, end_user_id, token_hash, started_at, last_active_at,
                           ended_at, message_count, question_count, up_votes, down_votes, ticket_id, preview)
SELECT p.id, {site}, {widget}, p.user_id, encode(sha256(convert_to('bench session ' || p.i, 'UTF8')), 'hex'),
       p.started_at, p.last_active_at, p.last_active_at + INTERVAL '30 minutes',
       2 * p.q, p.q, p.up, p.down, NULL, left({first_question}, 120)
  FROM bench_plan p
 WHERE {range}
 ORDER BY p.i"#
    );
    let messages = format!(
        r#"INSERT INTO chat_messages (id, site_id, session_id, role, status, content, content_kind, content_id,
                           content_name, model, tokens_used, created_at)
SELECT bench_uuid7(m.at, m.salt, 3), {site}, m.session_id,
       CASE WHEN m.asks THEN 'USER' ELSE 'ASSISTANT' END, m.status,
       CASE WHEN m.asks THEN {asked}
            WHEN m.status = 'MATCHED_CONTENT' THEN 'This guide shows you how: "' || {item_name}
                 || '". Press Start and it walks you through each step on the page.'
            WHEN m.status = 'GENERATED_CONTENT' THEN 'There was no guide for this yet, so I made one: "'
                 || {flow_name} || '". It opens the right page and points at each button in order.'
            WHEN m.status = 'COMPLETED' THEN {answer}
            WHEN m.status = 'FAILED' THEN 'Sorry, I could not answer that just now. Please try again in a moment.'
            ELSE 'The assistant is not available right now. Please write to support@conversations.bench.example.com.'
       END,
       CASE m.status WHEN 'MATCHED_CONTENT' THEN {item_kind} WHEN 'GENERATED_CONTENT' THEN 'FLOW' END,
       CASE m.status WHEN 'MATCHED_CONTENT' THEN {item_id} WHEN 'GENERATED_CONTENT' THEN {flow_id} END,
       CASE m.status WHEN 'MATCHED_CONTENT' THEN {item_name} WHEN 'GENERATED_CONTENT' THEN {flow_name} END,
       CASE WHEN m.status IN ('GENERATED_CONTENT', 'COMPLETED', 'FAILED') THEN 'gpt-4o-mini' END,
       CASE WHEN m.status IN ('GENERATED_CONTENT', 'COMPLETED') THEN 150 + floor(m.r_item * 900)::int END,
       m.at
  FROM (SELECT p.id AS session_id, p.i * {MESSAGE_SALT} + k AS salt, k % 2 = 0 AS asks,
               bench_msg_at(p.started_at, p.last_active_at, p.dur_s, p.q, k) AS at,
               CASE WHEN k % 2 = 0 THEN 'COMPLETED'
                    ELSE CASE WHEN s.r < 0.55 THEN 'MATCHED_CONTENT' WHEN s.r < 0.70 THEN 'GENERATED_CONTENT'
                              WHEN s.r < 0.95 THEN 'COMPLETED' WHEN s.r < 0.98 THEN 'FAILED'
                              ELSE 'INSUFFICIENT_CREDITS' END
               END AS status,
               bench_u01(p.i * {MESSAGE_SALT} + k, 24) AS r_item,
               bench_u01(p.i * {MESSAGE_SALT} + k, 25) AS r_text
          FROM bench_plan p
         CROSS JOIN generate_series(0, 2 * p.q - 1) AS k
         CROSS JOIN LATERAL (SELECT bench_u01(p.i * {MESSAGE_SALT} + k, 23) AS r) s
         WHERE {range}) m"#,
        item_name = item(&item_names, n_items),
        item_kind = item(&item_kinds, n_items),
        item_id = item(&item_ids, n_items),
        flow_name = item(&flow_names, n_flows),
        flow_id = item(&flow_ids, n_flows),
        answer = pick(&answers, ANSWERS.len(), "m.r_text"),
    );
    let feedback = format!(
        r#"INSERT INTO chat_feedback (id, site_id, session_id, message_id, vote, created_at, updated_at)
SELECT bench_uuid7(v.at, v.salt, 4), {site}, v.session_id, bench_uuid7(v.message_at, v.salt, 3), v.vote, v.at, v.at
  FROM (SELECT p.id AS session_id, p.i * {MESSAGE_SALT} + 2 * r - 1 AS salt, x.message_at,
               least(x.message_at + INTERVAL '5 seconds', p.last_active_at) AS at,
               CASE WHEN r <= p.up THEN 'UP' ELSE 'DOWN' END AS vote
          FROM bench_plan p
         CROSS JOIN generate_series(1, p.up + p.down) AS r
         CROSS JOIN LATERAL (SELECT bench_msg_at(p.started_at, p.last_active_at, p.dur_s, p.q, 2 * r - 1)
                                    AS message_at) x
         WHERE {range} AND p.up + p.down > 0) v"#
    );
    let ticket_at = |n: &str| {
        format!("p.last_active_at - ((p.tickets - {n}) * p.dur_s * 0.05) * INTERVAL '1 second'")
    };
    let tickets = format!(
        r#"INSERT INTO support_tickets (id, tenant_id, site_id, session_id, email, subject, body, conversation, status,
                             created_at, updated_at, resolved_at, resolved_by)
SELECT bench_uuid7(t.at, t.salt, 5), {tenant}, {site}, t.session_id, t.email,
       'Question from the help widget', 'The assistant could not help me with this. Can someone get back to me?',
       '{{"sessionId":"' || t.session_id || '","messages":' || t.messages || '}}',
       t.status, t.at, coalesce(t.resolved_at, t.at), t.resolved_at,
       CASE WHEN t.resolved_at IS NOT NULL THEN {owner} END
  FROM (SELECT p.id AS session_id, p.i * 4 + n AS salt, {at} AS at, 'visitor' || p.user_i || '@example.com' AS email,
               2 * p.q AS messages,
               CASE WHEN s.r < 0.3 THEN 'OPEN' WHEN s.r < 0.5 THEN 'IN_PROGRESS' ELSE 'RESOLVED' END AS status,
               CASE WHEN s.r >= 0.5 THEN {at} + (1 + s.r * 47) * INTERVAL '1 hour' END AS resolved_at
          FROM bench_plan p
         CROSS JOIN generate_series(1, p.tickets) AS n
         CROSS JOIN LATERAL (SELECT bench_u01(p.i * 4 + n, 30) AS r) s
         WHERE {range} AND p.tickets > 0) t"#,
        at = ticket_at("n"),
    );
    let escalate = format!(
        r#"UPDATE chat_sessions AS s
   SET ticket_id = bench_uuid7({at}, p.i * 4 + 1, 5)
  FROM bench_plan p
 WHERE {range} AND p.tickets > 0 AND s.id = p.id"#,
        at = ticket_at("1"),
    );
    vec![
        ("end_users", end_users),
        ("chat_sessions", sessions),
        ("chat_messages", messages),
        ("chat_feedback", feedback),
        ("support_tickets", tickets),
        ("chat_sessions.ticket_id", escalate),
    ]
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Special {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = BigInt)]
    messages: i64,
}

/// Loads everything and prints the time per table.
pub(crate) fn load(
    conn: &mut PgConnection,
    connect: &dyn Fn() -> Result<PgConnection>,
    seeded: &Seeded,
    shape: &Shape,
) -> Result<Loaded> {
    // Hours-rounded, a few hours ago: every session has ended by now.
    let now = Utc::now().naive_utc();
    let now = now - Span::minutes(i64::from(now.minute())) - Span::seconds(i64::from(now.second()));
    let now = now.with_nanosecond(0).unwrap_or(now);
    let base = now - Span::hours(5) - Span::days(DAYS);
    let settings = "SET synchronous_commit = off; SET work_mem = '64MB'; \
                    SET statement_timeout = '30min'";
    conn.batch_execute(settings)?;
    conn.batch_execute("SET maintenance_work_mem = '256MB'")?;

    let total = shape.sessions as i64 + 3;
    let began = Instant::now();
    conn.batch_execute(&plan_sql(shape, base))?;
    println!(
        "planned {} sessions in {:.1} s (bench_plan: each session's start, length, questions, votes, tickets)",
        total,
        began.elapsed().as_secs_f64()
    );

    // Each batch's statement of a table runs as `connections` statements
    // at once over parts of the batch, then the next table's.
    let mut conns = Vec::with_capacity(shape.connections);
    for _ in 0..shape.connections {
        let mut c = connect()?;
        c.batch_execute(settings)?;
        conns.push(c);
    }
    let mut took: Vec<(&'static str, Duration, usize)> = Vec::new();
    let loading = Instant::now();
    let mut lo = 0;
    while lo < total {
        let hi = (lo + shape.batch as i64).min(total);
        let parts = conns.len() as i64;
        let step = (hi - lo).div_euclid(parts).max(1);
        let statements: Vec<Vec<(&'static str, String)>> = (0..parts)
            .map(|p| {
                let from = lo + p * step;
                let to = if p == parts - 1 {
                    hi
                } else {
                    (from + step).min(hi)
                };
                batch_sql(seeded, from.min(hi), to)
            })
            .collect();
        let tables = statements.first().map_or(0, Vec::len);
        for t in 0..tables {
            let began = Instant::now();
            let results: Vec<Result<usize, String>> = std::thread::scope(|scope| {
                let running: Vec<_> = conns
                    .iter_mut()
                    .zip(&statements)
                    .map(|(c, sqls)| {
                        let sql = sqls[t].1.clone();
                        scope.spawn(move || {
                            diesel::sql_query(sql).execute(c).map_err(|e| e.to_string())
                        })
                    })
                    .collect();
                running
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err("a load thread panicked".into()))
                    })
                    .collect()
            });
            let mut rows = 0;
            for r in results {
                rows += r.map_err(|e| format!("loading {}: {e}", statements[0][t].0))?;
            }
            let table = statements[0][t].0;
            match took.iter_mut().find(|(name, _, _)| *name == table) {
                Some(entry) => {
                    entry.1 += began.elapsed();
                    entry.2 += rows;
                }
                None => took.push((table, began.elapsed(), rows)),
            }
        }
        lo = hi;
        let elapsed = loading.elapsed().as_secs_f64();
        eprint!(
            "\rloaded sessions {hi}/{total} in {elapsed:.0} s (about {:.0} s to go)   ",
            elapsed / hi as f64 * (total - hi) as f64
        );
    }
    eprintln!();
    drop(conns);
    let loaded_in = loading.elapsed();
    println!(
        "loaded in batches of {} sessions, each table's statement split over {} connections at once:",
        shape.batch, shape.connections
    );
    println!("table                          rows        s     rows/s");
    for (table, d, rows) in &took {
        println!(
            "{table:<24} {rows:>10} {:>8.1} {:>10.0}",
            d.as_secs_f64(),
            *rows as f64 / d.as_secs_f64().max(1e-9)
        );
    }
    println!("all tables: {:.1} s", loaded_in.as_secs_f64());

    let t = Instant::now();
    conn.batch_execute(
        "VACUUM (ANALYZE) end_users, chat_sessions, chat_messages, chat_feedback, support_tickets",
    )?;
    println!(
        "VACUUM (ANALYZE) of the five tables: {:.1} s (what autovacuum does after a load; \
         it also sets the visibility map)",
        t.elapsed().as_secs_f64()
    );

    let specials: Vec<Special> = diesel::sql_query(
        "SELECT p.id, (2 * p.q)::bigint AS messages FROM bench_plan p WHERE p.i >= $1 ORDER BY p.i",
    )
    .bind::<BigInt, _>(shape.sessions as i64)
    .load(conn)?;
    if specials.len() != 3 {
        return Err("the plan lost its export sessions".into());
    }
    let first = instant(conn, "SELECT min(started_at) AS at FROM chat_sessions")?;
    let last = instant(conn, "SELECT max(started_at) AS at FROM chat_sessions")?;
    conn.batch_execute(
        "DROP TABLE bench_plan; DROP FUNCTION bench_msg_at, bench_uuid7, bench_start, bench_u01; \
         RESET statement_timeout",
    )?;
    Ok(Loaded {
        first,
        last,
        exports: specials
            .into_iter()
            .map(|s| (s.id, s.messages as usize))
            .collect(),
    })
}

fn instant(conn: &mut PgConnection, sql: &str) -> Result<NaiveDateTime> {
    #[derive(QueryableByName)]
    struct At {
        #[diesel(sql_type = diesel::sql_types::Timestamp)]
        at: NaiveDateTime,
    }
    let at: At = diesel::sql_query(sql).get_result(conn)?;
    Ok(at.at)
}

/// What the tables hold, checked against the rules the data must keep
/// (printed; a broken rule fails the run).
pub(crate) fn describe(conn: &mut PgConnection) -> Result<()> {
    let count = |conn: &mut PgConnection, sql: &str| -> Result<i64> {
        Ok(diesel::sql_query(sql).get_result::<Count>(conn)?.n)
    };
    let sessions = count(conn, "SELECT count(*) AS n FROM chat_sessions")?;
    let users = count(conn, "SELECT count(*) AS n FROM end_users")?;
    let messages = count(conn, "SELECT count(*) AS n FROM chat_messages")?;
    let feedback = count(conn, "SELECT count(*) AS n FROM chat_feedback")?;
    let tickets = count(conn, "SELECT count(*) AS n FROM support_tickets")?;
    println!(
        "data: {sessions} sessions of {users} visitors, {messages} messages ({:.2} per session), \
         {feedback} votes, {tickets} tickets",
        messages as f64 / sessions.max(1) as f64
    );
    let classes = [
        ("unvoted", "up_votes = 0 AND down_votes = 0"),
        ("UP only", "up_votes > 0 AND down_votes = 0"),
        ("DOWN only", "up_votes = 0 AND down_votes > 0"),
        ("both", "up_votes > 0 AND down_votes > 0"),
    ];
    let mut line = String::from("sessions by votes (escalated):");
    for (name, predicate) in classes {
        let all = count(
            conn,
            &format!("SELECT count(*) AS n FROM chat_sessions WHERE {predicate}"),
        )?;
        let escalated = count(
            conn,
            &format!(
                "SELECT count(*) AS n FROM chat_sessions WHERE {predicate} AND ticket_id IS NOT NULL"
            ),
        )?;
        line.push_str(&format!(
            " {name} {all} ({:.1} %; {escalated})",
            100.0 * all as f64 / sessions.max(1) as f64
        ));
    }
    println!("{line}");

    let checks = [
        (
            "message_count = the session's messages",
            "SELECT (SELECT coalesce(sum(message_count), 0) FROM chat_sessions)
                  - (SELECT count(*) FROM chat_messages) AS n",
        ),
        (
            "up_votes = its UP rows",
            "SELECT (SELECT coalesce(sum(up_votes), 0) FROM chat_sessions)
                  - (SELECT count(*) FROM chat_feedback WHERE vote = 'UP') AS n",
        ),
        (
            "down_votes = its DOWN rows",
            "SELECT (SELECT coalesce(sum(down_votes), 0) FROM chat_sessions)
                  - (SELECT count(*) FROM chat_feedback WHERE vote = 'DOWN') AS n",
        ),
        (
            "sessions lasting over 4 h",
            "SELECT count(*) AS n FROM chat_sessions
              WHERE last_active_at > started_at + INTERVAL '4 hours'",
        ),
        (
            "messages outside their session's span",
            "SELECT count(*) AS n FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id
              WHERE m.created_at < s.started_at OR m.created_at > s.last_active_at",
        ),
        (
            "sessions whose ticket_id is not their first ticket",
            "SELECT count(*) AS n FROM chat_sessions s
              WHERE s.ticket_id IS NOT NULL AND s.ticket_id <> (
                    SELECT t.id FROM support_tickets t WHERE t.session_id = s.id
                     ORDER BY t.created_at, t.id LIMIT 1)",
        ),
        (
            "escalated sessions with no vote",
            "SELECT count(*) AS n FROM chat_sessions
              WHERE ticket_id IS NOT NULL AND up_votes = 0 AND down_votes = 0",
        ),
    ];
    for (rule, sql) in checks {
        let broken = count(conn, sql)?;
        if broken != 0 {
            return Err(format!("the loaded data breaks a rule: {rule}: {broken}").into());
        }
    }
    println!("checked: message_count and the vote counters match the rows; no session over 4 h; messages within their sessions; ticket_id is the first ticket");
    Ok(())
}

/// Sizes of the loaded tables with their indexes.
pub(crate) fn sizes(conn: &mut PgConnection) -> Result<String> {
    #[derive(QueryableByName)]
    struct Size {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Double)]
        table_mb: f64,
        #[diesel(sql_type = Double)]
        indexes_mb: f64,
    }
    let sizes: Vec<Size> = diesel::sql_query(
        "SELECT c.relname::text AS name,
                pg_table_size(c.oid) / 1048576.0::float8 AS table_mb,
                pg_indexes_size(c.oid) / 1048576.0::float8 AS indexes_mb
           FROM pg_class c
          WHERE c.relnamespace = current_schema()::regnamespace
            AND c.relname IN ('end_users', 'chat_sessions', 'chat_messages', 'chat_feedback', 'support_tickets')
          ORDER BY pg_total_relation_size(c.oid) DESC",
    )
    .load(conn)?;
    Ok(sizes
        .iter()
        .map(|s| format!("{} {:.0}+{:.0} MB", s.name, s.table_mb, s.indexes_mb))
        .collect::<Vec<_>>()
        .join(", "))
}
