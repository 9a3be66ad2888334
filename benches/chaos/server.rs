//! `chatdesk serve` as a child process on a fixed port of 127.0.0.1, so it
//! can be killed with SIGKILL and started again where clients expect it.
//! Its output goes to a log file, printed when it fails to start; it is
//! killed when dropped.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::Result;

/// How long a start may take (migrations included).
const STARTUP: Duration = Duration::from_secs(60);

pub(crate) struct Server {
    name: String,
    port: u16,
    env: Vec<(String, String)>,
    child: Option<Child>,
    log: PathBuf,
    pub(crate) starts: usize,
}

impl Server {
    /// Starts `chatdesk serve` with these variables (on top of a cleared
    /// mail and model configuration) and waits for `/healthz`.
    pub(crate) fn start(name: &str, port: u16, env: &[(&str, String)]) -> Result<Server> {
        let log = std::env::temp_dir().join(format!(
            "chatdesk-chaos-{name}-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let mut server = Server {
            name: name.to_string(),
            port,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            child: None,
            log,
            starts: 0,
        };
        server.spawn()?;
        Ok(server)
    }

    pub(crate) fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> Result<Duration> {
        let started = Instant::now();
        let out = File::options().create(true).append(true).open(&self.log)?;
        let err = out.try_clone()?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_chatdesk"));
        command
            .args(["serve", "--bind", &format!("127.0.0.1:{}", self.port)])
            .env("RUST_LOG", "warn")
            .env_remove("SMTP_URL")
            .env_remove("RESEND_API_KEY")
            .env_remove("RESEND_BASE_URL")
            .env_remove("LLM_BASE_URL")
            .env_remove("LLM_API_KEY")
            .env_remove("LLM_MODEL")
            .env_remove("LLM_RANKER");
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()?;
        crate::cleanup::add_process(child.id());
        self.child = Some(child);
        self.starts += 1;
        let agent = crate::http::agent(Duration::from_secs(2));
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "{} exited ({status}) before it was healthy:\n{}",
                        self.name,
                        self.log_tail()
                    )
                    .into());
                }
            }
            let health = crate::http::call(
                &agent,
                "GET",
                &format!("{}/healthz", self.base()),
                &[],
                None,
            );
            if health.status == Some(200) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > STARTUP {
                return Err(format!(
                    "{} was not healthy within {STARTUP:?}:\n{}",
                    self.name,
                    self.log_tail()
                )
                .into());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, then a new process on the same port; returns how long
    /// the new one took to answer `/healthz`.
    pub(crate) fn kill_and_restart(&mut self, pause: Duration) -> Result<Duration> {
        self.kill();
        thread::sleep(pause);
        self.spawn()
    }

    /// SIGKILL (no shutdown: open connections and transactions die).
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::cleanup::remove_process(child.id());
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}
