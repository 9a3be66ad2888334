//! Two `chatdesk migrate` processes on one fresh SQLite file at once: both
//! succeed (one migrates, the other waits for its lock and finds the
//! schema up to date), round after round.
//!
//! So that they really overlap, the test holds the store's migration lock
//! (`<database>.lock`, the same exclusive file lock) while it starts both,
//! waits until both have opened the lock file and are blocked on it, and
//! only then lets go: both contend for the lock at the same moment. A store
//! that took no lock would never open the file, and the test would fail
//! waiting for it.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chatdesk_store::testing::TestDatabase;

/// How long a `chatdesk migrate` process may take to start, open the
/// database and reach the migration lock.
const REACH_LOCK: Duration = Duration::from_secs(20);

fn migrate(database_url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_chatdesk"))
        .arg("migrate")
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "info")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chatdesk runs")
}

fn applied_migrations(output: &Output) -> bool {
    String::from_utf8_lossy(&output.stderr).contains("applied migrations")
}

/// The store's migration lock file of a `sqlite://` test database.
fn lock_path(database_url: &str) -> PathBuf {
    let path = database_url
        .strip_prefix("sqlite://")
        .expect("a sqlite:// URL");
    PathBuf::from(format!("{path}.lock"))
}

/// Takes the migration lock as the store does (an exclusive `File::lock`).
fn hold_lock(path: &Path) -> File {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .expect("open the lock file");
    file.lock().expect("take the migration lock");
    file
}

/// Whether the process `pid` has the file `path` open.
#[cfg(target_os = "linux")]
fn has_open(pid: u32, path: &Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok)
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
}

/// Waits until both children have opened the lock file (which the test
/// holds, so each is then blocked on it), failing with their output if
/// either exits first or `REACH_LOCK` passes.
fn wait_until_blocked(children: &mut [Child; 2], lock: &Path, round: usize) {
    let started = Instant::now();
    loop {
        for child in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                panic!(
                    "round {round}: a process exited ({status}) while the test held the \
                     migration lock, so it did not wait for it: {stderr}"
                );
            }
        }
        #[cfg(target_os = "linux")]
        if children.iter().all(|child| has_open(child.id(), lock)) {
            return;
        }
        #[cfg(not(target_os = "linux"))]
        if started.elapsed() >= Duration::from_secs(2) {
            // No /proc to look into: both still running after a generous
            // pause is taken as both blocked on the lock.
            let _ = lock;
            return;
        }
        if started.elapsed() >= REACH_LOCK {
            for child in children.iter_mut() {
                let _ = child.kill();
            }
            panic!(
                "round {round}: after {REACH_LOCK:?} the processes had not both opened the \
                 migration lock {}",
                lock.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn two_processes_migrating_one_fresh_sqlite_file_both_succeed() {
    // SQLite-specific; run once, in the SQLite pass.
    if std::env::var("CHATDESK_TEST_BACKEND").as_deref() == Ok("postgres") {
        return;
    }
    for round in 0..12 {
        let db = TestDatabase::sqlite();
        let lock = lock_path(db.url());
        let held = hold_lock(&lock);
        // As the processes' open file descriptors name it.
        let lock = lock.canonicalize().expect("the lock file exists");
        let mut children = [migrate(db.url()), migrate(db.url())];
        wait_until_blocked(&mut children, &lock, round);
        // Both wait on the lock: let them contend for it.
        drop(held);
        let outputs: Vec<Output> = children
            .into_iter()
            .map(|child| child.wait_with_output().expect("chatdesk exits"))
            .collect();
        for output in &outputs {
            assert!(
                output.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let migrated = outputs.iter().filter(|o| applied_migrations(o)).count();
        assert_eq!(
            migrated,
            1,
            "round {round}: exactly one process applies the migrations: {:?}",
            outputs
                .iter()
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .collect::<Vec<_>>()
        );
    }
}
