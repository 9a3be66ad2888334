//! The load: keep-alive client threads driving one endpoint in a closed
//! loop, and what they saw (throughput, latency, CPU per request).

use std::io::Read;
use std::thread;
use std::time::{Duration, Instant};

use crate::{Result, Settings, PAGE};

/// One measured endpoint.
pub(crate) struct Endpoint {
    pub(crate) label: String,
    pub(crate) url: String,
    pub(crate) token: Option<String>,
    /// Whether `serve`'s info-level request log is on while it runs.
    pub(crate) logs: bool,
}

/// What the clients saw in the measured window.
pub(crate) struct Stats {
    pub(crate) requests: usize,
    pub(crate) errors: usize,
    pub(crate) per_second: f64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    /// CPU time of the whole process (clients, server, SQLite) per request.
    pub(crate) cpu_per_request: Option<Duration>,
}

/// One request before the clock starts: the endpoint must answer 200 (and
/// a content page must be full).
pub(crate) fn check(e: &Endpoint) -> Result<()> {
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
pub(crate) fn drive(e: &Endpoint, s: &Settings) -> Stats {
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
pub(crate) fn load_average() -> String {
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
