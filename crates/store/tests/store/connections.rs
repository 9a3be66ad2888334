//! Opening the store: URL schemes, real causes without passwords, SQLite
//! directories, readiness.

use chatdesk_domain::ports::Readiness;
use chatdesk_store::testing::TestDatabase;
use chatdesk_store::{backend_of, default_sqlite_url, Backend, Store, StoreError};
use uuid::Uuid;

use crate::helpers::stores;

#[test]
fn readiness_answers_on_every_backend() {
    for t in stores() {
        t.check().unwrap_or_else(|e| panic!("{}: {e}", t.name()));
    }
}

#[test]
fn default_url_is_sqlite() {
    assert_eq!(default_sqlite_url(), "sqlite://./data/chatdesk.sqlite3");
    assert_eq!(backend_of(default_sqlite_url()).ok(), Some(Backend::Sqlite));
}

#[test]
fn unknown_schemes_are_refused_clearly() {
    let err = Store::open("mysql://root:hunter2@localhost/chatdesk", 1).expect_err("unsupported");
    let message = err.to_string();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)));
    assert!(message.contains("expected postgres://"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn connection_failures_say_why_without_the_password() {
    // Nothing listens on port 1.
    let url = "postgres://chatdesk:hunter2@127.0.0.1:1/chatdesk";
    let err = Store::open(url, 1).expect_err("cannot connect");
    let message = err.to_string();
    assert!(matches!(err, StoreError::Connect { .. }), "{message}");
    assert!(message.contains("127.0.0.1"), "{message}");
    assert!(
        message.to_lowercase().contains("refused"),
        "the real cause: {message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    let domain: chatdesk_domain::Error = err.into();
    assert_eq!(domain.code(), "INTERNAL");
    assert!(!domain.to_string().contains("hunter2"));
}

#[test]
fn a_missing_postgres_database_is_reported_as_such() {
    let Some(db) = TestDatabase::postgres() else {
        return;
    };
    // Same server and credentials, a database that does not exist.
    let base = db.url().split('?').next().unwrap_or_default();
    let (server, _) = base.rsplit_once('/').expect("a database path");
    let url = format!("{server}/no_such_database_{}", Uuid::new_v4().simple());
    let err = Store::open(&url, 1).expect_err("no such database");
    let message = err.to_string();
    assert!(
        message.contains("does not exist"),
        "the real cause: {message}"
    );
    if let Some(password) = server
        .split_once("://")
        .and_then(|(_, rest)| rest.rsplit_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password)
    {
        assert!(!message.contains(password), "{message}");
    }
}

#[test]
fn sqlite_creates_the_directory_of_its_file() {
    let dir = std::env::temp_dir().join(format!("chatdesk-test-dir-{}", Uuid::new_v4()));
    let url = format!("sqlite://{}/nested/chatdesk.sqlite3", dir.display());
    {
        let store = Store::open(&url, 2).expect("opens");
        assert_eq!(store.backend(), Backend::Sqlite);
        store.run_migrations().expect("migrates");
        store.check().expect("ready");
    }
    assert!(dir.join("nested/chatdesk.sqlite3").exists());
    std::fs::remove_dir_all(&dir).expect("cleans up");
}

#[test]
fn sqlite_reports_an_unopenable_path() {
    let file = std::env::temp_dir().join(format!("chatdesk-test-file-{}", Uuid::new_v4()));
    std::fs::write(&file, b"not a directory").expect("writes");
    // The "directory" is a file, so the database cannot be created below it.
    let url = format!("sqlite://{}/chatdesk.sqlite3", file.display());
    let err = Store::open(&url, 1).expect_err("cannot open");
    assert!(
        err.to_string().contains("chatdesk.sqlite3") || err.to_string().contains("open"),
        "{err}"
    );
    std::fs::remove_file(&file).expect("cleans up");
}
