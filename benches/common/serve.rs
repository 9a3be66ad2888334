//! Servers under load as child processes, so their memory and CPU can be
//! read from `/proc/<pid>` apart from the load generator's, and the cores
//! the servers and the clients run on.
//!
//! Shared by `benches/bench` and `benches/tickets` (`#[path]` module).
//!
//! - [`Cores`]: with two cores or more (and `taskset`), the servers run
//!   on the first half of the cores and this process (its client threads,
//!   and `wrk` when it drives the load) on the other half, so the load
//!   generator never takes CPU from the server; `BENCH_PIN=0` turns it off.
//! - [`Child`]: `chatdesk serve` (the release binary cargo built with the
//!   bench) or any other server command, started on a free port of
//!   127.0.0.1, killed when dropped.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// Which cores the servers and the clients run on.
#[derive(Debug, Clone)]
pub(crate) struct Cores {
    /// `taskset` CPU lists (`"0"`, `"2-3"`); `None` when not pinned.
    pub(crate) server: Option<String>,
    pub(crate) clients: Option<String>,
    server_count: usize,
    total: usize,
}

impl Cores {
    /// Splits the cores this process may use into the servers' half
    /// (the lower one) and the clients' half, unless `BENCH_PIN=0`, there
    /// is one core, or `taskset` is missing.
    pub(crate) fn from_env() -> Cores {
        let total = thread::available_parallelism().map_or(1, |n| n.get());
        let off = std::env::var("BENCH_PIN").is_ok_and(|v| v.trim() == "0");
        let allowed = allowed_cpus();
        let has_taskset = Command::new("taskset")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if off || allowed.len() < 2 || !has_taskset {
            return Cores {
                server: None,
                clients: None,
                server_count: total,
                total,
            };
        }
        let half = allowed.len() / 2;
        let list = |cpus: &[usize]| {
            cpus.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        Cores {
            server: Some(list(&allowed[..half])),
            clients: Some(list(&allowed[half..])),
            server_count: half,
            total: allowed.len(),
        }
    }

    /// Pins this process (every thread it has now, and so every thread
    /// it starts later) to the clients' cores.
    pub(crate) fn pin_this_process(&self) -> Result<()> {
        if let Some(cpus) = &self.clients {
            let status = Command::new("taskset")
                .args(["-a", "-p", "-c", cpus, &std::process::id().to_string()])
                .stdout(Stdio::null())
                .status()?;
            if !status.success() {
                return Err(format!("taskset could not pin the clients to CPU {cpus}").into());
            }
        }
        Ok(())
    }

    /// The cores the servers get (all of them when not pinned).
    pub(crate) fn server_count(&self) -> usize {
        self.server_count
    }

    /// A command that runs `program` on the servers' cores.
    pub(crate) fn server_command(&self, program: &str) -> Command {
        match &self.server {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus, program]);
                c
            }
            None => Command::new(program),
        }
    }

    /// One line saying where each side runs.
    pub(crate) fn describe(&self) -> String {
        match (&self.server, &self.clients) {
            (Some(s), Some(c)) => format!(
                "servers pinned to CPU {s}, the load generator (this process's client threads, \
                 and wrk) to CPU {c} (taskset; BENCH_PIN=0 turns it off)"
            ),
            _ => format!(
                "not pinned ({} core(s), or BENCH_PIN=0, or no taskset): servers and clients \
                 share the cores",
                self.total
            ),
        }
    }

    /// CPU busy time so far of the servers' and the clients' cores, in
    /// ticks: ((server busy, server all), (clients busy, clients all)).
    /// `None` when not pinned or off Linux.
    pub(crate) fn ticks(&self) -> Option<(CoreTicks, CoreTicks)> {
        let (s, c) = (self.server.as_ref()?, self.clients.as_ref()?);
        let stat = fs::read_to_string("/proc/stat").ok()?;
        Some((core_ticks(&stat, s)?, core_ticks(&stat, c)?))
    }
}

/// Busy and total ticks of a set of cores.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CoreTicks {
    pub(crate) busy: u64,
    pub(crate) all: u64,
}

impl CoreTicks {
    /// How busy the cores were between `self` and `later`, 0 to 1.
    pub(crate) fn busy_until(self, later: CoreTicks) -> Option<f64> {
        let all = later.all.checked_sub(self.all).filter(|&a| a > 0)?;
        Some(later.busy.saturating_sub(self.busy) as f64 / all as f64)
    }
}

fn core_ticks(stat: &str, cpus: &str) -> Option<CoreTicks> {
    let mut sum = CoreTicks::default();
    for cpu in cpus.split(',') {
        let name = format!("cpu{cpu}");
        let ticks: Vec<u64> = stat
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()))?
            .split_whitespace()
            .skip(1)
            .map(|t| t.parse().ok())
            .collect::<Option<_>>()?;
        let all: u64 = ticks.iter().take(8).sum();
        let idle = ticks.get(3)? + ticks.get(4)?;
        sum.busy += all.saturating_sub(idle);
        sum.all += all;
    }
    Some(sum)
}

/// The CPUs this process may run on (`Cpus_allowed_list`), else 0..n.
fn allowed_cpus() -> Vec<usize> {
    let listed = fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        let list = s
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
            .trim()
            .to_string();
        let mut cpus = Vec::new();
        for part in list.split(',') {
            match part.split_once('-') {
                Some((a, b)) => cpus.extend(a.parse::<usize>().ok()?..=b.parse::<usize>().ok()?),
                None => cpus.push(part.parse::<usize>().ok()?),
            }
        }
        Some(cpus)
    });
    listed.unwrap_or_else(|| (0..thread::available_parallelism().map_or(1, |n| n.get())).collect())
}

/// Memory figures of a process, in KiB.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Memory {
    /// Resident now (`VmRSS`).
    pub(crate) rss: u64,
    /// The peak since start or since the last [`Child::reset_peak`]
    /// (`VmHWM`).
    pub(crate) peak: u64,
}

/// A server in a child process; killed when dropped.
pub(crate) struct Child {
    child: std::process::Child,
    base: String,
    log: PathBuf,
}

/// `chatdesk serve` settings for [`Child::serve`].
pub(crate) struct Serve<'a> {
    pub(crate) database_url: &'a str,
    pub(crate) workers: usize,
    /// `RUST_LOG` for the server (its log goes to a file).
    pub(crate) log: &'a str,
    /// More environment (`SMTP_URL`, …).
    pub(crate) env: Vec<(&'static str, String)>,
    /// Names the log file.
    pub(crate) tag: &'a str,
}

impl Child {
    /// Starts `chatdesk serve` on 127.0.0.1 (a free port) on the
    /// servers' cores, with no mail (unless `env` sets it) and no model,
    /// and waits until it listens.
    pub(crate) fn serve(cores: &Cores, s: Serve<'_>) -> Result<Child> {
        let mut command = cores.server_command(env!("CARGO_BIN_EXE_chatdesk"));
        command
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("DATABASE_URL", s.database_url)
            .env("HTTP_WORKERS", s.workers.to_string())
            .env("RUST_LOG", s.log);
        for name in [
            "BIND_ADDR",
            "SMTP_URL",
            "RESEND_API_KEY",
            "RESEND_BASE_URL",
            "LLM_BASE_URL",
            "LLM_API_KEY",
            "LLM_MODEL",
            "DASHBOARD_ORIGINS",
            "LOG_FORMAT",
        ] {
            command.env_remove(name);
        }
        for (name, value) in s.env {
            command.env(name, value);
        }
        Child::start(command, "chatdesk is serving on ", s.tag)
    }

    /// Starts `command` with its stdout and stderr in a log file and
    /// waits until a line of it holds `marker` followed by the server's
    /// `http://127.0.0.1:port`.
    pub(crate) fn start(mut command: Command, marker: &str, tag: &str) -> Result<Child> {
        let log =
            std::env::temp_dir().join(format!("chatdesk-bench-{tag}-{}.log", std::process::id()));
        let out = fs::File::create(&log)?;
        let err = out.try_clone()?;
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = command.spawn()?;
        let mut server = Child {
            child,
            base: String::new(),
            log,
        };
        let started = Instant::now();
        loop {
            let text = fs::read_to_string(&server.log).unwrap_or_default();
            if let Some(base) = text
                .lines()
                .find_map(|l| l.split(marker).nth(1))
                .and_then(|rest| rest.split_whitespace().next())
                .filter(|b| b.starts_with("http://127.0.0.1:"))
            {
                server.base = base.to_string();
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                return Err(format!("{tag} server exited ({status}): {}", text.trim()).into());
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(
                    format!("{tag} server did not listen within 60 s: {}", text.trim()).into(),
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's memory now.
    pub(crate) fn memory(&self) -> Result<Memory> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let field = |name: &str| -> Option<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse().ok())
        };
        match (field("VmRSS:"), field("VmHWM:")) {
            (Some(rss), Some(peak)) => Ok(Memory { rss, peak }),
            _ => Err("no VmRSS/VmHWM in /proc/<pid>/status".into()),
        }
    }

    /// Sets the peak (`VmHWM`) back to the current RSS (Linux: writing 5
    /// to `/proc/<pid>/clear_refs`).
    pub(crate) fn reset_peak(&self) -> Result<()> {
        fs::write(format!("/proc/{}/clear_refs", self.pid()), "5")?;
        Ok(())
    }

    /// The server's CPU time so far (every thread): `utime + stime` of
    /// `/proc/<pid>/stat`, in USER_HZ = 100 ticks.
    pub(crate) fn cpu(&self) -> Option<Duration> {
        process_cpu(&format!("/proc/{}/stat", self.pid()))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_file(&self.log);
    }
}

/// CPU time used so far by a process (every thread, ended ones too):
/// `utime + stime` of its `stat` file. `None` off Linux.
pub(crate) fn process_cpu(stat_path: &str) -> Option<Duration> {
    let stat = fs::read_to_string(stat_path).ok()?;
    // Fields after the parenthesised command name, which may hold spaces.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// KiB as MiB with one decimal.
pub(crate) fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}
