//! `make bench-tickets` (`cargo bench --bench tickets`): opening support
//! tickets while the mail server is slow, and the delivery of a backlog
//! once it is back.
//!
//! On SQLite (a fresh temporary database) and, when `TEST_DATABASE_URL`
//! answers, on PostgreSQL (a schema of its own, dropped at the end), all
//! on 127.0.0.1:
//!
//! 1. `chatdesk serve` (the release binary cargo built with the bench:
//!    the HTTP server and the delivery worker) runs as a child process,
//!    on the servers' cores when there are two or more (`serve.rs`), with
//!    `SMTP_URL` pointing at `FakeSmtpServer`, an SMTP server on a thread
//!    of this process; its peak RSS (VmHWM) is read for each phase. One PRO tenant and one mapped site with
//!    a published widget (whose support address receives the tickets) and
//!    a published Flow are made through the use cases; then `2 × N + M`
//!    visitor sessions, each with a matched answer voted DOWN, through the
//!    SDK over HTTP.
//! 2. Phase A: the SMTP server accepts each message only 2 s after its
//!    data (`BENCH_SMTP_DELAY_MS`). N tickets are opened
//!    (`POST /api/v1/sdk/chat/sessions/{id}/tickets`) from a few client
//!    threads, each request's latency recorded; then the bench watches
//!    what the slow server accepts for a while.
//! 3. The slow server is stopped and a fast one started on the same port;
//!    the rest of phase A's emails are waited for. Phase B: N more
//!    tickets with SMTP fast; then their emails are waited for. Target:
//!    phase A's p95 within 5 ms of phase B's, far below the SMTP delay
//!    (creation does not wait for mail).
//! 4. Phase C: the SMTP server is stopped (nothing listens on its port);
//!    M tickets are opened; after `BENCH_OUTAGE_SECONDS` the outbox is read
//!    (every email tried and PENDING, its next retry scheduled); then a
//!    fast SMTP server is started on the same port and the time until the
//!    last of the M emails (distinct Message-IDs) arrives is measured,
//!    with the worker's throughput from the first arrival to the last.
//!
//! Settings: `BENCH_TICKETS` (100 per phase A and B), `BENCH_BACKLOG` (200,
//! phase C), `BENCH_CLIENTS` (4 client threads), `BENCH_WORKERS` (server
//! workers, one per server core), `BENCH_PIN=0` (no pinning), `BENCH_SMTP_DELAY_MS` (2000),
//! `BENCH_WATCH_SECONDS` (10: how long the slow server is watched after
//! phase A), `BENCH_OUTAGE_SECONDS` (10: from the last phase C ticket to
//! SMTP's return), `BENCH_DRAIN_TIMEOUT_SECONDS` (180: each wait for
//! emails fails after it), `BENCH_POSTGRES=0` to skip PostgreSQL.

mod measure;
mod seed;
#[path = "../common/serve.rs"]
mod serve;

use std::collections::HashSet;
use std::error::Error;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use chatdesk::config::Config;
use chatdesk_mail::testing::FakeSmtpServer;
use chatdesk_store::testing::TestDatabase;

use crate::measure::{open_tickets, received, wait_delivered, Drain, Latencies, Outbox};
use crate::serve::{mib, Child, Cores, Serve};

type BoxError = Box<dyn Error>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

/// Phase A's p95 may be this much over phase B's.
const A_OVER_B_MS: f64 = 5.0;

struct Settings {
    tickets: usize,
    backlog: usize,
    clients: usize,
    workers: usize,
    delay: Duration,
    watch: Duration,
    outage: Duration,
    drain_timeout: Duration,
    postgres: bool,
    cores: Cores,
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let cores = Cores::from_env();
        Ok(Settings {
            tickets: number("BENCH_TICKETS", 100, 10_000)?,
            backlog: number("BENCH_BACKLOG", 200, 10_000)?,
            clients: number("BENCH_CLIENTS", 4, 64)?,
            workers: number("BENCH_WORKERS", cores.server_count(), 64)?,
            delay: Duration::from_millis(number("BENCH_SMTP_DELAY_MS", 2000, 9000)? as u64),
            watch: Duration::from_secs(number("BENCH_WATCH_SECONDS", 10, 600)? as u64),
            outage: Duration::from_secs(number("BENCH_OUTAGE_SECONDS", 10, 600)? as u64),
            drain_timeout: Duration::from_secs(
                number("BENCH_DRAIN_TIMEOUT_SECONDS", 180, 3600)? as u64
            ),
            postgres: std::env::var("BENCH_POSTGRES").map_or(true, |v| v.trim() != "0"),
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

/// One backend's figures.
struct Figures {
    backend: &'static str,
    a: Latencies,
    b: Latencies,
    c: Latencies,
    /// Phase A's emails the slow server accepted while watched, and the
    /// time from phase A's start.
    slow_accepted: usize,
    slow_window: Duration,
    /// The server's RSS before phase A and its peak in each phase
    /// (KiB; the peak is reset when a phase starts).
    rss_idle: u64,
    peaks: [u64; 3],
    /// What each phase cost: the server's CPU time, and how busy the
    /// servers' and the clients' cores were.
    spent: [Spent; 3],
    /// The rest of phase A's emails once SMTP was fast.
    a_rest: usize,
    a_drain: Drain,
    /// Phase B's emails, from phase B's start.
    b_drain: Drain,
    /// Phase C: how long SMTP was down, the outbox then, the latest
    /// scheduled retry after SMTP's return (s; negative: already due).
    down_for: Duration,
    before: Outbox,
    latest_retry_after_return: Option<f64>,
    c_drain: Drain,
    after: Outbox,
}

fn build_kind() -> &'static str {
    if cfg!(debug_assertions) {
        "DEBUG build: figures are not representative"
    } else {
        "release build"
    }
}

fn set(ids: &[String]) -> HashSet<String> {
    ids.iter().cloned().collect()
}

/// A phase's start: the server's CPU time and the cores' ticks.
struct Mark {
    cpu: Option<Duration>,
    ticks: Option<(serve::CoreTicks, serve::CoreTicks)>,
}

/// What a phase cost.
#[derive(Default, Clone, Copy)]
struct Spent {
    server_cpu: Option<Duration>,
    server_busy: Option<f64>,
    client_busy: Option<f64>,
}

fn mark(server: &Child, cores: &Cores) -> Mark {
    Mark {
        cpu: server.cpu(),
        ticks: cores.ticks(),
    }
}

fn spent(m: Mark, server: &Child, cores: &Cores) -> Spent {
    let ((s0, c0), (s1, c1)) = m.ticks.zip(cores.ticks()).unwrap_or_default();
    Spent {
        server_cpu: m.cpu.zip(server.cpu()).map(|(b, a)| a.saturating_sub(b)),
        server_busy: s0.busy_until(s1),
        client_busy: c0.busy_until(c1),
    }
}

/// The whole run on one database.
fn run_on(backend: &'static str, db: &TestDatabase, s: &Settings) -> Result<Figures> {
    let any: SocketAddr = "127.0.0.1:0".parse()?;
    let slow = FakeSmtpServer::start_slow_at(any, s.delay)?;
    let addr = slow.addr();
    let config = Config::from_env(Some(db.url().to_string()))?;
    let server = Child::serve(
        &s.cores,
        Serve {
            database_url: db.url(),
            workers: s.workers,
            log: "warn",
            env: vec![("SMTP_URL", slow.url())],
            tag: "tickets",
        },
    )?;
    let base = server.base().to_string();
    let t = Instant::now();
    let key = seed::seed_site(&chatdesk::services(
        chatdesk::open_store(&config)?,
        None,
        false,
    ))?;
    let all = seed::sessions(&base, &key, 2 * s.tickets + s.backlog, s.clients)?;
    let (for_a, rest) = all.split_at(s.tickets);
    let (for_b, for_c) = rest.split_at(s.tickets);
    println!(
        "{backend}: {} sessions with a DOWN vote seeded through the SDK in {:.1} s; SMTP on {addr}",
        all.len(),
        t.elapsed().as_secs_f64()
    );

    // Phase A: SMTP slow.
    let rss_idle = server.memory()?.rss;
    server.reset_peak()?;
    let mark_a = mark(&server, &s.cores);
    let started_a = Instant::now();
    let (a, a_ids) = open_tickets(&base, &key, for_a, s.clients, "A")?;
    println!(
        "{backend} A (SMTP {} ms per message): {} tickets in {:.2} s, p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        s.delay.as_millis(),
        a.count(),
        a.wall.as_secs_f64(),
        a.ms(50.0),
        a.ms(95.0),
        a.max_ms()
    );
    thread::sleep(s.watch);
    let a_set = set(&a_ids);
    let slow_got = received(&slow, &a_set);
    let slow_window = started_a.elapsed();
    println!(
        "{backend} A: the slow server accepted {} emails in {:.1} s after phase A began",
        slow_got.len(),
        slow_window.as_secs_f64()
    );
    // Fast SMTP on the same port; the send in flight is cut off (retried).
    drop(slow);
    let fast = FakeSmtpServer::start_at(addr)?;
    let back = Instant::now();
    let a_rest: HashSet<String> = a_set.difference(&slow_got).cloned().collect();
    let a_drain = wait_delivered(&fast, &a_rest, back, s.drain_timeout)
        .map_err(|e| format!("{backend}, the rest of phase A: {e}"))?;
    println!(
        "{backend} A: the other {} emails arrived {:.1} s after SMTP turned fast",
        a_rest.len(),
        a_drain.last.as_secs_f64()
    );

    // Phase B: SMTP fast.
    let peak_a = server.memory()?.peak;
    let spent_a = spent(mark_a, &server, &s.cores);
    server.reset_peak()?;
    let mark_b = mark(&server, &s.cores);
    let started_b = Instant::now();
    let (b, b_ids) = open_tickets(&base, &key, for_b, s.clients, "B")?;
    println!(
        "{backend} B (SMTP fast): {} tickets in {:.2} s, p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        b.count(),
        b.wall.as_secs_f64(),
        b.ms(50.0),
        b.ms(95.0),
        b.max_ms()
    );
    let b_drain = wait_delivered(&fast, &set(&b_ids), started_b, s.drain_timeout)
        .map_err(|e| format!("{backend}, phase B: {e}"))?;
    println!(
        "{backend} B: every email arrived {:.2} s after phase B began",
        b_drain.last.as_secs_f64()
    );

    // Phase C: SMTP down, then back.
    let peak_b = server.memory()?.peak;
    let spent_b = spent(mark_b, &server, &s.cores);
    server.reset_peak()?;
    let mark_c = mark(&server, &s.cores);
    drop(fast);
    let started_c = Instant::now();
    let (c, c_ids) = open_tickets(&base, &key, for_c, s.clients, "C")?;
    println!(
        "{backend} C (SMTP down): {} tickets in {:.2} s, p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        c.count(),
        c.wall.as_secs_f64(),
        c.ms(50.0),
        c.ms(95.0),
        c.max_ms()
    );
    thread::sleep(s.outage);
    let before = Outbox::read(db.url(), &c_ids)?;
    let down_for = started_c.elapsed();
    let returned = FakeSmtpServer::start_at(addr)?;
    let back = Instant::now();
    let back_wall = chrono::Utc::now().naive_utc();
    let latest_retry_after_return = before
        .latest_retry
        .map(|at| (at - back_wall).num_milliseconds() as f64 / 1000.0);
    println!(
        "{backend} C: after {:.1} s down, the outbox held {} ({}); SMTP is back",
        down_for.as_secs_f64(),
        before.statuses(),
        before.attempts()
    );
    let c_drain = wait_delivered(&returned, &set(&c_ids), back, s.drain_timeout)
        .map_err(|e| format!("{backend}, phase C: {e}"))?;
    println!(
        "{backend} C: first email {:.2} s, last {:.2} s after SMTP came back; {:.1} emails/s",
        c_drain.first.as_secs_f64(),
        c_drain.last.as_secs_f64(),
        c_drain.rate(c_ids.len())
    );
    // Give the worker a moment to record the last sends.
    thread::sleep(Duration::from_secs(1));
    let every: Vec<String> = a_ids.iter().chain(&b_ids).chain(&c_ids).cloned().collect();
    let after = Outbox::read(db.url(), &every)?;
    let peak_c = server.memory()?.peak;
    let spent_c = spent(mark_c, &server, &s.cores);
    drop(server);
    drop(returned);
    Ok(Figures {
        backend,
        a,
        b,
        c,
        slow_accepted: slow_got.len(),
        slow_window,
        rss_idle,
        peaks: [peak_a, peak_b, peak_c],
        spent: [spent_a, spent_b, spent_c],
        a_rest: a_rest.len(),
        a_drain,
        b_drain,
        down_for,
        before,
        latest_retry_after_return,
        c_drain,
        after,
    })
}

fn report(figures: &[Figures], s: &Settings) -> bool {
    println!();
    println!("## Ticket creation (POST …/tickets), ms");
    println!(
        "| backend | phase | SMTP | tickets | p50 | p95 | max | tickets/s | server peak RSS MiB | server CPU s | srv busy | cli busy |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let percent =
        |b: Option<f64>| b.map_or_else(|| "n/a".to_string(), |b| format!("{:.0}%", b * 100.0));
    for f in figures {
        for (i, (phase, smtp, l)) in [
            (
                "A",
                format!("slow ({} ms/message)", s.delay.as_millis()),
                &f.a,
            ),
            ("B", "fast".to_string(), &f.b),
            ("C", "down".to_string(), &f.c),
        ]
        .into_iter()
        .enumerate()
        {
            println!(
                "| {} | {phase} | {smtp} | {} | {:.2} | {:.2} | {:.2} | {:.0} | {} | {} | {} | {} |",
                f.backend,
                l.count(),
                l.ms(50.0),
                l.ms(95.0),
                l.max_ms(),
                l.count() as f64 / l.wall.as_secs_f64(),
                mib(f.peaks[i]),
                f.spent[i]
                    .server_cpu
                    .map_or_else(|| "n/a".to_string(), |c| format!("{:.2}", c.as_secs_f64())),
                percent(f.spent[i].server_busy),
                percent(f.spent[i].client_busy),
            );
        }
    }
    println!(
        "server peak RSS = VmHWM of the `chatdesk serve` process, reset when the phase starts, \
         read when its emails are in (phase C: after the backlog's delivery); server CPU = its \
         CPU time over the same span; srv, cli busy = how busy the servers' and the clients' \
         (bench and SMTP server) cores were over it; RSS before phase A: {}",
        figures
            .iter()
            .map(|f| format!("{} {} MiB", f.backend, mib(f.rss_idle)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!();
    println!("## Delivery");
    println!("| backend | what | emails | first s | last s | emails/s |");
    println!("|---|---|---:|---:|---:|---:|");
    for f in figures {
        println!(
            "| {} | A, slow SMTP, from phase A's start (accepted in the window) | {} | – | {:.1} | {:.2} |",
            f.backend,
            f.slow_accepted,
            f.slow_window.as_secs_f64(),
            f.slow_accepted as f64 / f.slow_window.as_secs_f64()
        );
        println!(
            "| {} | A's rest, from SMTP turning fast | {} | {:.2} | {:.2} | {:.1} |",
            f.backend,
            f.a_rest,
            f.a_drain.first.as_secs_f64(),
            f.a_drain.last.as_secs_f64(),
            f.a_drain.rate(f.a_rest)
        );
        println!(
            "| {} | B, fast SMTP, from phase B's start | {} | {:.2} | {:.2} | {:.1} |",
            f.backend,
            f.b.count(),
            f.b_drain.first.as_secs_f64(),
            f.b_drain.last.as_secs_f64(),
            f.b_drain.rate(f.b.count())
        );
        println!(
            "| {} | C backlog, from SMTP's return | {} | {:.2} | {:.2} | {:.1} |",
            f.backend,
            f.c.count(),
            f.c_drain.first.as_secs_f64(),
            f.c_drain.last.as_secs_f64(),
            f.c_drain.rate(f.c.count())
        );
    }
    println!();
    for f in figures {
        println!(
            "{}: phase C's outage lasted {:.1} s; the outbox then: {} ({}); latest retry scheduled {} \
             after SMTP's return. At the end: {} ({}); repeated deliveries: {}",
            f.backend,
            f.down_for.as_secs_f64(),
            f.before.statuses(),
            f.before.attempts(),
            f.latest_retry_after_return
                .map_or("–".to_string(), |s| format!("{s:.1} s")),
            f.after.statuses(),
            f.after.attempts(),
            f.a_drain.repeats + f.b_drain.repeats + f.c_drain.repeats
        );
    }
    println!();
    println!("## Verdict");
    let mut pass = true;
    for f in figures {
        let (a95, b95) = (f.a.ms(95.0), f.b.ms(95.0));
        let near = a95 - b95 <= A_OVER_B_MS;
        let far = a95 < s.delay.as_secs_f64() * 1000.0 / 10.0;
        println!(
            "{}: {} phase A's p95 {a95:.2} ms is {:+.2} ms from phase B's {b95:.2} ms (ratio {:.2}; \
             target within {A_OVER_B_MS} ms); {} it is {} a tenth of the SMTP delay",
            f.backend,
            if near { "PASS" } else { "FAIL" },
            a95 - b95,
            a95 / b95,
            if far { "PASS" } else { "FAIL" },
            if far { "under" } else { "over" }
        );
        let all = f.a.count() + f.b.count() + f.c.count();
        let sent = f.after.statuses.get("SENT").copied().unwrap_or(0);
        let repeats = f.a_drain.repeats + f.b_drain.repeats + f.c_drain.repeats;
        let delivered = sent == all && repeats == 0;
        println!(
            "{}: {} {sent} of {all} emails SENT, {repeats} received twice",
            f.backend,
            if delivered { "PASS" } else { "FAIL" }
        );
        pass &= near && far && delivered;
    }
    pass
}

fn main() -> Result<()> {
    let s = Settings::from_env()?;
    s.cores.pin_this_process()?;
    let started = Instant::now();
    println!("chatdesk support-ticket benchmark ({})", build_kind());
    println!(
        "machine: {} cores (available_parallelism), {} {}",
        thread::available_parallelism().map_or(1, |n| n.get()),
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    println!(
        "settings: {} tickets per phase A and B, a backlog of {} (phase C), {} client threads, {} \
         server workers, SMTP delay {} ms, slow server watched {} s, outage {} s after the last \
         phase C ticket",
        s.tickets,
        s.backlog,
        s.clients,
        s.workers,
        s.delay.as_millis(),
        s.watch.as_secs(),
        s.outage.as_secs()
    );
    println!("cores: {}", s.cores.describe());
    let mut figures = Vec::new();
    let sqlite = TestDatabase::sqlite();
    figures.push(run_on("SQLite", &sqlite, &s)?);
    drop(sqlite);
    if s.postgres {
        match TestDatabase::postgres() {
            Some(pg) => {
                figures.push(run_on("PostgreSQL", &pg, &s)?);
                drop(pg);
            }
            None => println!("PostgreSQL: skipped, not reachable (TEST_DATABASE_URL)"),
        }
    } else {
        println!("PostgreSQL: skipped (BENCH_POSTGRES=0)");
    }
    let pass = report(&figures, &s);
    println!(
        "done in {:.0} s: {}",
        started.elapsed().as_secs_f64(),
        if pass { "PASS" } else { "FAIL" }
    );
    Ok(())
}
