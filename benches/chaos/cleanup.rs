//! What the program has started and must stop even when it is
//! interrupted (Ctrl-C or SIGTERM skip every `Drop`): the PostgreSQL
//! clusters' directories and the `chatdesk serve` processes. On either
//! signal they are stopped and removed, and the program exits with 130.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};

static CLUSTERS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static PROCESSES: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn add_cluster(dir: PathBuf) {
    lock(&CLUSTERS).push(dir);
}

pub(crate) fn remove_cluster(dir: &PathBuf) {
    lock(&CLUSTERS).retain(|d| d != dir);
}

pub(crate) fn add_process(pid: u32) {
    lock(&PROCESSES).push(pid);
}

pub(crate) fn remove_process(pid: u32) {
    lock(&PROCESSES).retain(|p| *p != pid);
}

/// Watches for SIGINT and SIGTERM on a thread of its own.
pub(crate) fn on_signal_stop_everything() -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("chaos-signals".into())
        .spawn(move || {
            runtime.block_on(async {
                let Ok(mut term) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                else {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            });
            println!("\ninterrupted: stopping what the program started");
            for pid in lock(&PROCESSES).drain(..) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
            for dir in lock(&CLUSTERS).drain(..) {
                crate::pg::stop_and_remove(&dir);
            }
            std::process::exit(130);
        })?;
    Ok(())
}
