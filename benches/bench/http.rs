//! The HTTP measurements: each endpoint driven for a fixed time against
//! the bare baseline, printed as one table. The servers are child
//! processes (see `servers.rs`); the row with the request log on runs
//! against a second `chatdesk serve` on the same database started with
//! `RUST_LOG=info`, its log going to a file as `serve`'s stderr would.

use std::time::{Duration, Instant};

use chatdesk_domain::ids::SiteId;
use chatdesk_store::testing::TestDatabase;

use crate::load::{check, drive, load_average, Endpoint, Probe, Window};
use crate::seed::seed;
use crate::serve::mib;
use crate::servers::{bare_server, chatdesk_server, config_for};
use crate::{Result, Settings, PAGE};

pub(crate) fn http(s: &Settings) -> Result<()> {
    let db = TestDatabase::sqlite();
    let config = config_for(db.url())?;

    let bare = bare_server(&s.pin, s.workers)?;
    let real = chatdesk_server(&s.pin, db.url(), s.workers, "warn", "http")?;
    let logging = chatdesk_server(&s.pin, db.url(), s.workers, "info", "http-log")?;

    let seeding = Instant::now();
    let seeded = seed(
        &chatdesk::services(chatdesk::open_store(&config)?, None, false),
        s.items,
    )?;
    let seeding = seeding.elapsed();

    let base = real.base();
    let site = seeded.site;
    let token = seeded.token.clone();
    let deep_pages = s.items / PAGE as usize * 3 / 4;
    let cursor = cursor_after(base, &token, site, deep_pages)?;
    let first_item = deep_pages * PAGE as usize + 1;
    println!(
        "HTTP on 127.0.0.1, SQLite (pool {}), seeded in {} ms",
        config.pool_size,
        seeding.as_millis()
    );

    let bare_hello = |label: &str| Endpoint {
        label: label.to_string(),
        url: format!("{}/hello", bare.base()),
        headers: Vec::new(),
        logs: false,
    };
    let ours_on = |server: &str, label: &str, path: String| Endpoint {
        label: label.to_string(),
        url: format!("{server}{path}"),
        headers: vec![("Authorization", format!("Bearer {token}"))],
        logs: false,
    };
    let ours = |label: &str, path: String| ours_on(base, label, path);
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
        Endpoint {
            logs: true,
            ..ours_on(
                logging.base(),
                "GET /api/v1/me, RUST_LOG=info (log to a file)",
                "/api/v1/me".into(),
            )
        },
        bare_hello("bare actix-web GET /hello (again, last)"),
    ];

    for e in &endpoints {
        let body = check(e)?;
        // A content page must be full.
        if let Some(items) = body.get("items").and_then(|i| i.as_array()) {
            if items.len() != PAGE as usize {
                return Err(format!("{}: {} items, not {PAGE}", e.label, items.len()).into());
            }
        }
    }
    let window = Window {
        warmup: s.warmup,
        seconds: s.seconds,
    };
    let load_before = load_average();
    let mut results = Vec::with_capacity(endpoints.len());
    for e in &endpoints {
        let server = if e.url.starts_with(bare.base()) {
            &bare
        } else if e.logs {
            &logging
        } else {
            &real
        };
        let probe = Probe {
            server: Some(server),
            cores: &s.pin,
        };
        results.push(drive(e, s.clients, window, probe, s.generator));
    }

    drop(logging);
    drop(real);
    drop(bare);
    drop(db);

    let (Some(first), Some(last)) = (results.first(), results.last()) else {
        return Err("no endpoints measured".into());
    };
    let baseline = (first.per_second + last.per_second) / 2.0;
    println!(
        "{:<56} {:>8} {:>7} {:>7} {:>7} {:>8} {:>5} {:>5} {:>6} {:>8}",
        "endpoint",
        "req/s",
        "p50 µs",
        "p99 µs",
        "CPU µs",
        "peak MiB",
        "srv",
        "cli",
        "errors",
        "vs bare"
    );
    let percent =
        |b: Option<f64>| b.map_or_else(|| "n/a".to_string(), |b| format!("{:.0}%", b * 100.0));
    for (e, r) in endpoints.iter().zip(&results) {
        let cpu = r.cpu_per_request.map_or_else(
            || "n/a".to_string(),
            |c| format!("{:.1}", c.as_secs_f64() * 1e6),
        );
        println!(
            "{:<56} {:>8.0} {:>7} {:>7} {:>7} {:>8} {:>5} {:>5} {:>6} {:>8.3}",
            e.label,
            r.per_second,
            r.p50.as_micros(),
            r.p99.as_micros(),
            cpu,
            r.server_peak.map_or_else(|| "n/a".to_string(), mib),
            percent(r.server_busy),
            percent(r.client_busy),
            r.errors,
            r.per_second / baseline,
        );
    }
    println!(
        "vs bare = throughput / mean of the two bare runs ({baseline:.0} req/s); CPU µs = CPU \
         time of the server process (with its SQLite) per request; peak MiB = the server's \
         peak RSS (VmHWM) in the window; srv, cli = how busy the servers' and the load \
         generator's cores were; {} requests measured; load average {} before, {} after",
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
