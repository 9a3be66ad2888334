//! A throw-away PostgreSQL 15 cluster of this program's own, so faults
//! (stopping and starting it) touch nobody else's database: `initdb` into
//! a temporary directory owned by the `postgres` OS user, trust
//! authentication, listening on 127.0.0.1 at a free port only. Dropping
//! it stops the server (immediate mode) and removes the directory, on
//! success and failure alike.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::Result;

const BIN: &str = "/usr/lib/postgresql/15/bin";
/// The OS user that owns and runs the cluster (PostgreSQL refuses root).
const OS_USER: &str = "postgres";

pub(crate) struct Cluster {
    dir: PathBuf,
    port: u16,
}

/// A port nobody listens on right now.
pub(crate) fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn as_postgres(program: &str, args: &[&str]) -> Command {
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", OS_USER, "--", &format!("{BIN}/{program}")]);
        c
    } else {
        Command::new(format!("{BIN}/{program}"))
    };
    command.args(args).stdin(Stdio::null());
    command
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run(mut command: Command, what: &str) -> Result<()> {
    let out = command.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into())
    }
}

impl Cluster {
    /// Creates and starts a cluster.
    pub(crate) fn start() -> Result<Cluster> {
        if !Path::new(BIN).join("initdb").exists() {
            return Err(format!("{BIN}/initdb not found: PostgreSQL 15 is needed").into());
        }
        let dir = std::env::temp_dir().join(format!(
            "chatdesk-chaos-pg-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir(&dir)?;
        crate::cleanup::add_cluster(dir.clone());
        let mut cluster = Cluster {
            dir,
            port: free_port()?,
        };
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args([
                        &format!("{OS_USER}:{OS_USER}"),
                        &cluster.dir.display().to_string(),
                    ]);
                    c
                },
                "chown",
            )?;
        }
        let data = cluster.data();
        println!(
            "postgres: initdb {} (port {}, trust, 127.0.0.1 only)",
            cluster.dir.display(),
            cluster.port
        );
        run(
            as_postgres(
                "initdb",
                &[
                    "-D",
                    &data,
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ],
            ),
            "initdb",
        )?;
        cluster.start_server()?;
        Ok(cluster)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// The URL of its `postgres` database.
    pub(crate) fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    pub(crate) fn start_server(&mut self) -> Result<Duration> {
        let started = Instant::now();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log").display().to_string();
        run(
            as_postgres(
                "pg_ctl",
                &[
                    "start",
                    "-D",
                    &self.data(),
                    "-l",
                    &log,
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    &options,
                ],
            ),
            "pg_ctl start",
        )?;
        self.wait_accepting(Duration::from_secs(30))?;
        Ok(started.elapsed())
    }

    /// Stops the server (`fast`: open sessions are ended, the data is
    /// checkpointed).
    pub(crate) fn stop_server(&mut self) -> Result<Duration> {
        let started = Instant::now();
        run(
            as_postgres(
                "pg_ctl",
                &["stop", "-D", &self.data(), "-m", "fast", "-w", "-t", "60"],
            ),
            "pg_ctl stop",
        )?;
        Ok(started.elapsed())
    }

    /// Until a TCP connection to its port succeeds.
    fn wait_accepting(&self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "postgres on port {} did not accept within {limit:?}",
            self.port
        )
        .into())
    }

    /// Makes a database.
    pub(crate) fn create_database(&self, name: &str) -> Result<()> {
        run(
            as_postgres(
                "createdb",
                &[
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    name,
                ],
            ),
            "createdb",
        )
    }
}

/// Stops the cluster in `dir` (immediate mode) if it runs, and removes
/// the directory.
pub(crate) fn stop_and_remove(dir: &Path) {
    let data = dir.join("data").display().to_string();
    if dir.join("data").join("postmaster.pid").exists() {
        let stopped = as_postgres(
            "pg_ctl",
            &["stop", "-D", &data, "-m", "immediate", "-w", "-t", "30"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
        println!(
            "postgres: stopped the throw-away cluster in {} ({})",
            dir.display(),
            stopped.map_or_else(|e| e.to_string(), |s| s.to_string())
        );
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => println!("postgres: removed {}", dir.display()),
        Err(e) => println!("postgres: could not remove {}: {e}", dir.display()),
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        crate::cleanup::remove_cluster(&self.dir);
        stop_and_remove(&self.dir);
    }
}
