//! The visitor mix: what a conversation costs through chatdesk, against
//! the same rows written by hand.
//!
//! - **HTTP:** each iteration is one visitor: open a session for a new
//!   `anonymousId` (`POST /sdk/chat/sessions`), ask a question that names
//!   a published item (`POST …/messages`: matched by name, no model), and
//!   vote UP on the reply (`PUT …/feedback`); client threads in a closed
//!   loop against the real server.
//! - **SQL (the baseline):** the same writes as hand-written SQL, one
//!   transaction per iteration on a dedicated connection per client
//!   thread: upsert the visitor, insert the session and its token, count
//!   the question with the store's conditional `UPDATE`, insert both
//!   messages, upsert the vote and move the session's counters. Same
//!   tables, columns, values and indexes as the store's writes; it skips
//!   what the store also reads (the key check, the session lookups by
//!   token, the vote's locks and checks) and the matcher.
//!
//! After each run the program counts the rows both paths wrote: each
//! successful iteration must add exactly one visitor, session, token and
//! vote and two messages.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chatdesk_domain::content::ContentKind;
use chatdesk_domain::conversation::preview_of;
use chatdesk_domain::secret::SecretHash;
use chatdesk_store::testing::TestDatabase;
use chatdesk_store::{Backend, DbConnection};
use chrono::{NaiveDateTime, SubsecRound, Utc};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamp};
use diesel::sqlite::SqliteConnection;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::catalog::library;
use crate::load::{closed_loop, load_average, percentile, Probe, Stats, Window, Worker};
use crate::sdk::DOMAIN;
use crate::seed::{seed_widget_site, Published, WidgetSite};
use crate::serve::mib;
use crate::servers::{chatdesk_server, config_for};
use crate::{Result, Settings, LIBRARY_SEED};

/// The widget's default limit of questions per session.
const RATE_LIMIT: i32 = 20;

pub(crate) fn visitor(s: &Settings) -> Result<()> {
    println!(
        "Visitor mix: iterations per second, one iteration = a new visitor opens a session, asks \
         a question naming a published item and votes UP; {} client threads, {} server workers; \
         {} rounds of {} s per path after {} s warm-up each, the paths taking turns",
        s.clients,
        s.workers,
        s.mix_rounds,
        s.mix_seconds.as_secs_f64(),
        s.warmup.as_secs_f64(),
    );
    println!(
        "{:<10} {:<32} {:>6} {:>7} {:>7} {:>7} {:>8} {:>5} {:>5} {:>5} {:>7}",
        "backend",
        "path",
        "it/s",
        "p50 ms",
        "p99 ms",
        "CPU µs",
        "peak MiB",
        "srv",
        "cli",
        "busy",
        "vs SQL"
    );
    let sqlite = TestDatabase::sqlite();
    let mut notes = vec![mix_on("SQLite", &sqlite, s)?];
    drop(sqlite);
    match TestDatabase::postgres() {
        Some(pg) => notes.push(mix_on("PostgreSQL", &pg, s)?),
        None => println!(
            "{:<10} skipped: not reachable (TEST_DATABASE_URL)",
            "PostgreSQL"
        ),
    }
    for line in notes {
        println!("{line}");
    }
    println!(
        "it/s over all rounds; p50/p99 of one iteration (means over the rounds); CPU µs = CPU \
         time per iteration of the server process on the HTTP path, of this program (its \
         client threads with SQLite) on the SQL paths (PostgreSQL's own processes are not \
         counted); peak MiB = the server's peak RSS (VmHWM) over the HTTP windows; srv, cli = \
         how busy the servers' and the clients' cores were (the SQL paths run on the clients' \
         cores); busy = the whole machine (PostgreSQL's processes and any other); vs SQL = \
         throughput / the hand-written SQL's; per round: it/s (= the ratio to the SQL in the same \
         round); load average now {}",
        load_average()
    );
    Ok(())
}

/// The ways the mix is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Through chatdesk's SDK routes.
    Http,
    /// The same writes by hand, one transaction per iteration.
    Sql,
    /// The same, with this process's writers queued on a mutex before
    /// `BEGIN IMMEDIATE` (SQLite only): shows what SQLite's busy handler,
    /// which sleeps 1, 2, 5, 10, … ms between tries, costs.
    SqlQueued,
}

impl Path {
    fn label(self) -> &'static str {
        match self {
            Path::Http => "HTTP: 3 requests",
            Path::Sql => "SQL: 1 transaction (baseline)",
            Path::SqlQueued => "SQL, writers queued (mutex)",
        }
    }
}

/// Runs the mix on one backend, prints its rows and returns its line of
/// notes (the HTTP steps' latencies).
fn mix_on(name: &str, db: &TestDatabase, s: &Settings) -> Result<String> {
    let config = config_for(db.url())?;
    let server = chatdesk_server(&s.pin, db.url(), s.workers, "warn", "visitor")?;
    let seeding = Instant::now();
    let site = seed_widget_site(
        &chatdesk::services(chatdesk::open_store(&config)?, None, false),
        DOMAIN,
        &library(s.items, LIBRARY_SEED),
    )?;
    let seeding = seeding.elapsed();
    // No ANALYZE here: statistics saying the conversation tables are
    // empty make PostgreSQL keep sequential-scan generic plans for the
    // store's prepared statements while the tables grow (until autovacuum
    // analyzes them again), and the HTTP path slows down round by round.
    let mut conn = chatdesk_store::connect(db.url())?;
    let backend = conn.backend();
    let base = server.base();
    let statements = Statements::new(backend);
    let writers = Mutex::new(());
    let window = Window {
        warmup: s.warmup,
        seconds: s.mix_seconds,
    };
    let paths: &[Path] = match backend {
        Backend::Sqlite => &[Path::Http, Path::Sql, Path::SqlQueued],
        Backend::Postgres => &[Path::Http, Path::Sql],
    };

    // One iteration each way before the clock: both must work.
    let mut before = counts(&mut conn)?;
    HttpVisitor::new(base, &site, 0, 0).iteration(false)?;
    RawVisitor::new(db.url(), &statements, &site, None, 0, 0)?.iteration(false)?;
    let after = counts(&mut conn)?;
    after.check_added(&before, 2, "the check iterations")?;
    before = after;

    // runs[path][round]
    let mut runs: Vec<Vec<Stats>> = paths.iter().map(|_| Vec::new()).collect();
    let mut step_nanos: [Vec<u64>; 3] = Default::default();
    for round in 1..=s.mix_rounds {
        for (p, &path) in paths.iter().enumerate() {
            let stats = match path {
                Path::Http => {
                    let probe = Probe {
                        server: Some(&server),
                        cores: &s.pin,
                    };
                    let (stats, workers) = closed_loop(s.clients, window, probe, |thread| {
                        Ok(HttpVisitor::new(base, &site, round, thread))
                    });
                    for worker in workers {
                        for (all, mine) in step_nanos.iter_mut().zip(worker.steps) {
                            all.extend(mine);
                        }
                    }
                    stats
                }
                Path::Sql | Path::SqlQueued => {
                    let queue = (path == Path::SqlQueued).then_some(&writers);
                    // Distinct visitors per path and round.
                    let tag = round * 10 + p;
                    let probe = Probe {
                        server: None,
                        cores: &s.pin,
                    };
                    closed_loop(s.clients, window, probe, |thread| {
                        RawVisitor::new(db.url(), &statements, &site, queue, tag, thread)
                    })
                    .0
                }
            };
            let after = counts(&mut conn)?;
            valid(name, path.label(), &stats)?;
            after.check_added(&before, stats.all_ok, path.label())?;
            before = after;
            runs[p].push(stats);
        }
    }
    drop(conn);
    drop(server);

    let seconds = s.mix_seconds.as_secs_f64() * s.mix_rounds as f64;
    let throughput =
        |runs: &[Stats]| runs.iter().map(|r| r.requests).sum::<usize>() as f64 / seconds;
    let mean = |runs: &[Stats], f: &dyn Fn(&Stats) -> f64| {
        runs.iter().map(f).sum::<f64>() / runs.len().max(1) as f64
    };
    // The baseline's runs (every backend has them).
    let sql_runs: &[Stats] = paths
        .iter()
        .position(|&p| p == Path::Sql)
        .map_or(&[], |i| &runs[i]);
    let baseline = throughput(sql_runs);
    for (p, path) in paths.iter().enumerate() {
        let per_round: Vec<String> = runs[p]
            .iter()
            .zip(sql_runs)
            .map(|(mine, sql)| {
                if *path == Path::Sql {
                    format!("{:.0}", mine.per_second)
                } else {
                    format!(
                        "{:.0} = {:.2}",
                        mine.per_second,
                        mine.per_second / sql.per_second
                    )
                }
            })
            .collect();
        println!(
            "{:<10} {:<32} {:>6.0} {:>7.2} {:>7.2} {:>7.0} {:>8} {:>4.0}% {:>4.0}% {:>4.0}% {:>7.3}   (per round: {})",
            name,
            path.label(),
            throughput(&runs[p]),
            mean(&runs[p], &|r| r.p50.as_secs_f64() * 1e3),
            mean(&runs[p], &|r| r.p99.as_secs_f64() * 1e3),
            mean(&runs[p], &|r| r
                .cpu_per_request
                .map_or(f64::NAN, |c| c.as_secs_f64() * 1e6)),
            runs[p]
                .iter()
                .filter_map(|r| r.server_peak)
                .max()
                .map_or_else(|| "-".to_string(), mib),
            mean(&runs[p], &|r| r.server_busy.map_or(f64::NAN, |b| b * 100.0)),
            mean(&runs[p], &|r| r.client_busy.map_or(f64::NAN, |b| b * 100.0)),
            mean(&runs[p], &|r| r
                .machine_busy
                .map_or(f64::NAN, |b| b * 100.0)),
            throughput(&runs[p]) / baseline,
            per_round.join(", "),
        );
    }
    let mut step = |i: usize| {
        let mut nanos = std::mem::take(&mut step_nanos[i]);
        nanos.sort_unstable();
        format!(
            "{:.2}/{:.2}",
            percentile(&nanos, 50.0).as_secs_f64() * 1e3,
            percentile(&nanos, 99.0).as_secs_f64() * 1e3
        )
    };
    Ok(format!(
        "{name} (seeded in {} ms), HTTP steps p50/p99 ms: open session {}, ask {}, vote {}",
        seeding.as_millis(),
        step(0),
        step(1),
        step(2)
    ))
}

/// An error unless every measured iteration succeeded.
fn valid(backend: &str, path: &str, stats: &Stats) -> Result<()> {
    match (&stats.first_error, stats.requests) {
        (Some(error), _) => Err(format!("{backend}, {path}: an iteration failed: {error}").into()),
        (None, 0) => Err(format!("{backend}, {path}: no iteration finished").into()),
        _ => Ok(()),
    }
}

// ----- through HTTP -----

/// One visitor after another, through the SDK routes.
struct HttpVisitor<'a> {
    agent: ureq::Agent,
    base: &'a str,
    site: &'a WidgetSite,
    round: usize,
    thread: usize,
    n: usize,
    /// Latencies (ns) of the measured iterations' three requests.
    steps: [Vec<u64>; 3],
}

impl<'a> HttpVisitor<'a> {
    fn new(base: &'a str, site: &'a WidgetSite, round: usize, thread: usize) -> Self {
        HttpVisitor {
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(10))
                .build(),
            base,
            site,
            round,
            thread,
            n: 0,
            steps: Default::default(),
        }
    }

    fn sdk(&self, req: ureq::Request, session: Option<&str>) -> ureq::Request {
        let req = req.set("X-Chatdesk-Site-Key", &self.site.key);
        match session {
            Some(token) => req.set("X-Chatdesk-Session", token),
            None => req,
        }
    }
}

/// Sends `body`; the answer must have `status`, and its JSON is returned.
fn send(req: ureq::Request, body: Value, status: u16) -> Result<Value, String> {
    match req.send_json(body) {
        Ok(reply) if reply.status() == status => {
            reply.into_json::<Value>().map_err(|e| e.to_string())
        }
        Ok(reply) => {
            let (url, got) = (reply.get_url().to_string(), reply.status());
            let body = reply.into_string().unwrap_or_default();
            Err(format!("{url}: {got} {body}, not {status}"))
        }
        Err(ureq::Error::Status(code, reply)) => {
            let url = reply.get_url().to_string();
            let body = reply.into_string().unwrap_or_default();
            Err(format!("{url}: {code} {body}"))
        }
        Err(e) => Err(e.to_string()),
    }
}

fn text<'v>(value: &'v Value, pointer: &str) -> Result<&'v str, String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no {pointer} in {value}"))
}

/// The published item a worker's `n`th visitor asks about.
fn item_for(site: &WidgetSite, thread: usize, n: usize) -> &Published {
    let i = thread.wrapping_mul(7919).wrapping_add(n.wrapping_mul(31));
    &site.published[i % site.published.len()]
}

impl Worker for HttpVisitor<'_> {
    fn iteration(&mut self, measured: bool) -> Result<(), String> {
        self.n += 1;
        let item = item_for(self.site, self.thread, self.n);
        let anonymous_id = format!("bench-http-{}-{}-{}", self.round, self.thread, self.n);
        let base = self.base;

        let t0 = Instant::now();
        let opened = send(
            self.sdk(
                self.agent.post(&format!("{base}/api/v1/sdk/chat/sessions")),
                None,
            ),
            json!({ "anonymousId": anonymous_id }),
            201,
        )?;
        let session = text(&opened, "/sessionId")?;
        let token = text(&opened, "/sessionToken")?;

        let t1 = Instant::now();
        let asked = send(
            self.sdk(
                self.agent.post(&format!(
                    "{base}/api/v1/sdk/chat/sessions/{session}/messages"
                )),
                Some(token),
            ),
            json!({ "content": item.question }),
            201,
        )?;
        let status = text(&asked, "/assistantMessage/status")?;
        let matched = text(&asked, "/assistantMessage/contentRef/id")?;
        if status != "MATCHED_CONTENT" || matched != item.id.to_string() {
            return Err(format!(
                "{:?} was answered {status} with {matched}, not {}",
                item.question, item.id
            ));
        }
        let reply = text(&asked, "/assistantMessage/id")?;

        let t2 = Instant::now();
        let voted = send(
            self.sdk(
                self.agent
                    .put(&format!("{base}/api/v1/sdk/chat/messages/{reply}/feedback")),
                Some(token),
            ),
            json!({ "vote": "UP" }),
            200,
        )?;
        if text(&voted, "/vote")? != "UP" {
            return Err(format!("the vote came back as {voted}"));
        }
        if measured {
            let t3 = Instant::now();
            for (step, (from, to)) in self.steps.iter_mut().zip([(t0, t1), (t1, t2), (t2, t3)]) {
                step.push(u64::try_from((to - from).as_nanos()).unwrap_or(u64::MAX));
            }
        }
        Ok(())
    }
}

// ----- hand-written SQL -----

/// The statements, written with PostgreSQL's `$n` placeholders; SQLite
/// numbers its placeholders `?n` (the same positions).
struct Statements {
    upsert_visitor: String,
    insert_session: String,
    insert_token: String,
    count_question: String,
    insert_messages: String,
    upsert_vote: String,
    count_vote: String,
}

impl Statements {
    fn new(backend: Backend) -> Statements {
        let dialect = |sql: &str| match backend {
            Backend::Postgres => sql.to_string(),
            Backend::Sqlite => sql.replace('$', "?"),
        };
        Statements {
            upsert_visitor: dialect(
                "INSERT INTO end_users (id, site_id, anonymous_id, external_id, traits, verified, \
                 first_seen_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (site_id, anonymous_id) DO UPDATE SET last_seen_at = excluded.last_seen_at \
                 RETURNING id",
            ),
            insert_session: dialect(
                "INSERT INTO chat_sessions (id, site_id, widget_id, end_user_id, token_hash, \
                 started_at, last_active_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
            ),
            insert_token: dialect(
                "INSERT INTO chat_session_tokens (token_hash, session_id, site_id, created_at) \
                 VALUES ($1, $2, $3, $4)",
            ),
            count_question: dialect(
                "UPDATE chat_sessions SET question_count = question_count + 1, \
                 message_count = message_count + 2, \
                 last_active_at = CASE WHEN last_active_at > $1 THEN last_active_at ELSE $1 END, \
                 preview = COALESCE(preview, $2) \
                 WHERE id = $3 AND site_id = $4 AND ended_at IS NULL AND question_count < $5",
            ),
            insert_messages: dialect(
                "INSERT INTO chat_messages (id, site_id, session_id, role, status, content, \
                 content_kind, content_id, content_name, model, tokens_used, created_at) VALUES \
                 ($1, $2, $3, 'USER', 'COMPLETED', $4, NULL, NULL, NULL, NULL, NULL, $5), \
                 ($6, $2, $3, 'ASSISTANT', 'MATCHED_CONTENT', $7, $8, $9, $10, NULL, $11, $5)",
            ),
            upsert_vote: dialect(
                "INSERT INTO chat_feedback (id, site_id, session_id, message_id, vote, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
                 ON CONFLICT (message_id) DO UPDATE SET vote = excluded.vote, \
                 updated_at = excluded.updated_at",
            ),
            count_vote: dialect(
                "UPDATE chat_sessions SET up_votes = up_votes + $1, down_votes = down_votes + $2, \
                 last_active_at = $3 WHERE id = $4",
            ),
        }
    }
}

/// What one iteration writes.
struct Writes {
    visitor: String,
    site: String,
    anonymous_id: String,
    now: NaiveDateTime,
    session: String,
    widget: String,
    token_hash: String,
    question_id: String,
    question: String,
    preview: String,
    reply_id: String,
    reply: String,
    content_kind: &'static str,
    content_id: String,
    content_name: String,
    feedback: String,
}

#[derive(QueryableByName)]
struct ReturnedId {
    #[diesel(sql_type = Text)]
    id: String,
}

/// One iteration's transaction on one backend's connection.
macro_rules! write_iteration {
    ($name:ident, $conn:ty, $begin:literal) => {
        fn $name(conn: &mut $conn, sql: &Statements, w: &Writes) -> Result<(), String> {
            fn body(conn: &mut $conn, sql: &Statements, w: &Writes) -> Result<(), String> {
                let visitor: Vec<ReturnedId> = diesel::sql_query(&sql.upsert_visitor)
                    .bind::<Text, _>(&w.visitor)
                    .bind::<Text, _>(&w.site)
                    .bind::<Text, _>(&w.anonymous_id)
                    .bind::<Nullable<Text>, _>(None::<&str>)
                    .bind::<Text, _>("{}")
                    .bind::<Bool, _>(false)
                    .bind::<Timestamp, _>(w.now)
                    .load(conn)
                    .map_err(|e| e.to_string())?;
                let visitor = visitor
                    .into_iter()
                    .next()
                    .ok_or("the visitor upsert returned no id")?
                    .id;
                diesel::sql_query(&sql.insert_session)
                    .bind::<Text, _>(&w.session)
                    .bind::<Text, _>(&w.site)
                    .bind::<Text, _>(&w.widget)
                    .bind::<Text, _>(&visitor)
                    .bind::<Text, _>(&w.token_hash)
                    .bind::<Timestamp, _>(w.now)
                    .execute(conn)
                    .map_err(|e| e.to_string())?;
                diesel::sql_query(&sql.insert_token)
                    .bind::<Text, _>(&w.token_hash)
                    .bind::<Text, _>(&w.session)
                    .bind::<Text, _>(&w.site)
                    .bind::<Timestamp, _>(w.now)
                    .execute(conn)
                    .map_err(|e| e.to_string())?;
                let counted = diesel::sql_query(&sql.count_question)
                    .bind::<Timestamp, _>(w.now)
                    .bind::<Text, _>(&w.preview)
                    .bind::<Text, _>(&w.session)
                    .bind::<Text, _>(&w.site)
                    .bind::<Integer, _>(RATE_LIMIT)
                    .execute(conn)
                    .map_err(|e| e.to_string())?;
                if counted != 1 {
                    return Err("the question was not counted".into());
                }
                diesel::sql_query(&sql.insert_messages)
                    .bind::<Text, _>(&w.question_id)
                    .bind::<Text, _>(&w.site)
                    .bind::<Text, _>(&w.session)
                    .bind::<Text, _>(&w.question)
                    .bind::<Timestamp, _>(w.now)
                    .bind::<Text, _>(&w.reply_id)
                    .bind::<Text, _>(&w.reply)
                    .bind::<Text, _>(w.content_kind)
                    .bind::<Text, _>(&w.content_id)
                    .bind::<Text, _>(&w.content_name)
                    .bind::<Integer, _>(0)
                    .execute(conn)
                    .map_err(|e| e.to_string())?;
                diesel::sql_query(&sql.upsert_vote)
                    .bind::<Text, _>(&w.feedback)
                    .bind::<Text, _>(&w.site)
                    .bind::<Text, _>(&w.session)
                    .bind::<Text, _>(&w.reply_id)
                    .bind::<Text, _>("UP")
                    .bind::<Timestamp, _>(w.now)
                    .execute(conn)
                    .map_err(|e| e.to_string())?;
                diesel::sql_query(&sql.count_vote)
                    .bind::<Integer, _>(1)
                    .bind::<Integer, _>(0)
                    .bind::<Timestamp, _>(w.now)
                    .bind::<Text, _>(&w.session)
                    .execute(conn)
                    .map_err(|e| e.to_string())?;
                Ok(())
            }
            conn.batch_execute($begin).map_err(|e| e.to_string())?;
            match body(conn, sql, w) {
                Ok(()) => conn.batch_execute("COMMIT").map_err(|e| e.to_string()),
                Err(error) => {
                    let _ = conn.batch_execute("ROLLBACK");
                    Err(error)
                }
            }
        }
    };
}

// The store's write transactions: BEGIN IMMEDIATE on SQLite (the write
// lock up front), an ordinary read-committed transaction on PostgreSQL.
write_iteration!(write_postgres, PgConnection, "BEGIN");
write_iteration!(write_sqlite, SqliteConnection, "BEGIN IMMEDIATE");

/// One visitor after another, as hand-written SQL on a dedicated
/// connection.
struct RawVisitor<'a> {
    conn: DbConnection,
    sql: &'a Statements,
    site: &'a WidgetSite,
    /// Held from `BEGIN` to `COMMIT` when given.
    queue: Option<&'a Mutex<()>>,
    round: usize,
    thread: usize,
    n: usize,
}

impl<'a> RawVisitor<'a> {
    fn new(
        url: &str,
        sql: &'a Statements,
        site: &'a WidgetSite,
        queue: Option<&'a Mutex<()>>,
        round: usize,
        thread: usize,
    ) -> Result<Self, String> {
        Ok(RawVisitor {
            conn: chatdesk_store::connect(url).map_err(|e| e.to_string())?,
            sql,
            site,
            queue,
            round,
            thread,
            n: 0,
        })
    }
}

impl Worker for RawVisitor<'_> {
    fn iteration(&mut self, _measured: bool) -> Result<(), String> {
        self.n += 1;
        let item = item_for(self.site, self.thread, self.n);
        // As the service makes them: v7 ids, a random token stored as its
        // SHA-256, times to the microsecond.
        let token = format!("cd_sess_{}", Uuid::new_v4().simple());
        let writes = Writes {
            visitor: Uuid::now_v7().to_string(),
            site: self.site.site.to_string(),
            anonymous_id: format!("bench-sql-{}-{}-{}", self.round, self.thread, self.n),
            now: Utc::now().trunc_subsecs(6).naive_utc(),
            session: Uuid::now_v7().to_string(),
            widget: self.site.widget.to_string(),
            token_hash: SecretHash::of(&token).to_hex(),
            question_id: Uuid::now_v7().to_string(),
            preview: preview_of(&item.question),
            question: item.question.clone(),
            reply_id: Uuid::now_v7().to_string(),
            reply: format!(
                "This {} shows you how: {}",
                match item.kind {
                    ContentKind::Flow => "guide",
                    ContentKind::Tooltip => "tip",
                },
                item.name
            ),
            content_kind: item.kind.as_str(),
            content_id: item.id.to_string(),
            content_name: item.name.clone(),
            feedback: Uuid::now_v7().to_string(),
        };
        let _turn = match self.queue {
            Some(queue) => Some(queue.lock().map_err(|_| "the writers' mutex is poisoned")?),
            None => None,
        };
        match &mut self.conn {
            DbConnection::Pg(pg) => write_postgres(pg, self.sql, &writes),
            DbConnection::Sqlite(lite) => write_sqlite(lite, self.sql, &writes),
        }
    }
}

// ----- what was written -----

/// Row counts of the tables a conversation writes.
#[derive(QueryableByName, Debug, Clone, Copy)]
struct Counts {
    #[diesel(sql_type = BigInt)]
    visitors: i64,
    #[diesel(sql_type = BigInt)]
    sessions: i64,
    #[diesel(sql_type = BigInt)]
    tokens: i64,
    #[diesel(sql_type = BigInt)]
    messages: i64,
    #[diesel(sql_type = BigInt)]
    votes: i64,
    #[diesel(sql_type = BigInt)]
    questions: i64,
    #[diesel(sql_type = BigInt)]
    up_votes: i64,
}

const COUNTS: &str = "SELECT \
     (SELECT COUNT(*) FROM end_users) AS visitors, \
     (SELECT COUNT(*) FROM chat_sessions) AS sessions, \
     (SELECT COUNT(*) FROM chat_session_tokens) AS tokens, \
     (SELECT COUNT(*) FROM chat_messages) AS messages, \
     (SELECT COUNT(*) FROM chat_feedback) AS votes, \
     (SELECT COALESCE(SUM(question_count), 0) FROM chat_sessions) AS questions, \
     (SELECT COALESCE(SUM(up_votes), 0) FROM chat_sessions) AS up_votes";

fn counts(conn: &mut DbConnection) -> Result<Counts> {
    let rows: Vec<Counts> = match conn {
        DbConnection::Pg(pg) => diesel::sql_query(COUNTS).load(pg)?,
        DbConnection::Sqlite(lite) => diesel::sql_query(COUNTS).load(lite)?,
    };
    rows.into_iter()
        .next()
        .ok_or_else(|| "the row counts returned nothing".into())
}

impl Counts {
    /// An error unless `n` conversations were added since `before`.
    fn check_added(&self, before: &Counts, n: usize, who: &str) -> Result<()> {
        let n = i64::try_from(n)?;
        let added = [
            ("visitors", self.visitors - before.visitors, n),
            ("sessions", self.sessions - before.sessions, n),
            ("session tokens", self.tokens - before.tokens, n),
            ("messages", self.messages - before.messages, 2 * n),
            ("votes", self.votes - before.votes, n),
            ("counted questions", self.questions - before.questions, n),
            ("up votes", self.up_votes - before.up_votes, n),
        ];
        match added.iter().find(|(_, got, want)| got != want) {
            Some((what, got, want)) => {
                Err(format!("{who} added {got} {what} for {n} conversations, not {want}").into())
            }
            None => Ok(()),
        }
    }
}
