//! The widget's config route, `GET /api/v1/sdk/chat/config`, against the
//! bare actix-web server in the same run: the route answers from the
//! per-key gate cache (no database, no blocking-pool hop) once it is warm,
//! so it should come close to the bare server. Target: at least 0.7 of
//! the bare server's throughput.
//!
//! The bare server, chatdesk's `/healthz` (its middleware and no
//! database), the config route and the config route with the site's
//! `Origin` (the SDK's CORS middleware and the origin check) take turns
//! in short rounds, so a slow patch of the machine (another process
//! starting) hits them alike; each figure is the median over the rounds,
//! and each ratio the median of the per-round ratios.
//!
//! Both servers are child processes on the servers' cores and the load
//! generator (wrk when installed) runs on the others (see `serve.rs`), so
//! the servers' CPU time per request and peak RSS are their own; the bare
//! server's CPU per request divided by a row's is a second estimate of
//! the throughput ratio, and the clients' cores' busy share shows the
//! load generator was not the limit.

use std::time::{Duration, Instant};

use chatdesk_store::testing::TestDatabase;

use crate::catalog::library;
use crate::load::{check, drive, load_average, Endpoint, Probe, Stats, Window};
use crate::seed::seed_widget_site;
use crate::serve::mib;
use crate::servers::{bare_server, chatdesk_server, config_for};
use crate::{Result, Settings, LIBRARY_SEED};

/// The throughput the config route should reach, as a share of the bare
/// server's.
pub(crate) const TARGET: f64 = 0.7;

/// Each row's turn in a round: the clients only need to connect first.
const WINDOW: Window = Window {
    warmup: Duration::from_millis(250),
    seconds: Duration::from_secs(1),
};

/// The site's domain: its pages are on `https://help.bench.example.com`.
pub(crate) const DOMAIN: &str = "help.bench.example.com";

pub(crate) fn config(s: &Settings) -> Result<()> {
    let db = TestDatabase::sqlite();
    let config = config_for(db.url())?;
    let bare = bare_server(&s.pin, s.workers)?;
    let real = chatdesk_server(&s.pin, db.url(), s.workers, "warn", "sdk")?;
    let seeding = Instant::now();
    let site = seed_widget_site(
        &chatdesk::services(chatdesk::open_store(&config)?, None, false),
        DOMAIN,
        &library(s.items, LIBRARY_SEED),
    )?;
    println!(
        "SDK config route on 127.0.0.1, SQLite, a PRO site with a published widget, seeded in {} ms; \
         {} rounds of {} s per row ({}), rows taking turns; {} keep-alive connections, {} \
         server workers",
        seeding.elapsed().as_millis(),
        s.config_rounds,
        WINDOW.seconds.as_secs_f64(),
        match s.generator {
            crate::load::Generator::Wrk(_) => "wrk: no warm-up, the check requests warmed the cache".to_string(),
            crate::load::Generator::Threads => format!("after {} ms warm-up each", WINDOW.warmup.as_millis()),
        },
        s.clients,
        s.workers,
    );

    let base = real.base();
    let key = ("X-Chatdesk-Site-Key", site.key.clone());
    let origin = ("Origin", format!("https://{}", site.domain));
    let endpoint = |label: &str, url: String, headers: Vec<(&'static str, String)>| Endpoint {
        label: label.to_string(),
        url,
        headers,
        logs: false,
    };
    let config_url = format!("{base}/api/v1/sdk/chat/config");
    let endpoints = [
        endpoint(
            "bare actix-web GET /hello (baseline)",
            format!("{}/hello", bare.base()),
            Vec::new(),
        ),
        endpoint(
            "GET /healthz (chatdesk's middleware, no database)",
            format!("{base}/healthz"),
            Vec::new(),
        ),
        endpoint(
            "GET /api/v1/sdk/chat/config (warm cache)",
            config_url.clone(),
            vec![key.clone()],
        ),
        endpoint(
            "GET …/sdk/chat/config with the site's Origin",
            config_url,
            vec![key, origin],
        ),
    ];
    // The first config request loads the gate: from then on it is cached.
    for e in &endpoints {
        let body = check(e)?;
        if e.headers
            .iter()
            .any(|(name, _)| *name == "X-Chatdesk-Site-Key")
            && body.get("enabled") != Some(&serde_json::Value::Bool(true))
        {
            return Err(format!("{}: the chat is not open: {body}", e.label).into());
        }
    }

    println!(
        "server RSS after the check requests, idle: bare {} MiB, chatdesk {} MiB",
        mib(bare.memory()?.rss),
        mib(real.memory()?.rss)
    );
    let load_before = load_average();
    // rounds[r][e]
    let mut rounds: Vec<Vec<Stats>> = Vec::with_capacity(s.config_rounds);
    for _ in 0..s.config_rounds {
        rounds.push(
            endpoints
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let server = if i == 0 { &bare } else { &real };
                    let probe = Probe {
                        server: Some(server),
                        cores: &s.pin,
                    };
                    drive(e, s.clients, WINDOW, probe, s.generator)
                })
                .collect(),
        );
    }
    drop(real);
    drop(bare);
    drop(db);

    let column = |e: usize, f: &dyn Fn(&Stats) -> f64| -> f64 {
        median(rounds.iter().map(|round| f(&round[e])).collect())
    };
    let ratio = |e: usize, f: &dyn Fn(&Stats) -> f64| -> f64 {
        median(
            rounds
                .iter()
                .map(|round| f(&round[e]) / f(&round[0]))
                .collect(),
        )
    };
    let throughput = |r: &Stats| r.per_second;
    let p99 = |r: &Stats| r.p99.as_secs_f64() * 1e6;
    let p50 = |r: &Stats| r.p50.as_secs_f64() * 1e6;
    let cpu = |r: &Stats| {
        r.cpu_per_request
            .map_or(f64::NAN, |c| c.as_secs_f64() * 1e6)
    };

    let busy = |r: &Stats| r.machine_busy.map_or(f64::NAN, |b| b * 100.0);
    let server_busy = |r: &Stats| r.server_busy.map_or(f64::NAN, |b| b * 100.0);
    let client_busy = |r: &Stats| r.client_busy.map_or(f64::NAN, |b| b * 100.0);
    // The peak over every round of the row.
    let peak = |e: usize| {
        rounds
            .iter()
            .filter_map(|round| round[e].server_peak)
            .max()
            .map_or_else(|| "n/a".to_string(), mib)
    };
    // The bare server's CPU per request over the row's: what the
    // throughput ratio would be if the clients and servers had the
    // machine to themselves.
    let cpu_ratio = |e: usize| -> f64 {
        median(
            rounds
                .iter()
                .map(|round| cpu(&round[0]) / cpu(&round[e]))
                .collect(),
        )
    };

    println!(
        "{:<50} {:>7} {:>6} {:>6} {:>6} {:>8} {:>5} {:>5} {:>5} {:>4} {:>7} {:>7} {:>8}",
        "endpoint",
        "req/s",
        "p50 µs",
        "p99 µs",
        "CPU µs",
        "peak MiB",
        "srv",
        "cli",
        "busy",
        "err",
        "vs bare",
        "by CPU",
        "p99/bare"
    );
    for (i, e) in endpoints.iter().enumerate() {
        let errors: usize = rounds.iter().map(|round| round[i].errors).sum();
        println!(
            "{:<50} {:>7.0} {:>6.0} {:>6.0} {:>6.1} {:>8} {:>4.0}% {:>4.0}% {:>4.0}% {:>4} {:>7.3} {:>7.3} {:>8.2}",
            e.label,
            column(i, &throughput),
            column(i, &p50),
            column(i, &p99),
            column(i, &cpu),
            peak(i),
            column(i, &server_busy),
            column(i, &client_busy),
            column(i, &busy),
            errors,
            ratio(i, &throughput),
            cpu_ratio(i),
            ratio(i, &p99),
        );
    }
    let per_round: Vec<String> = rounds
        .iter()
        .map(|round| format!("{:.2}", round[2].per_second / round[0].per_second))
        .collect();
    let verdict = |r: f64| if r >= TARGET { "met" } else { "MISSED" };
    let (plain, with_origin) = (ratio(2, &throughput), ratio(3, &throughput));
    println!(
        "config route: {plain:.2}× the bare server's throughput (target ≥ {TARGET}: {}; by CPU \
         {:.2}×), {with_origin:.2}× with the Origin header ({}; by CPU {:.2}×); p99 {:.2}× and \
         {:.2}× the bare server's; per round: {}",
        verdict(plain),
        cpu_ratio(2),
        verdict(with_origin),
        cpu_ratio(3),
        ratio(2, &p99),
        ratio(3, &p99),
        per_round.join(", "),
    );
    let extra = |e: usize| column(e, &cpu) - column(0, &cpu);
    println!(
        "CPU µs = CPU time of the server process per request, and its excess over the bare \
         server's: /healthz {:+.1} µs (chatdesk's middleware), config {:+.1} µs, with Origin \
         {:+.1} µs; peak MiB = the server's peak RSS (VmHWM) over the row's windows; srv, cli = \
         how busy the servers' and the load generator's cores were (n/a: not pinned); busy = \
         the whole machine; vs bare, by CPU (bare CPU µs / the row's) and p99/bare are medians \
         of the per-round ratios; load average {} before, {} after",
        extra(1),
        extra(2),
        extra(3),
        load_before,
        load_average(),
    );
    let failed = rounds.iter().flatten().find_map(|r| r.first_error.clone());
    if let Some(error) = failed {
        return Err(
            format!("some config requests failed ({error}); the figures are not valid").into(),
        );
    }
    Ok(())
}

/// The median (the mean of the middle two for an even count).
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}
