//! The load: client threads in a closed loop for a fixed time, or `wrk`,
//! and what they saw (throughput, latency), with what the server spent
//! (its CPU per iteration, its peak RSS) and how busy the servers' and
//! the clients' cores were. [`drive`] sends one GET per iteration over
//! keep-alive connections (with `wrk` when it is installed); [`closed_loop`]
//! runs any [`Worker`] (a visitor's conversation, a SQL transaction).

use std::io::Read;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::serve::{Child, CoreTicks, Cores};
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
    /// CPU time per iteration of the server process when one is
    /// watched, else of this whole process (clients, SQLite).
    pub(crate) cpu_per_request: Option<Duration>,
    /// How busy the machine's cores were in the window (every process:
    /// a database server's too, and anything else running), 0 to 1.
    pub(crate) machine_busy: Option<f64>,
    /// How busy the servers' and the clients' cores were (when pinned).
    pub(crate) server_busy: Option<f64>,
    pub(crate) client_busy: Option<f64>,
    /// The watched server's peak RSS in the window (KiB): its `VmHWM`
    /// reset when the window starts.
    pub(crate) server_peak: Option<u64>,
}

/// What is watched during a window: the server process (its CPU and
/// peak RSS), and the cores.
#[derive(Clone, Copy)]
pub(crate) struct Probe<'a> {
    pub(crate) server: Option<&'a Child>,
    pub(crate) cores: &'a Cores,
}

/// Readings at the start of a window.
struct Mark {
    cpu: Option<Duration>,
    machine: Option<(u64, u64)>,
    cores: Option<(CoreTicks, CoreTicks)>,
}

impl Probe<'_> {
    fn cpu(&self) -> Option<Duration> {
        match self.server {
            Some(server) => server.cpu(),
            None => process_cpu(),
        }
    }

    /// Resets the server's peak and reads the counters.
    fn start(&self) -> Mark {
        if let Some(server) = self.server {
            let _ = server.reset_peak();
        }
        Mark {
            cpu: self.cpu(),
            machine: machine_cpu(),
            cores: self.cores.ticks(),
        }
    }

    /// What was spent since `mark`.
    fn end(&self, mark: Mark) -> Spent {
        let mut spent = Spent {
            cpu: mark.cpu.zip(self.cpu()).map(|(b, a)| a.saturating_sub(b)),
            machine_busy: mark.machine.zip(machine_cpu()).and_then(
                |((busy0, all0), (busy1, all1))| {
                    let all = all1.checked_sub(all0).filter(|&all| all > 0)?;
                    Some(busy1.saturating_sub(busy0) as f64 / all as f64)
                },
            ),
            server_busy: None,
            client_busy: None,
            server_peak: self
                .server
                .and_then(|server| server.memory().ok())
                .map(|m| m.peak),
        };
        if let Some(((s0, c0), (s1, c1))) = mark.cores.zip(self.cores.ticks()) {
            spent.server_busy = s0.busy_until(s1);
            spent.client_busy = c0.busy_until(c1);
        }
        spent
    }
}

/// What a window cost: CPU time, how busy the cores were, the server's
/// peak RSS.
#[derive(Default)]
struct Spent {
    cpu: Option<Duration>,
    machine_busy: Option<f64>,
    server_busy: Option<f64>,
    client_busy: Option<f64>,
    server_peak: Option<u64>,
}

impl Spent {
    /// The figures of a window: `requests` successful iterations in
    /// `seconds`, with their latency percentiles.
    fn stats(self, requests: usize, seconds: f64, p50: Duration, p99: Duration) -> Stats {
        Stats {
            requests,
            errors: 0,
            all_ok: requests,
            first_error: None,
            per_second: requests as f64 / seconds,
            p50,
            p99,
            cpu_per_request: self
                .cpu
                .filter(|_| requests > 0)
                .map(|cpu| Duration::from_secs_f64(cpu.as_secs_f64() / requests as f64)),
            machine_busy: self.machine_busy,
            server_busy: self.server_busy,
            client_busy: self.client_busy,
            server_peak: self.server_peak,
        }
    }
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
pub(crate) fn closed_loop<W, M>(
    threads: usize,
    window: Window,
    probe: Probe<'_>,
    make: M,
) -> (Stats, Vec<W>)
where
    W: Worker,
    M: Fn(usize) -> Result<W, String> + Sync,
{
    let start = Instant::now() + window.warmup;
    let end = start + window.seconds;
    let mut spent = Spent::default();
    let per_thread: Vec<Outcome<W>> = thread::scope(|scope| {
        let make = &make;
        let clients: Vec<_> = (0..threads)
            .map(|i| scope.spawn(move || run(make(i), start, end)))
            .collect();
        thread::sleep(start.saturating_duration_since(Instant::now()));
        let mark = probe.start();
        thread::sleep(end.saturating_duration_since(Instant::now()));
        spent = probe.end(mark);
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
        errors,
        all_ok,
        first_error,
        ..spent.stats(
            nanos.len(),
            window.seconds.as_secs_f64(),
            percentile(&nanos, 50.0),
            percentile(&nanos, 99.0),
        )
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

/// What generates a GET load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Generator {
    /// `wrk` (epoll, in C) with this many threads, on this process's
    /// cores.
    Wrk(usize),
    /// This program's own keep-alive client threads (ureq).
    Threads,
}

impl Generator {
    /// `wrk` when it is on the PATH and `BENCH_WRK` is not 0, with one
    /// thread per core the clients may use; else client threads.
    pub(crate) fn from_env(client_cores: usize) -> Generator {
        let off = std::env::var("BENCH_WRK").is_ok_and(|v| v.trim() == "0");
        let found = Command::new("wrk")
            .arg("--version")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("wrk"));
        if found && !off {
            Generator::Wrk(client_cores.max(1))
        } else {
            Generator::Threads
        }
    }

    pub(crate) fn describe(self) -> String {
        match self {
            Generator::Wrk(t) => format!("wrk ({t} thread(s), `wrk --latency`)"),
            Generator::Threads => "this program's keep-alive client threads (ureq)".into(),
        }
    }
}

/// Drives `e` with `clients` keep-alive connections for the window.
pub(crate) fn drive(
    e: &Endpoint,
    clients: usize,
    window: Window,
    probe: Probe<'_>,
    generator: Generator,
) -> Stats {
    match generator {
        Generator::Wrk(threads) => {
            wrk(e, clients, threads, window, probe).unwrap_or_else(|err| Stats {
                errors: 1,
                first_error: Some(format!("wrk: {err}")),
                ..Spent::default().stats(0, 1.0, Duration::ZERO, Duration::ZERO)
            })
        }
        Generator::Threads => {
            closed_loop(clients, window, probe, |_| {
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
    }
}

/// One `wrk` run of the window's seconds (whole seconds, at least 1)
/// after a warm-up run of its own when the window has one of a second or
/// more.
fn wrk(
    e: &Endpoint,
    connections: usize,
    threads: usize,
    window: Window,
    probe: Probe<'_>,
) -> Result<Stats> {
    let run = |seconds: u64| -> Result<String> {
        let mut command = Command::new("wrk");
        command.args([
            "-t",
            &threads.min(connections).to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--timeout",
            "10s",
            "--latency",
        ]);
        for (name, value) in &e.headers {
            command.args(["-H", &format!("{name}: {value}")]);
        }
        let out = command.arg(&e.url).output()?;
        if !out.status.success() {
            return Err(format!(
                "exit {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    // wrk runs whole seconds: a shorter warm-up is skipped.
    if window.warmup.as_secs() > 0 {
        run(window.warmup.as_secs())?;
    }
    let seconds = window.seconds.as_secs().max(1);
    let mark = probe.start();
    let text = run(seconds)?;
    let spent = probe.end(mark);
    let parsed = WrkReport::parse(&text).ok_or_else(|| format!("unreadable output: {text}"))?;
    // wrk counts every response; a failed one is not a served request.
    let served = parsed.requests.saturating_sub(parsed.errors);
    Ok(Stats {
        errors: parsed.errors,
        first_error: (parsed.errors > 0).then(|| {
            format!(
                "{} failed requests (wrk: non-2xx or socket errors)",
                parsed.errors
            )
        }),
        ..spent.stats(served, parsed.seconds, parsed.p50, parsed.p99)
    })
}

/// What `wrk --latency` printed.
struct WrkReport {
    requests: usize,
    seconds: f64,
    errors: usize,
    p50: Duration,
    p99: Duration,
}

impl WrkReport {
    /// Reads `N requests in 1.00s, …`, the latency distribution's 50% and
    /// 99% lines, `Non-2xx or 3xx responses: N` and `Socket errors: …`.
    fn parse(text: &str) -> Option<WrkReport> {
        let (mut requests, mut seconds, mut errors) = (None, None, 0);
        let (mut p50, mut p99) = (None, None);
        for line in text.lines().map(str::trim) {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [n, "requests", "in", took, ..] => {
                    requests = n.parse().ok();
                    seconds = wrk_duration(took.trim_end_matches(',')).map(|d| d.as_secs_f64());
                }
                ["50%", value] => p50 = wrk_duration(value),
                ["99%", value] => p99 = wrk_duration(value),
                ["Non-2xx", "or", "3xx", "responses:", n] => errors += n.parse::<usize>().ok()?,
                ["Socket", "errors:", rest @ ..] => {
                    errors += rest
                        .iter()
                        .filter_map(|w| w.trim_end_matches(',').parse::<usize>().ok())
                        .sum::<usize>();
                }
                _ => {}
            }
        }
        Some(WrkReport {
            requests: requests?,
            seconds: seconds.filter(|s| *s > 0.0)?,
            errors,
            p50: p50?,
            p99: p99?,
        })
    }
}

/// A duration as wrk prints it: `68.00us`, `1.20ms`, `1.00s`, `2.00m`.
fn wrk_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}
/// CPU time used so far by this whole process (every thread, ended ones
/// too): `utime + stime` of `/proc/self/stat`, in USER_HZ = 100 ticks.
/// `None` off Linux.
fn process_cpu() -> Option<Duration> {
    crate::serve::process_cpu("/proc/self/stat")
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
