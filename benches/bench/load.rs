//! The load: client threads in a closed loop for a fixed time, and what
//! they saw (throughput, latency, CPU per iteration). [`drive`] sends one
//! GET per iteration over keep-alive connections; [`closed_loop`] runs any
//! [`Worker`] (a visitor's conversation, a SQL transaction).

use std::io::Read;
use std::thread;
use std::time::{Duration, Instant};

use crate::Result;

/// One measured endpoint.
pub(crate) struct Endpoint {
    pub(crate) label: String,
    pub(crate) url: String,
    /// Headers sent with every request (a bearer token, a site key, an
    /// `Origin`).
    pub(crate) headers: Vec<(&'static str, String)>,
    /// Whether `serve`'s info-level request log is on while it runs.
    pub(crate) logs: bool,
}

impl Endpoint {
    fn request(&self, agent: &ureq::Agent) -> ureq::Request {
        self.headers
            .iter()
            .fold(agent.get(&self.url), |req, (name, value)| {
                req.set(name, value)
            })
    }
}

/// A measured window: the clients start, run `warmup` unmeasured, then
/// `seconds` measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) warmup: Duration,
    pub(crate) seconds: Duration,
}

/// What the clients saw in the measured window.
pub(crate) struct Stats {
    /// Iterations started in the window that succeeded.
    pub(crate) requests: usize,
    /// Iterations started in the window that failed.
    pub(crate) errors: usize,
    /// Every successful iteration, warm-up and overrun included (what
    /// the database must show).
    pub(crate) all_ok: usize,
    /// The first failure's message, if any.
    pub(crate) first_error: Option<String>,
    pub(crate) per_second: f64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    /// CPU time of the whole process (clients, server, SQLite) per
    /// iteration.
    pub(crate) cpu_per_request: Option<Duration>,
    /// How busy the machine's cores were in the window (every process:
    /// a database server's too, and anything else running), 0 to 1.
    pub(crate) machine_busy: Option<f64>,
}

/// One request before the clock starts: the endpoint must answer 200 with
/// JSON, which is returned for the caller to check.
pub(crate) fn check(e: &Endpoint) -> Result<serde_json::Value> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let reply = match e.request(&agent).call() {
        Ok(reply) => reply,
        Err(ureq::Error::Status(status, reply)) => {
            let body = reply.into_string().unwrap_or_default();
            return Err(format!("{}: {status} {body}", e.label).into());
        }
        Err(err) => return Err(format!("{}: {err}", e.label).into()),
    };
    Ok(serde_json::from_str(&reply.into_string()?)?)
}

/// One client's state and its iteration.
pub(crate) trait Worker: Send {
    /// Runs one iteration; `measured` says whether it started inside the
    /// measured window.
    fn iteration(&mut self, measured: bool) -> Result<(), String>;
}

/// Runs `threads` workers, each made by `make(i)` on its own thread, in a
/// closed loop: each starts its next iteration when the last one ended.
/// Returns the figures and the workers (with whatever they recorded).
pub(crate) fn closed_loop<W, M>(threads: usize, window: Window, make: M) -> (Stats, Vec<W>)
where
    W: Worker,
    M: Fn(usize) -> Result<W, String> + Sync,
{
    let start = Instant::now() + window.warmup;
    let end = start + window.seconds;
    let (mut cpu, mut machine_busy) = (None, None);
    let per_thread: Vec<Outcome<W>> = thread::scope(|scope| {
        let make = &make;
        let clients: Vec<_> = (0..threads)
            .map(|i| scope.spawn(move || run(make(i), start, end)))
            .collect();
        thread::sleep(start.saturating_duration_since(Instant::now()));
        let (before, machine_before) = (process_cpu(), machine_cpu());
        thread::sleep(end.saturating_duration_since(Instant::now()));
        cpu = before.zip(process_cpu()).map(|(b, a)| a.saturating_sub(b));
        machine_busy =
            machine_before
                .zip(machine_cpu())
                .and_then(|((busy0, all0), (busy1, all1))| {
                    let all = all1.checked_sub(all0).filter(|&all| all > 0)?;
                    Some(busy1.saturating_sub(busy0) as f64 / all as f64)
                });
        clients
            .into_iter()
            .map(|c| {
                c.join().unwrap_or_else(|_| Outcome {
                    worker: None,
                    latencies: Vec::new(),
                    errors: 1,
                    all_ok: 0,
                    first_error: Some("a client thread panicked".into()),
                })
            })
            .collect()
    });
    let errors = per_thread.iter().map(|o| o.errors).sum();
    let all_ok = per_thread.iter().map(|o| o.all_ok).sum();
    let first_error = per_thread.iter().find_map(|o| o.first_error.clone());
    let mut workers = Vec::with_capacity(threads);
    let mut nanos: Vec<u64> = Vec::new();
    for outcome in per_thread {
        nanos.extend(outcome.latencies);
        workers.extend(outcome.worker);
    }
    nanos.sort_unstable();
    let stats = Stats {
        requests: nanos.len(),
        errors,
        all_ok,
        first_error,
        per_second: nanos.len() as f64 / window.seconds.as_secs_f64(),
        p50: percentile(&nanos, 50.0),
        p99: percentile(&nanos, 99.0),
        cpu_per_request: cpu
            .filter(|_| !nanos.is_empty())
            .map(|cpu| Duration::from_secs_f64(cpu.as_secs_f64() / nanos.len() as f64)),
        machine_busy,
    };
    (stats, workers)
}

/// The `q`th percentile (nearest rank below) of sorted nanoseconds.
pub(crate) fn percentile(sorted: &[u64], q: f64) -> Duration {
    match sorted.len() {
        0 => Duration::ZERO,
        n => Duration::from_nanos(sorted[((n - 1) as f64 * q / 100.0) as usize]),
    }
}

struct Outcome<W> {
    worker: Option<W>,
    latencies: Vec<u64>,
    errors: usize,
    all_ok: usize,
    first_error: Option<String>,
}

/// One client thread: latencies (ns) of the successful iterations started
/// in `[start, end)`, and how many failed.
fn run<W: Worker>(made: Result<W, String>, start: Instant, end: Instant) -> Outcome<W> {
    let mut worker = match made {
        Ok(worker) => worker,
        Err(e) => {
            return Outcome {
                worker: None,
                latencies: Vec::new(),
                errors: 1,
                all_ok: 0,
                first_error: Some(e),
            }
        }
    };
    let mut latencies = Vec::with_capacity(64 * 1024);
    let (mut errors, mut all_ok, mut first_error) = (0, 0, None);
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let measured = sent >= start;
        match worker.iteration(measured) {
            Ok(()) => {
                all_ok += 1;
                if measured {
                    latencies.push(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
                }
            }
            Err(e) => {
                if measured {
                    errors += 1;
                }
                first_error.get_or_insert(e);
            }
        }
    }
    Outcome {
        worker: Some(worker),
        latencies,
        errors,
        all_ok,
        first_error,
    }
}

/// A keep-alive client sending GET requests to one endpoint.
struct Getter<'a> {
    endpoint: &'a Endpoint,
    agent: ureq::Agent,
    body: Vec<u8>,
}

impl Worker for Getter<'_> {
    fn iteration(&mut self, _measured: bool) -> Result<(), String> {
        self.body.clear();
        match self.endpoint.request(&self.agent).call() {
            // Reading to the end hands the connection back for reuse.
            Ok(reply) if reply.status() == 200 => reply
                .into_reader()
                .read_to_end(&mut self.body)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Ok(reply) => Err(format!("status {}", reply.status())),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Drives `e` with `clients` keep-alive clients, one connection each.
pub(crate) fn drive(e: &Endpoint, clients: usize, window: Window) -> Stats {
    closed_loop(clients, window, |_| {
        Ok(Getter {
            endpoint: e,
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(10))
                .build(),
            body: Vec::with_capacity(32 * 1024),
        })
    })
    .0
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

/// The machine's CPU time so far, in ticks: (busy, all), busy being all
/// but idle and I/O wait (the first line of `/proc/stat`). `None` off
/// Linux.
fn machine_cpu() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is
    // already counted in user and nice).
    let all: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some((all.saturating_sub(idle), all))
}

/// The 1-minute load average, to show how busy the machine was.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "n/a".into())
}
