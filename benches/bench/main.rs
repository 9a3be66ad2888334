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
//!
//! The code: the settings and the run order here; `seed` makes the data,
//! `servers` starts the bare baseline and chatdesk, `load` drives one
//! endpoint with client threads, `http` and `store` run and print their
//! tables.

mod http;
mod load;
mod seed;
mod servers;
mod store;

use std::error::Error;
use std::thread;
use std::time::{Duration, Instant};

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
    http::http(&s)?;
    println!();
    store::store(&s)?;
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
