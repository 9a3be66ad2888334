//! Two `chatdesk migrate` processes on one fresh SQLite file at once: both
//! succeed (one migrates, the other waits for its lock and finds the
//! schema up to date), round after round.

use std::process::{Command, Output, Stdio};

use chatdesk_store::testing::TestDatabase;

fn migrate(database_url: &str) -> std::process::Child {
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

#[test]
fn two_processes_migrating_one_fresh_sqlite_file_both_succeed() {
    // SQLite-specific; run once, in the SQLite pass.
    if std::env::var("CHATDESK_TEST_BACKEND").as_deref() == Ok("postgres") {
        return;
    }
    for round in 0..12 {
        let db = TestDatabase::sqlite();
        let children = [migrate(db.url()), migrate(db.url())];
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
