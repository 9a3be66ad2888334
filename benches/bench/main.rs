//! `make bench` (`cargo bench --bench bench`): what chatdesk costs, as
//! ratios to baselines measured in the same run.
//!
//! - Widget script: `GET /widget.js` as a browser downloads it, its
//!   gzipped size against the 15 KiB budget, and its revalidation.
//! - SDK config: `GET /api/v1/sdk/chat/config` from the warm per-key
//!   cache, with and without the site's `Origin`, against a bare actix-web
//!   server (the same worker count) and chatdesk's `/healthz`, taking turns
//!   in rounds; the target is 0.7 of the bare server's throughput.
//! - Visitor mix: open a session, ask a question naming a published item,
//!   vote UP, through HTTP against the same writes as hand-written SQL in
//!   one transaction, with the same client threads, on SQLite and, when it
//!   answers, PostgreSQL (`TEST_DATABASE_URL`).
//! - HTTP: a bare actix-web server with one trivial JSON handler (the same
//!   worker count) against the real chatdesk server on a fresh SQLite
//!   database with one PRO tenant, one site and a library of content items.
//!   Each endpoint is driven for a fixed time over keep-alive connections
//!   (by `wrk` when installed); the figures are requests per second, p50
//!   and p99 latency, the server process's CPU time per request (which
//!   holds up on a busy machine), its peak RSS, and the throughput as a
//!   share of the bare server's.
//! - Store: `Store::list_content` (first page, a status filter) against the
//!   same page fetched with hand-written SQL on a dedicated connection, on
//!   SQLite and, when it answers, PostgreSQL (`TEST_DATABASE_URL`); two more
//!   variants (the query in diesel's DSL, alone and after the pool's
//!   checkout `SELECT 1`) show where the difference goes.
//! - Matcher: building an `AnswerIndex` over 10,000 generated published
//!   items, and `find_answer` for questions that name an item, describe one
//!   in other words, match nothing, or run to 2,000 characters.
//!
//! Every server is a child process (see `serve.rs` and `servers.rs`):
//! `chatdesk serve` from the release binary, and the bare baseline this
//! program started again; with two cores or more they run on the first
//! half of the cores and this program (its client threads, and `wrk`) on
//! the other half, so the load generator does not take the server's CPU
//! and each row shows how busy both sides were.
//!
//! Everything targets 127.0.0.1, takes about three minutes after the
//! build, and stops by itself. `make bench` runs it with the two other
//! programs (benches/run-all.sh). Settings come from the environment: `BENCH_SECONDS` (5 per dashboard
//! endpoint, at most 60), `BENCH_CONFIG_ROUNDS` (10 rounds of 1 s per SDK
//! config row), `BENCH_MIX_SECONDS` (3 per visitor-mix window),
//! `BENCH_MIX_ROUNDS` (2), `BENCH_WARMUP_SECONDS` (1), `BENCH_CLIENTS`
//! (4 connections), `BENCH_WORKERS` (one per server core), `BENCH_PIN=0`
//! (no pinning), `BENCH_WRK=0` (client threads, not wrk), `BENCH_ITEMS` (1000),
//! `BENCH_STORE_CALLS` (4000 per variant), `BENCH_MATCHER_ITEMS` (10000),
//! `BENCH_MATCHER_QUESTIONS` (300 per kind), `BENCH_SECTIONS` (the
//! sections to run, by the start of their names, comma-separated:
//! `widget`, `sdk`, `visitor`, `http`, `store`, `matcher`; all when unset).
//!
//! The code: the settings and the run order here; `seed` makes the data
//! (`catalog` generates the libraries), `servers` starts the bare baseline
//! and chatdesk, `load` drives wrk or client threads in a closed loop; `sdk`,
//! `visitor`, `http`, `store` and `matcher` run and print their tables.

mod catalog;
mod http;
mod load;
mod matcher;
mod sdk;
mod seed;
#[path = "../common/serve.rs"]
mod serve;
mod servers;
mod store;
mod visitor;
mod widget;

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
/// The seed of the SDK sites' generated library.
const LIBRARY_SEED: u64 = 0x00c4_a7de_5c00;

fn main() -> Result<()> {
    if let Ok(workers) = std::env::var(servers::BARE_SERVER) {
        return servers::run_bare_server(&workers);
    }
    let s = Settings::from_env()?;
    s.pin.pin_this_process()?;
    println!("chatdesk benchmark ({})", build_kind());
    println!(
        "machine: {} cores (available_parallelism), {} {}",
        s.cores,
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    println!(
        "settings: HTTP {} keep-alive connections (wrk) or client threads, {} server workers each, \
         {} s per dashboard endpoint and {} s per visitor-mix window after {} s warm-up; {} content \
         items per site (dashboard site 2 in 3 PUBLISHED, SDK sites 4 in 5); store {} calls per \
         variant in {ROUNDS} alternating rounds on fresh connections; matcher over {} items, {} \
         questions per kind; no log subscriber unless a row says so",
        s.clients,
        s.workers,
        s.seconds.as_secs_f64(),
        s.mix_seconds.as_secs_f64(),
        s.warmup.as_secs_f64(),
        s.items,
        s.store_calls,
        s.matcher_items,
        s.matcher_questions,
    );
    println!("cores: {}", s.pin.describe());
    println!(
        "load generator: {} for the GET rows, client threads for the visitor mix; servers are \
         child processes (`chatdesk serve` from {}, the bare server this program again), \
         so their CPU and peak RSS (VmHWM, reset when each window starts) are their own",
        s.generator.describe(),
        env!("CARGO_BIN_EXE_chatdesk"),
    );
    println!();

    let started = Instant::now();
    let sections: [(&str, Section); 6] = [
        ("widget script", widget::widget),
        ("SDK config", sdk::config),
        ("visitor mix", visitor::visitor),
        ("HTTP", http::http),
        ("store", store::store),
        ("matcher", matcher::matcher),
    ];
    let chosen = std::env::var("BENCH_SECTIONS").unwrap_or_default();
    let chosen: Vec<String> = chosen
        .split(',')
        .map(|word| word.trim().to_ascii_lowercase())
        .filter(|word| !word.is_empty())
        .collect();
    for (name, section) in sections {
        if !chosen.is_empty()
            && !chosen
                .iter()
                .any(|word| name.to_ascii_lowercase().starts_with(word.as_str()))
        {
            continue;
        }
        let began = Instant::now();
        section(&s)?;
        println!("({name} took {:.0} s)", began.elapsed().as_secs_f64());
        println!();
    }
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

/// One section of the run: measures and prints its tables.
type Section = fn(&Settings) -> Result<()>;

// ----- settings -----

struct Settings {
    seconds: Duration,
    mix_seconds: Duration,
    config_rounds: usize,
    mix_rounds: usize,
    warmup: Duration,
    clients: usize,
    workers: usize,
    items: usize,
    store_calls: usize,
    matcher_items: usize,
    matcher_questions: usize,
    cores: usize,
    pin: serve::Cores,
    generator: load::Generator,
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let pin = serve::Cores::from_env();
        let generator = load::Generator::from_env(cores - pin.server_count().min(cores - 1));
        let items = number("BENCH_ITEMS", 1000, 100_000)?;
        if items < 4 * PAGE as usize {
            return Err(format!("BENCH_ITEMS must be at least {}", 4 * PAGE).into());
        }
        Ok(Settings {
            seconds: Duration::from_secs(number("BENCH_SECONDS", 5, 60)? as u64),
            mix_seconds: Duration::from_secs(number("BENCH_MIX_SECONDS", 3, 60)? as u64),
            config_rounds: number("BENCH_CONFIG_ROUNDS", 10, 60)?,
            mix_rounds: number("BENCH_MIX_ROUNDS", 2, 10)?,
            warmup: Duration::from_secs(number("BENCH_WARMUP_SECONDS", 1, 10)? as u64),
            clients: number("BENCH_CLIENTS", 4, 64)?,
            workers: number("BENCH_WORKERS", pin.server_count(), 64)?,
            items,
            store_calls: number("BENCH_STORE_CALLS", 4000, 100_000)?.max(ROUNDS),
            matcher_items: number("BENCH_MATCHER_ITEMS", 10_000, 50_000)?,
            matcher_questions: number("BENCH_MATCHER_QUESTIONS", 300, 10_000)?,
            cores,
            pin,
            generator,
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
