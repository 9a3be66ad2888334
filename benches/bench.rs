//! `make bench` (`cargo bench --bench bench`): what chatdesk costs, as
//! ratios to baselines measured in the same run.
//!
//! - HTTP: a bare actix-web server with one trivial JSON handler (the same
//!   worker count) against the real chatdesk server on a fresh SQLite
//!   database with one PRO tenant, one site and a library of content items.
//!   Each endpoint is driven by keep-alive client threads for a fixed time;
//!   the figures are requests per second, p50 and p99 latency, the CPU time
//!   of the whole process per request (clients and server share it, so this
//!   holds up on a busy machine), and the throughput as a share of the bare
//!   server's.
//! - Store: `Store::list_content` (first page, a status filter) against the
//!   same page fetched with hand-written SQL on a dedicated connection, on
//!   SQLite and, when it answers, PostgreSQL (`TEST_DATABASE_URL`); two more
//!   variants (the query in diesel's DSL, alone and after the pool's
//!   checkout `SELECT 1`) show where the difference goes.
//!
//! Everything targets 127.0.0.1, takes about a minute after the build, and
//! stops by itself. Settings come from the environment: `BENCH_SECONDS` (5
//! per HTTP endpoint, at most 60), `BENCH_WARMUP_SECONDS` (1),
//! `BENCH_CLIENTS` (4), `BENCH_WORKERS` (one per core), `BENCH_ITEMS`
//! (1000), `BENCH_STORE_CALLS` (4000 per variant).

use std::error::Error;
use std::future::Future;
use std::hint::black_box;
use std::io::Read;
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use chatdesk::config::Config;
use chatdesk::Application;
use chatdesk_api::Services;
use chatdesk_domain::content::{ContentFilter, ContentStatus, NewContentInput};
use chatdesk_domain::ids::SiteId;
use chatdesk_domain::ports::{ContentRepository, PageRequest};
use chatdesk_domain::site::NewSiteInput;
use chatdesk_domain::tenant::Plan;
use chatdesk_store::schema::content_items;
use chatdesk_store::testing::TestDatabase;
use chatdesk_store::{Backend, DbConnection, Store};
use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::R2D2Connection;
use diesel::sql_types::{BigInt, Bool, Text, Timestamp};

type BoxError = Box<dyn Error>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

/// The page size every list measurement uses.
const PAGE: u32 = 25;
/// Store measurements alternate between the variants in this many rounds,
/// each on fresh connections, so a slow patch of the machine or a slow
/// connection hits them all alike; the figures are means over all calls.
const ROUNDS: usize = 20;

fn main() -> Result<()> {
    let s = Settings::from_env()?;
    println!("chatdesk benchmark ({})", build_kind());
    println!(
        "machine: {} cores (available_parallelism), {} {}",
        s.cores,
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    println!(
        "settings: HTTP {} keep-alive client threads, {} server workers each, \
         {} s per endpoint after {} s warm-up; {} content items (2 in 3 PUBLISHED); \
         store {} calls per variant in {ROUNDS} alternating rounds on fresh connections; no log subscriber \
         unless a row says so",
        s.clients,
        s.workers,
        s.seconds.as_secs_f64(),
        s.warmup.as_secs_f64(),
        s.items,
        s.store_calls,
    );
    println!();

    let started = Instant::now();
    http(&s)?;
    println!();
    store(&s)?;
    println!();
    println!("done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn build_kind() -> &'static str {
    if cfg!(debug_assertions) {
        "DEBUG build: figures are not representative"
    } else {
        "release build"
    }
}

// ----- settings -----

struct Settings {
    seconds: Duration,
    warmup: Duration,
    clients: usize,
    workers: usize,
    items: usize,
    store_calls: usize,
    cores: usize,
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let items = number("BENCH_ITEMS", 1000, 100_000)?;
        if items < 4 * PAGE as usize {
            return Err(format!("BENCH_ITEMS must be at least {}", 4 * PAGE).into());
        }
        Ok(Settings {
            seconds: Duration::from_secs(number("BENCH_SECONDS", 5, 60)? as u64),
            warmup: Duration::from_secs(number("BENCH_WARMUP_SECONDS", 1, 10)? as u64),
            clients: number("BENCH_CLIENTS", 4, 64)?,
            workers: number("BENCH_WORKERS", cores, 64)?,
            items,
            store_calls: number("BENCH_STORE_CALLS", 4000, 100_000)?.max(ROUNDS),
            cores,
        })
    }
}

/// A setting from the environment, 1 to `max` (bounded, so the run is).
fn number(name: &str, default: usize, max: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(raw) if !raw.trim().is_empty() => raw
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| format!("{name} must be a whole number from 1 to {max}").into()),
        _ => Ok(default),
    }
}

// ----- data -----

/// A tenant's owner token and the site holding the library.
struct Seeded {
    token: String,
    site: SiteId,
}

/// One PRO tenant, one site and `items` content items, through the use
/// cases (as the CLI and the API would make them).
fn seed(app: &Services, items: usize) -> Result<Seeded> {
    let created = app
        .tenancy
        .create_tenant("Bench", Plan::Pro, "owner@bench.example.com")?;
    let actor = app.tenancy.authenticate(Some(&created.token))?;
    let site = app
        .sites
        .create_site(
            &actor,
            &NewSiteInput {
                domain: "docs.bench.example.com".into(),
                name: "Bench docs".into(),
                allow_subdomains: false,
                theme: None,
            },
        )?
        .value;
    for i in 0..items {
        let mut audiences = vec!["Admins".to_string()];
        if i % 4 == 0 {
            audiences.push("Editors".to_string());
        }
        let input = NewContentInput {
            kind: if i % 2 == 0 { "FLOW" } else { "TOOLTIP" }.into(),
            name: format!("Guide {i:04}: set up feature {}", i % 37),
            description: Some(
                "A walk through the settings page: the buttons to press, \
                 in order, and what each one changes."
                    .into(),
            ),
            status: Some(if i % 3 == 2 { "DRAFT" } else { "PUBLISHED" }.into()),
            audiences,
        };
        app.content.create_content(&actor, site.id, &input)?;
    }
    Ok(Seeded {
        token: created.token,
        site: site.id,
    })
}

// ----- HTTP -----

type ServerFuture = Pin<Box<dyn Future<Output = std::io::Result<()>>>>;

/// A server running on its own thread with its own actix System.
struct Running {
    port: u16,
    handle: ServerHandle,
    thread: thread::JoinHandle<()>,
}

impl Running {
    /// Builds the server inside a fresh actix System on a new thread.
    fn spawn<F>(build: F) -> Result<Running>
    where
        F: FnOnce() -> Result<(u16, ServerHandle, ServerFuture), String> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                match build() {
                    Ok((port, handle, server)) => {
                        let _ = tx.send(Ok((port, handle)));
                        if let Err(e) = server.await {
                            eprintln!("server stopped with an error: {e}");
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        });
        let (port, handle) = rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "a server did not start within 60 s")??;
        Ok(Running {
            port,
            handle,
            thread,
        })
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server and waits for its thread.
    fn stop(self) {
        let handle = self.handle;
        let _ = thread::spawn(move || {
            actix_web::rt::System::new().block_on(handle.stop(true));
        })
        .join();
        let _ = self.thread.join();
    }
}

async fn hello() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"message": "hello"}))
}

/// The baseline: actix-web with one trivial JSON handler and nothing else.
fn bare_server(workers: usize) -> Result<Running> {
    Running::spawn(move || {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let server = HttpServer::new(|| App::new().route("/hello", web::get().to(hello)))
            .workers(workers)
            .listen(listener)
            .map_err(|e| e.to_string())?
            .run();
        let handle = server.handle();
        Ok((port, handle, Box::pin(server) as ServerFuture))
    })
}

/// The real server, as `chatdesk serve` builds it.
fn chatdesk_server(config: Config) -> Result<Running> {
    Running::spawn(move || {
        let app = Application::build(&config, "127.0.0.1:0")?;
        let (port, handle) = (app.port(), app.handle());
        Ok((port, handle, Box::pin(app.run()) as ServerFuture))
    })
}

/// One measured endpoint.
struct Endpoint {
    label: String,
    url: String,
    token: Option<String>,
    /// Whether `serve`'s info-level request log is on while it runs.
    logs: bool,
}

/// From now on, log as `chatdesk serve` does by default (info, compact
/// lines, no colours), but into a sink: the formatting is measured, the
/// write to stderr is not. Before this there is no subscriber at all.
fn start_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::sink)
        .with_ansi(false)
        .compact()
        .try_init();
}

/// What the clients saw in the measured window.
struct Stats {
    requests: usize,
    errors: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
    /// CPU time of the whole process (clients, server, SQLite) per request.
    cpu_per_request: Option<Duration>,
}

fn http(s: &Settings) -> Result<()> {
    let db = TestDatabase::sqlite();
    let mut config = Config::from_env(Some(db.url().to_string()))?;
    config.smtp_url = None;
    config.resend_api_key = None;
    config.workers = Some(s.workers);

    let bare = bare_server(s.workers)?;
    let real = chatdesk_server(config.clone())?;

    let seeding = Instant::now();
    let seeded = seed(&chatdesk::services(chatdesk::open_store(&config)?), s.items)?;
    let seeding = seeding.elapsed();

    let base = real.base();
    let site = seeded.site;
    let token = seeded.token.clone();
    let deep_pages = s.items / PAGE as usize * 3 / 4;
    let cursor = cursor_after(&base, &token, site, deep_pages)?;
    let first_item = deep_pages * PAGE as usize + 1;
    println!(
        "HTTP on 127.0.0.1, SQLite (pool {}), seeded in {} ms",
        config.pool_size,
        seeding.as_millis()
    );

    let bare_hello = |label: &str| Endpoint {
        label: label.to_string(),
        url: format!("{}/hello", bare.base()),
        token: None,
        logs: false,
    };
    let ours = |label: &str, path: String| Endpoint {
        label: label.to_string(),
        url: format!("{base}{path}"),
        token: Some(token.clone()),
        logs: false,
    };
    let endpoints = [
        bare_hello("bare actix-web GET /hello (baseline)"),
        ours("GET /healthz (no database)", "/healthz".into()),
        ours(
            "GET /readyz (blocking hop, pool checkout, SELECT 1)",
            "/readyz".into(),
        ),
        ours("GET /api/v1/me", "/api/v1/me".into()),
        ours("GET /api/v1/sites/{id}", format!("/api/v1/sites/{site}")),
        ours(
            "GET …/content?limit=25 (first page)",
            format!("/api/v1/sites/{site}/content?limit={PAGE}"),
        ),
        ours(
            &format!(
                "GET …/content?limit=25&cursor= (items {first_item}–{})",
                first_item + PAGE as usize - 1
            ),
            format!("/api/v1/sites/{site}/content?limit={PAGE}&cursor={cursor}"),
        ),
        // Logging cannot be turned off again: keep this last but the bare run.
        Endpoint {
            logs: true,
            ..ours(
                "GET /api/v1/me, info request log on (to a sink)",
                "/api/v1/me".into(),
            )
        },
        bare_hello("bare actix-web GET /hello (again, last)"),
    ];

    for e in &endpoints {
        check(e)?;
    }
    let load_before = load_average();
    let mut results = Vec::with_capacity(endpoints.len());
    for e in &endpoints {
        if e.logs {
            start_logging();
        }
        results.push(drive(e, s));
    }

    real.stop();
    bare.stop();
    drop(db);

    let (Some(first), Some(last)) = (results.first(), results.last()) else {
        return Err("no endpoints measured".into());
    };
    let baseline = (first.per_second + last.per_second) / 2.0;
    println!(
        "{:<56} {:>8} {:>7} {:>7} {:>7} {:>6} {:>8}",
        "endpoint", "req/s", "p50 µs", "p99 µs", "CPU µs", "errors", "vs bare"
    );
    for (e, r) in endpoints.iter().zip(&results) {
        let cpu = r.cpu_per_request.map_or_else(
            || "n/a".to_string(),
            |c| format!("{:.1}", c.as_secs_f64() * 1e6),
        );
        println!(
            "{:<56} {:>8.0} {:>7} {:>7} {:>7} {:>6} {:>8.3}",
            e.label,
            r.per_second,
            r.p50.as_micros(),
            r.p99.as_micros(),
            cpu,
            r.errors,
            r.per_second / baseline,
        );
    }
    println!(
        "vs bare = throughput / mean of the two bare runs ({baseline:.0} req/s); CPU µs = CPU \
         time of this whole process (clients, server, SQLite) per request; {} requests \
         measured; load average {} before, {} after",
        results.iter().map(|r| r.requests).sum::<usize>(),
        load_before,
        load_average(),
    );
    let drift = (first.per_second - last.per_second).abs() / baseline;
    if drift > 0.1 {
        println!(
            "NOTE: the two bare runs differ by {:.0}%: req/s is noisy on this machine; \
             the CPU µs column holds up better",
            drift * 100.0
        );
    }
    if results.iter().any(|r| r.errors > 0) {
        return Err("some requests failed; the figures above are not valid".into());
    }
    Ok(())
}

/// The cursor after `pages` pages of the site's library, walked through
/// the API as a client would.
fn cursor_after(base: &str, token: &str, site: SiteId, pages: usize) -> Result<String> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let mut cursor: Option<String> = None;
    for _ in 0..pages {
        let mut url = format!("{base}/api/v1/sites/{site}/content?limit={PAGE}");
        if let Some(c) = &cursor {
            url.push_str("&cursor=");
            url.push_str(c);
        }
        let text = agent
            .get(&url)
            .set("Authorization", &format!("Bearer {token}"))
            .call()?
            .into_string()?;
        let body: serde_json::Value = serde_json::from_str(&text)?;
        let next = body["nextCursor"]
            .as_str()
            .ok_or("the content list ended before the deep page")?;
        cursor = Some(next.to_string());
    }
    cursor.ok_or_else(|| "no pages walked".into())
}

/// One request before the clock starts: the endpoint must answer 200 (and
/// a content page must be full).
fn check(e: &Endpoint) -> Result<()> {
    let mut req = ureq::get(&e.url);
    if let Some(token) = &e.token {
        req = req.set("Authorization", &format!("Bearer {token}"));
    }
    let reply = match req.call() {
        Ok(reply) => reply,
        Err(ureq::Error::Status(status, reply)) => {
            let body = reply.into_string().unwrap_or_default();
            return Err(format!("{}: {status} {body}", e.label).into());
        }
        Err(err) => return Err(format!("{}: {err}", e.label).into()),
    };
    let body: serde_json::Value = serde_json::from_str(&reply.into_string()?)?;
    if let Some(items) = body.get("items").and_then(|i| i.as_array()) {
        if items.len() != PAGE as usize {
            return Err(format!("{}: {} items, not {PAGE}", e.label, items.len()).into());
        }
    }
    Ok(())
}

/// Drives `e` with `s.clients` keep-alive clients: a warm-up, then the
/// measured window. Each client sends its next request when the previous
/// answer has been read (closed loop).
fn drive(e: &Endpoint, s: &Settings) -> Stats {
    let auth = e.token.as_ref().map(|t| format!("Bearer {t}"));
    let start = Instant::now() + s.warmup;
    let end = start + s.seconds;
    let mut cpu = None;
    let per_client: Vec<(Vec<u64>, usize)> = thread::scope(|scope| {
        let clients: Vec<_> = (0..s.clients)
            .map(|_| scope.spawn(|| client(&e.url, auth.as_deref(), start, end)))
            .collect();
        thread::sleep(start.saturating_duration_since(Instant::now()));
        let before = process_cpu();
        thread::sleep(end.saturating_duration_since(Instant::now()));
        cpu = before.zip(process_cpu()).map(|(b, a)| a.saturating_sub(b));
        clients
            .into_iter()
            .map(|c| c.join().unwrap_or_else(|_| (Vec::new(), 1)))
            .collect()
    });
    let errors = per_client.iter().map(|(_, errors)| errors).sum();
    let mut nanos: Vec<u64> = per_client.into_iter().flat_map(|(l, _)| l).collect();
    nanos.sort_unstable();
    let at = |q: usize| {
        Duration::from_nanos(match nanos.len() {
            0 => 0,
            n => nanos[(n - 1) * q / 100],
        })
    };
    Stats {
        requests: nanos.len(),
        errors,
        per_second: nanos.len() as f64 / s.seconds.as_secs_f64(),
        p50: at(50),
        p99: at(99),
        cpu_per_request: cpu
            .filter(|_| !nanos.is_empty())
            .map(|cpu| Duration::from_secs_f64(cpu.as_secs_f64() / nanos.len() as f64)),
    }
}

/// CPU time used so far by this whole process (every thread, ended ones
/// too): `utime + stime` of `/proc/self/stat`, in USER_HZ = 100 ticks.
/// `None` off Linux.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name, which may hold spaces.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The 1-minute load average, to show how busy the machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "n/a".into())
}

/// One client: latencies (ns) of the successful requests sent in
/// `[start, end)`, and how many failed.
fn client(url: &str, auth: Option<&str>, start: Instant, end: Instant) -> (Vec<u64>, usize) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let mut latencies = Vec::with_capacity(64 * 1024);
    let mut errors = 0;
    let mut body = Vec::with_capacity(32 * 1024);
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let mut req = agent.get(url);
        if let Some(auth) = auth {
            req = req.set("Authorization", auth);
        }
        body.clear();
        let ok = match req.call() {
            // Reading to the end hands the connection back for reuse.
            Ok(reply) => {
                reply.status() == 200 && reply.into_reader().read_to_end(&mut body).is_ok()
            }
            Err(_) => false,
        };
        if sent >= start {
            if ok {
                latencies.push(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
            } else {
                errors += 1;
            }
        }
    }
    (latencies, errors)
}

// ----- store -----

/// The page's rows as the hand-written query returns them.
#[derive(QueryableByName)]
#[allow(dead_code)] // read by the driver; only `id` is compared
struct RawContent {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    site_id: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    description: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Text)]
    audiences: String,
    #[diesel(sql_type = Bool)]
    generated: bool,
    #[diesel(sql_type = Timestamp)]
    created_at: NaiveDateTime,
    #[diesel(sql_type = Timestamp)]
    updated_at: NaiveDateTime,
}

const RAW_SQLITE: &str = "SELECT id, site_id, kind, name, description, status, audiences, \
     generated, created_at, updated_at FROM content_items \
     WHERE site_id = ? AND status = ? ORDER BY id LIMIT ?";
const RAW_POSTGRES: &str = "SELECT id, site_id, kind, name, description, status, audiences, \
     generated, created_at, updated_at FROM content_items \
     WHERE site_id = $1 AND status = $2 ORDER BY id LIMIT $3";

type DslRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    bool,
    NaiveDateTime,
    NaiveDateTime,
);

/// The hand-written query (`sql_query`, which diesel prepares on every
/// call) on a plain connection; the repository also fetches limit + 1.
fn raw_page(conn: &mut DbConnection, site: &str) -> QueryResult<Vec<RawContent>> {
    let limit = i64::from(PAGE) + 1;
    match conn {
        DbConnection::Pg(pg) => diesel::sql_query(RAW_POSTGRES)
            .bind::<Text, _>(site)
            .bind::<Text, _>("PUBLISHED")
            .bind::<BigInt, _>(limit)
            .load(pg),
        DbConnection::Sqlite(lite) => diesel::sql_query(RAW_SQLITE)
            .bind::<Text, _>(site)
            .bind::<Text, _>("PUBLISHED")
            .bind::<BigInt, _>(limit)
            .load(lite),
    }
}

/// The same query in diesel's typed DSL on a dedicated connection: its
/// prepared statement is cached, there is no pool and no domain mapping.
fn dsl_page(conn: &mut DbConnection, site: &str) -> QueryResult<Vec<DslRow>> {
    use content_items::dsl as c;
    c::content_items
        .filter(c::site_id.eq(site))
        .filter(c::status.eq("PUBLISHED"))
        .order(c::id.asc())
        .limit(i64::from(PAGE) + 1)
        .select((
            c::id,
            c::site_id,
            c::kind,
            c::name,
            c::description,
            c::status,
            c::audiences,
            c::generated,
            c::created_at,
            c::updated_at,
        ))
        .load(conn)
}

fn store(s: &Settings) -> Result<()> {
    println!(
        "Store: one page of {PAGE} PUBLISHED items (first page, no cursor), \
         µs per call (mean of {ROUNDS} rounds), single thread"
    );
    println!(
        "{:<10} {:>10} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "backend", "repository", "raw SQL", "typed DSL", "DSL+ping", "repo/raw", "repo/DSL"
    );
    let sqlite = TestDatabase::sqlite();
    store_on("SQLite", &sqlite, s)?;
    match TestDatabase::postgres() {
        Some(pg) => store_on("PostgreSQL", &pg, s)?,
        None => println!(
            "{:<10} skipped: not reachable (TEST_DATABASE_URL)",
            "PostgreSQL"
        ),
    }
    println!(
        "repository = Store::list_content (pool checkout with its SELECT 1 test, boxed \
         query, rows to domain types); raw SQL = the baseline, hand-written sql_query on a \
         dedicated connection, rows to plain structs (diesel prepares it on every call); \
         typed DSL = the same query in diesel's DSL on a dedicated connection (prepared \
         once, cached); DSL+ping = that query preceded by the SELECT 1 that r2d2 runs on \
         every checkout"
    );
    Ok(())
}

fn store_on(name: &str, db: &TestDatabase, s: &Settings) -> Result<()> {
    let url = db.url();
    let seeded = {
        let store = Store::open(url, 4)?;
        store.run_migrations()?;
        seed(&chatdesk::services(store), s.items)?
    };
    let mut conn = chatdesk_store::connect(url)?;
    if conn.backend() == Backend::Postgres {
        // What autovacuum would have done within a minute in production:
        // without statistics the planner may sort the whole library.
        conn.batch_execute("ANALYZE content_items")?;
    }
    let site = seeded.site;
    let site_text = site.to_string();
    let filter = ContentFilter {
        status: Some(ContentStatus::Published),
        ..ContentFilter::default()
    };
    let first_page = PageRequest {
        limit: PAGE,
        after: None,
    };

    // The three queries must return the same page.
    let repo_ids: Vec<String> = Store::open(url, 1)?
        .list_content(site, &filter, &first_page)?
        .items
        .iter()
        .map(|i| i.id.to_string())
        .collect();
    let raw_ids: Vec<String> = raw_page(&mut conn, &site_text)?
        .into_iter()
        .take(PAGE as usize)
        .map(|r| r.id)
        .collect();
    let dsl_ids: Vec<String> = dsl_page(&mut conn, &site_text)?
        .into_iter()
        .take(PAGE as usize)
        .map(|r| r.0)
        .collect();
    if repo_ids.len() != PAGE as usize || repo_ids != raw_ids || repo_ids != dsl_ids {
        return Err(format!("{name}: the repository, raw SQL and DSL pages differ").into());
    }
    drop(conn);

    let per_round = s.store_calls / ROUNDS;
    let warmup = (per_round / 10).max(20);
    // µs per call of each variant in each round.
    let mut rounds: Vec<[f64; 4]> = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        // Fresh connections every round: on a small VM a PostgreSQL round
        // trip costs more or less depending on where the kernel runs that
        // connection's backend process, and that sticks to the connection.
        let store = Store::open(url, 1)?; // one pooled connection
        let mut raw_conn = chatdesk_store::connect(url)?;
        let mut dsl_conn = chatdesk_store::connect(url)?;
        let mut ping_conn = chatdesk_store::connect(url)?;
        let mut repo = || -> Result<()> {
            black_box(store.list_content(site, &filter, &first_page)?);
            Ok(())
        };
        let mut raw = || -> Result<()> {
            black_box(raw_page(&mut raw_conn, &site_text)?);
            Ok(())
        };
        let mut dsl = || -> Result<()> {
            black_box(dsl_page(&mut dsl_conn, &site_text)?);
            Ok(())
        };
        // What the pool's test on checkout adds to a query: one more round trip.
        let mut dsl_after_ping = || -> Result<()> {
            ping_conn.ping()?;
            black_box(dsl_page(&mut ping_conn, &site_text)?);
            Ok(())
        };
        let mut variants: [&mut dyn FnMut() -> Result<()>; 4] =
            [&mut repo, &mut raw, &mut dsl, &mut dsl_after_ping];
        let mut round = [0.0; 4];
        for (f, micros) in variants.iter_mut().zip(round.iter_mut()) {
            for _ in 0..warmup {
                f()?;
            }
            let t = Instant::now();
            for _ in 0..per_round {
                f()?;
            }
            *micros = t.elapsed().as_secs_f64() * 1e6 / per_round as f64;
        }
        rounds.push(round);
    }
    // Every round has the same number of calls: the mean of the rounds is
    // the mean of all calls.
    let column = |i: usize| rounds.iter().map(|r| r[i]).sum::<f64>() / rounds.len() as f64;
    let ratio = |i: usize, j: usize| column(i) / column(j);
    println!(
        "{:<10} {:>10.1} {:>9.1} {:>9.1} {:>9.1} {:>10.2} {:>10.2}",
        name,
        column(0),
        column(1),
        column(2),
        column(3),
        ratio(0, 1),
        ratio(0, 2),
    );
    Ok(())
}
