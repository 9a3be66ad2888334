//! Failing and hostile infrastructure: TLS to PostgreSQL, key=value
//! connection strings that must not print their password, and concurrent
//! migrations of one fresh SQLite file.

use std::sync::Barrier;

use chatdesk_store::testing::TestDatabase;
use chatdesk_store::{connect, DbConnection, Store, StoreError};
use diesel::prelude::*;
use diesel::sql_types::Bool;

#[derive(QueryableByName)]
struct Ssl {
    #[diesel(sql_type = Bool)]
    ssl: bool,
}

/// Whether the connection of `url` is encrypted, as the server sees it.
fn uses_tls(url: &str) -> bool {
    let mut conn = connect(url).unwrap_or_else(|e| panic!("connects with {url}: {e}"));
    let DbConnection::Pg(pg) = &mut conn else {
        panic!("a PostgreSQL connection");
    };
    diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result::<Ssl>(pg)
        .expect("pg_stat_ssl")
        .ssl
}

/// The test database's URL (`postgres://user[:password]@host[:port]/db?options=…`)
/// as a libpq key=value connection string, with `extra` appended.
fn key_value_form(url: &str, extra: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, dbname) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = authority.rsplit_once('@').unwrap_or(("", authority));
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "5432"));
    let mut conninfo = format!("host={host} port={port} dbname={dbname}");
    if !user.is_empty() {
        conninfo.push_str(&format!(" user={user}"));
    }
    if !password.is_empty() {
        conninfo.push_str(&format!(" password='{password}'"));
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        conninfo.push_str(&format!(" {key}='{}'", value.replace("%3D", "=")));
    }
    format!("{conninfo} {extra}")
}

#[test]
fn sslmode_require_connects_over_tls() {
    let Some(db) = TestDatabase::postgres() else {
        return;
    };
    let required = format!("{}&sslmode=require", db.url());
    let disabled = format!("{}&sslmode=disable", db.url());
    if let Err(error) = connect(&required) {
        // libpq must understand sslmode (it did not when built without
        // TLS: "sslmode value "require" invalid when SSL support is not
        // compiled in"); a server without TLS says so. CI turns TLS on.
        let message = error.to_string();
        assert!(!message.contains("not compiled in"), "{message}");
        assert!(message.contains("does not support SSL"), "{message}");
        assert!(
            !std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")),
            "CI=true: the test PostgreSQL must accept TLS: {message}"
        );
        eprintln!("skipping the TLS checks: {message}");
        return;
    }
    assert!(uses_tls(&required), "sslmode=require must encrypt");
    assert!(!uses_tls(&disabled), "sslmode=disable must not");

    // The store itself (pool and migrations) over TLS.
    let store = Store::open(&required, 2).expect("opens with sslmode=require");
    store.run_migrations().expect("migrates over TLS");
    chatdesk_domain::ports::Readiness::check(&store).expect("ready over TLS");
}

#[test]
fn key_value_connection_strings_select_postgres_and_connect() {
    let Some(db) = TestDatabase::postgres() else {
        return;
    };
    let conninfo = key_value_form(db.url(), "sslmode=prefer");
    let store = Store::open(&conninfo, 2).expect("opens a key=value string");
    assert_eq!(store.backend(), chatdesk_store::Backend::Postgres);
    store.run_migrations().expect("migrates");
    chatdesk_domain::ports::Readiness::check(&store).expect("ready");
}

#[test]
fn a_failed_key_value_connection_does_not_print_its_password() {
    // Nothing listens on port 1: the real cause, never the password.
    let refused = "host=127.0.0.1 port=1 user=chatdesk password='hun ter2' dbname=chatdesk";
    let err = Store::open(refused, 1).expect_err("cannot connect");
    let message = err.to_string();
    assert!(matches!(err, StoreError::Connect { .. }), "{message}");
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(message.contains("password=***"), "{message}");
    assert!(
        !message.contains("hun ter2") && !message.contains("ter2"),
        "{message}"
    );
    let debug = format!("{err:?}");
    assert!(!debug.contains("ter2"), "{debug}");

    // A real server and a wrong role and password: the server's reason.
    let Some(db) = TestDatabase::postgres() else {
        return;
    };
    for password in ["'hun ter2'", "hunter2", "'hun\\'ter2'"] {
        // The last value of a keyword wins.
        let conninfo = key_value_form(
            db.url(),
            &format!("user=chatdesk_no_such_role password={password}"),
        );
        let err = Store::open(&conninfo, 1).expect_err("no such role");
        let message = err.to_string();
        assert!(message.contains("chatdesk_no_such_role"), "{message}");
        assert!(!message.contains("ter2"), "{message}");
        let domain: chatdesk_domain::Error = err.into();
        assert!(!domain.to_string().contains("ter2"), "{domain}");
    }
}

#[test]
fn concurrent_migrations_of_one_fresh_sqlite_file_take_turns() {
    const PROCESSES: usize = 6;
    for round in 0..10 {
        let db = TestDatabase::sqlite();
        let barrier = Barrier::new(PROCESSES);
        let results: Vec<Result<Vec<String>, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..PROCESSES)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        // Each with its own store, as separate processes would.
                        let store = Store::open(db.url(), 1).map_err(|e| e.to_string())?;
                        store.run_migrations().map_err(|e| e.to_string())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let applied: Vec<Vec<String>> = results
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| panic!("round {round}: {e}")))
            .collect();
        let all = chatdesk_store::migration_names(chatdesk_store::Backend::Sqlite);
        assert_eq!(
            applied.iter().filter(|a| !a.is_empty()).count(),
            1,
            "round {round}: exactly one migrates, the others find nothing pending"
        );
        assert!(applied.contains(&all), "round {round}: {applied:?}");
    }
}
