//! The chatdesk server under test: `chatdesk serve` as a child process
//! (the release binary cargo built with this bench), so its memory can be
//! read from `/proc/<pid>/status` apart from the bench's own.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::Result;

/// The running server; killed when dropped.
pub(crate) struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

/// Memory figures of a process, in KiB.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Memory {
    /// Resident now (`VmRSS`).
    pub(crate) rss: u64,
    /// The peak since start or since the last [`Server::reset_peak`]
    /// (`VmHWM`).
    pub(crate) peak: u64,
}

impl Server {
    /// Starts `chatdesk serve` on 127.0.0.1 (a free port) against
    /// `database_url`, with `workers` workers, no mail and no model, and
    /// waits until it listens. Its log (`serve`'s default: info lines on
    /// stderr) goes to a file.
    pub(crate) fn start(database_url: &str, workers: usize, tag: &str) -> Result<Server> {
        let log = std::env::temp_dir().join(format!("chatdesk-{tag}.log"));
        let out = fs::File::create(&log)?;
        let err = out.try_clone()?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_chatdesk"));
        command
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("DATABASE_URL", database_url)
            .env("HTTP_WORKERS", workers.to_string())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for name in [
            "BIND_ADDR",
            "SMTP_URL",
            "RESEND_API_KEY",
            "LLM_BASE_URL",
            "LLM_API_KEY",
            "LLM_MODEL",
            "DASHBOARD_ORIGINS",
            "LOG_FORMAT",
        ] {
            command.env_remove(name);
        }
        let child = command.spawn()?;
        let mut server = Server {
            child,
            base: String::new(),
            log,
        };
        let started = Instant::now();
        loop {
            let text = fs::read_to_string(&server.log).unwrap_or_default();
            if let Some(base) = text
                .lines()
                .find_map(|l| l.split("chatdesk is serving on ").nth(1))
                .map(|rest| {
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string()
                })
                .filter(|b| b.starts_with("http://127.0.0.1:"))
            {
                server.base = base;
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                return Err(format!("chatdesk serve exited ({status}): {}", text.trim()).into());
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(
                    format!("chatdesk serve did not listen within 60 s: {}", text.trim()).into(),
                );
            }
            thread::sleep(Duration::from_millis(50));
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
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_file(&self.log);
    }
}
