//! `make chaos` (`cargo bench --bench chaos`): faults, each scenario a
//! program run that prints its figures and ends with PASS or FAIL; the
//! program exits non-zero when any check fails. It stops by itself: every
//! wait has a deadline, and everything it starts (a PostgreSQL cluster of
//! its own, `chatdesk serve` processes, an SMTP server and a model server
//! on threads of this process) listens on 127.0.0.1 only and is stopped at
//! the end, also on failure.
//!
//! 1. Support tickets through the SDK (session, question, DOWN vote,
//!    ticket with an Idempotency-Key, each step retried by the client)
//!    while the SMTP server is down for a minute and chatdesk is killed
//!    with SIGKILL and started again; then every ticket exists once, every
//!    email arrived, a repeat only for one being sent at a fault.
//! 2. PostgreSQL stopped and started while visitors and the dashboard
//!    call: 503 DATABASE_UNAVAILABLE with Retry-After meanwhile, every
//!    call answered within a bound, serving again within 5 s of its
//!    return, `/readyz` following, every acknowledged write kept.
//! 3. Two chatdesk processes on one PostgreSQL: the per-session rate
//!    limit, credits, vote counters and email delivery exact.
//!
//! PostgreSQL is a throw-away cluster (`initdb` into a temporary
//! directory, run as the `postgres` OS user on a free port), never the
//! machine's shared server.
//!
//! Settings: `CHAOS_TICKETS` (1000), `CHAOS_SMTP_OUTAGE_SECONDS` (60),
//! `CHAOS_KILLS` (2), `CHAOS_CREATE_SECONDS` (60: the tickets are paced
//! over this long), `CHAOS_DRAIN_TIMEOUT_SECONDS` (300), `CHAOS_CLIENTS`
//! (4 client threads), `CHAOS_PG_OUTAGE_SECONDS` (8),
//! `CHAOS_MAX_LATENCY_MS` (5000: no call may take longer),
//! `CHAOS_REPLICA_VISITORS` (60), `CHAOS_SCENARIOS` (`1,2,3`).

mod cleanup;
mod http;
mod kills;
mod mailbox;
mod outage;
mod pg;
mod replicas;
mod seed;
mod server;
mod visitor;

use std::error::Error;
use std::thread;
use std::time::{Duration, Instant};

type BoxError = Box<dyn Error>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

pub(crate) struct Settings {
    tickets: usize,
    smtp_outage: Duration,
    kills: usize,
    create: Duration,
    drain_timeout: Duration,
    clients: usize,
    pg_before: Duration,
    pg_outage: Duration,
    pg_after: Duration,
    max_latency: Duration,
    replica_visitors: usize,
    scenarios: Vec<u8>,
}

/// A setting from the environment, `min` to `max` (bounded, so the run is).
fn number(name: &str, default: u64, min: u64, max: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(raw) if !raw.trim().is_empty() => raw
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| format!("{name} must be a whole number from {min} to {max}").into()),
        _ => Ok(default),
    }
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let secs = |name, default, max| -> Result<Duration> {
            Ok(Duration::from_secs(number(name, default, 1, max)?))
        };
        let scenarios = std::env::var("CHAOS_SCENARIOS")
            .unwrap_or_else(|_| "1,2,3".into())
            .split(',')
            .map(|s| s.trim().parse::<u8>().ok().filter(|n| (1..=3).contains(n)))
            .collect::<Option<Vec<u8>>>()
            .ok_or("CHAOS_SCENARIOS lists scenarios 1, 2 and 3, e.g. `1,3`")?;
        Ok(Settings {
            tickets: number("CHAOS_TICKETS", 1000, 1, 20_000)? as usize,
            smtp_outage: secs("CHAOS_SMTP_OUTAGE_SECONDS", 60, 600)?,
            kills: number("CHAOS_KILLS", 2, 0, 10)? as usize,
            create: secs("CHAOS_CREATE_SECONDS", 60, 600)?,
            drain_timeout: secs("CHAOS_DRAIN_TIMEOUT_SECONDS", 300, 1800)?,
            clients: number("CHAOS_CLIENTS", 4, 1, 32)? as usize,
            pg_before: Duration::from_secs(5),
            pg_outage: secs("CHAOS_PG_OUTAGE_SECONDS", 8, 120)?,
            pg_after: Duration::from_secs(8),
            max_latency: Duration::from_millis(number("CHAOS_MAX_LATENCY_MS", 5000, 100, 60_000)?),
            replica_visitors: number("CHAOS_REPLICA_VISITORS", 60, 1, 2000)? as usize,
            scenarios,
        })
    }
}

/// Prints a check's outcome; returns whether it passed.
pub(crate) fn verdict(pass: bool, what: &str) -> bool {
    println!("{} {what}", if pass { "PASS" } else { "FAIL" });
    pass
}

fn main() {
    let started = Instant::now();
    let outcome = run();
    let elapsed = started.elapsed().as_secs_f64();
    match outcome {
        Ok(true) => println!("\nchaos: PASS in {elapsed:.0} s"),
        Ok(false) => {
            println!("\nchaos: FAIL in {elapsed:.0} s");
            std::process::exit(1);
        }
        Err(e) => {
            println!("\nchaos: FAIL after {elapsed:.0} s: {e}");
            std::process::exit(2);
        }
    }
}

fn run() -> Result<bool> {
    let s = Settings::from_env()?;
    cleanup::on_signal_stop_everything()?;
    println!(
        "chatdesk faults ({}); {} cores, {} {}",
        if cfg!(debug_assertions) {
            "DEBUG build"
        } else {
            "release build"
        },
        thread::available_parallelism().map_or(1, |n| n.get()),
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    let mut pass = true;
    for scenario in &s.scenarios {
        let result = match scenario {
            1 => kills::run(&s),
            2 => outage::run(&s),
            _ => replicas::run(&s),
        };
        match result {
            Ok(ok) => pass &= ok,
            Err(e) => {
                println!("FAIL scenario {scenario} could not run: {e}");
                pass = false;
            }
        }
    }
    Ok(pass)
}
