//! Both migration trees apply, are idempotent, revert, and give the same
//! tables and columns, which are those of `schema.rs`, and the same
//! indexes.

use std::collections::BTreeSet;

use chatdesk_store::schema::*;
use chatdesk_store::testing::{all_backends, TestDatabase};
use chatdesk_store::{connect, migration_names, Backend, DbConnection, Store};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_migrations::MigrationHarness;

use crate::helpers::stores;

type Columns = BTreeSet<(String, String)>;

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

/// The (table, column) pairs of the database, without diesel's own table.
fn columns_of(url: &str) -> Columns {
    let mut conn = connect(url).expect("connects");
    let sql = match conn {
        DbConnection::Pg(_) => {
            "SELECT table_name::text AS table_name, column_name::text AS column_name
             FROM information_schema.columns
             WHERE table_schema = current_schema()
               AND table_name <> '__diesel_schema_migrations'"
        }
        DbConnection::Sqlite(_) => {
            "SELECT m.name AS table_name, p.name AS column_name
             FROM sqlite_master AS m, pragma_table_info(m.name) AS p
             WHERE m.type = 'table'
               AND m.name NOT LIKE 'sqlite_%'
               AND m.name <> '__diesel_schema_migrations'"
        }
    };
    diesel::sql_query(sql)
        .load::<Column>(&mut conn)
        .expect("lists columns")
        .into_iter()
        .map(|c| (c.table_name, c.column_name))
        .collect()
}

/// The (table, column) pairs `schema.rs` declares, read from the SQL
/// diesel writes for `SELECT <all columns> FROM <table>`.
fn schema_columns() -> Columns {
    fn pairs<T>(table: &str, query: T) -> Vec<(String, String)>
    where
        T: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
    {
        let sql = diesel::debug_query::<diesel::sqlite::Sqlite, _>(&query).to_string();
        let list = sql
            .strip_prefix("SELECT ")
            .and_then(|rest| rest.split(" FROM ").next())
            .expect("a select list");
        list.split(", ")
            .map(|col| {
                let col = col.replace('`', "");
                let name = col.rsplit('.').next().unwrap_or(&col).to_string();
                (table.to_string(), name)
            })
            .collect()
    }
    [
        pairs("tenants", tenants::table.select(tenants::all_columns)),
        pairs(
            "tenant_members",
            tenant_members::table.select(tenant_members::all_columns),
        ),
        pairs("sites", sites::table.select(sites::all_columns)),
        pairs(
            "chat_widgets",
            chat_widgets::table.select(chat_widgets::all_columns),
        ),
        pairs(
            "content_items",
            content_items::table.select(content_items::all_columns),
        ),
        pairs("end_users", end_users::table.select(end_users::all_columns)),
        pairs(
            "chat_sessions",
            chat_sessions::table.select(chat_sessions::all_columns),
        ),
        pairs(
            "chat_session_tokens",
            chat_session_tokens::table.select(chat_session_tokens::all_columns),
        ),
        pairs(
            "chat_messages",
            chat_messages::table.select(chat_messages::all_columns),
        ),
        pairs(
            "chat_feedback",
            chat_feedback::table.select(chat_feedback::all_columns),
        ),
        pairs(
            "support_tickets",
            support_tickets::table.select(support_tickets::all_columns),
        ),
        pairs(
            "email_outbox",
            email_outbox::table.select(email_outbox::all_columns),
        ),
        pairs(
            "config_changes",
            config_changes::table.select(config_changes::all_columns),
        ),
        pairs(
            "idempotency_keys",
            idempotency_keys::table.select(idempotency_keys::all_columns),
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[test]
fn migrations_apply_once_and_are_idempotent() {
    for db in all_backends() {
        let store = Store::open(db.url(), 2).expect("opens");
        let expected = migration_names(store.backend());
        assert_eq!(expected.len(), 6);
        let applied = store.run_migrations().expect("migrates");
        assert_eq!(applied, expected, "{}", store.backend().name());
        assert!(
            applied[0].starts_with("2026-11-25-000001_create_tenancy"),
            "names carry their folder: {applied:?}"
        );
        let again = store.run_migrations().expect("migrates again");
        assert!(again.is_empty(), "{}: {again:?}", store.backend().name());
    }
}

#[test]
fn both_trees_have_the_same_migration_names() {
    assert_eq!(
        migration_names(Backend::Postgres),
        migration_names(Backend::Sqlite)
    );
}

#[test]
fn migrations_revert_and_reapply() {
    for t in stores() {
        let mut conn = connect(t.url()).expect("connects");
        let reverted = match &mut conn {
            DbConnection::Pg(pg) => pg
                .revert_all_migrations(chatdesk_store::POSTGRES_MIGRATIONS)
                .map(|v| v.len()),
            DbConnection::Sqlite(sqlite) => sqlite
                .revert_all_migrations(chatdesk_store::SQLITE_MIGRATIONS)
                .map(|v| v.len()),
        }
        .expect("reverts");
        assert_eq!(reverted, 6, "{}", t.name());
        assert!(
            columns_of(t.url()).is_empty(),
            "{}: down.sql drops every table",
            t.name()
        );
        assert_eq!(t.run_migrations().expect("reapplies").len(), 6);
        assert_eq!(columns_of(t.url()), schema_columns(), "{}", t.name());
    }
}

#[test]
fn every_backend_has_the_tables_and_columns_of_the_schema() {
    let expected = schema_columns();
    assert_eq!(
        expected
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
        14
    );
    let mut per_backend = Vec::new();
    for t in stores() {
        let actual = columns_of(t.url());
        let missing: Vec<_> = expected.difference(&actual).collect();
        let extra: Vec<_> = actual.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{}: missing {missing:?}, not in schema.rs {extra:?}",
            t.name()
        );
        per_backend.push((t.name(), actual));
    }
    if let [(a, first), (b, second)] = per_backend.as_slice() {
        assert_eq!(first, second, "{a} and {b} differ");
    }
}

/// An index created by a migration (not one backing a primary key or a
/// unique constraint, which the backends name differently): its table and
/// name, whether it is unique or partial, and its key columns in order
/// with their direction. PostgreSQL's INCLUDE columns are not keys.
#[derive(QueryableByName, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Index {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    index_name: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    is_unique: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    is_partial: bool,
    #[diesel(sql_type = Text)]
    key_columns: String,
}

fn indexes_of(url: &str) -> BTreeSet<Index> {
    let mut conn = connect(url).expect("connects");
    let sql = match conn {
        DbConnection::Pg(_) => {
            "SELECT t.relname::text AS table_name,
                    c.relname::text AS index_name,
                    i.indisunique AS is_unique,
                    i.indpred IS NOT NULL AS is_partial,
                    (SELECT string_agg(
                                pg_get_indexdef(i.indexrelid, k, true)
                                || CASE WHEN pg_index_column_has_property(i.indexrelid, k, 'desc')
                                        THEN ' DESC' ELSE '' END,
                                ', ' ORDER BY k)
                       FROM generate_series(1, i.indnkeyatts::int) AS k) AS key_columns
             FROM pg_index AS i
             JOIN pg_class AS c ON c.oid = i.indexrelid
             JOIN pg_class AS t ON t.oid = i.indrelid
             JOIN pg_namespace AS n ON n.oid = t.relnamespace
             WHERE n.nspname = current_schema()
               AND t.relname <> '__diesel_schema_migrations'
               AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k WHERE k.conindid = i.indexrelid)"
        }
        DbConnection::Sqlite(_) => {
            "SELECT m.tbl_name AS table_name,
                    m.name AS index_name,
                    l.\"unique\" = 1 AS is_unique,
                    l.partial = 1 AS is_partial,
                    (SELECT group_concat(col, ', ')
                       FROM (SELECT x.name || CASE WHEN x.desc = 1 THEN ' DESC' ELSE '' END AS col
                               FROM pragma_index_xinfo(m.name) AS x
                              WHERE x.key = 1
                              ORDER BY x.seqno)) AS key_columns
             FROM sqlite_master AS m
             JOIN pragma_index_list(m.tbl_name) AS l ON l.name = m.name
             WHERE m.type = 'index' AND m.sql IS NOT NULL"
        }
    };
    diesel::sql_query(sql)
        .load::<Index>(&mut conn)
        .expect("lists indexes")
        .into_iter()
        .collect()
}

#[test]
fn both_backends_have_the_same_indexes() {
    let per_backend: Vec<_> = stores()
        .into_iter()
        .map(|t| (t.name(), indexes_of(t.url())))
        .collect();
    for (name, indexes) in &per_backend {
        let current = indexes
            .iter()
            .find(|i| i.index_name == "chat_sessions_current_key")
            .unwrap_or_else(|| panic!("{name}: no current-session index"));
        assert!(
            current.is_unique && current.is_partial,
            "{name}: {current:?}"
        );
        assert_eq!(current.key_columns, "widget_id, end_user_id", "{name}");
        let recent = indexes
            .iter()
            .find(|i| i.index_name == "chat_sessions_site_recent_idx")
            .unwrap_or_else(|| panic!("{name}: no conversation-list index"));
        assert_eq!(
            recent.key_columns, "site_id, last_active_at DESC, id DESC",
            "{name}"
        );
    }
    if let [(a, first), (b, second)] = per_backend.as_slice() {
        assert_eq!(first, second, "{a} and {b} differ");
    }
}

#[test]
fn sqlite_connections_enforce_foreign_keys_and_use_wal() {
    #[derive(QueryableByName)]
    struct Pragma {
        #[diesel(sql_type = Text)]
        value: String,
    }
    let db = TestDatabase::sqlite();
    let mut conn = connect(db.url()).expect("connects");
    let pragma = |conn: &mut DbConnection, name: &str| {
        let column = if name == "busy_timeout" {
            "timeout"
        } else {
            name
        };
        diesel::sql_query(format!(
            "SELECT CAST({column} AS TEXT) AS value FROM pragma_{name}"
        ))
        .get_result::<Pragma>(conn)
        .expect("reads the pragma")
        .value
    };
    assert_eq!(pragma(&mut conn, "foreign_keys"), "1");
    assert_eq!(pragma(&mut conn, "journal_mode"), "wal");
    assert_eq!(pragma(&mut conn, "busy_timeout"), "5000");
    assert_eq!(pragma(&mut conn, "synchronous"), "1", "NORMAL");
}

#[test]
fn replicas_migrating_together_on_postgres_take_turns() {
    let Some(db) = TestDatabase::postgres() else {
        return;
    };
    let url: std::sync::Arc<str> = db.url().into();
    let start = std::sync::Arc::new(std::sync::Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = std::sync::Arc::clone(&url);
            let start = std::sync::Arc::clone(&start);
            std::thread::spawn(move || {
                let store = Store::open(&url, 1).expect("opens");
                start.wait();
                store.run_migrations().expect("migrates without racing")
            })
        })
        .collect();
    let applied: Vec<Vec<String>> = handles
        .into_iter()
        .map(|h| h.join().expect("joins"))
        .collect();
    // Exactly one replica applied the migrations; the others found none pending.
    let mut sizes: Vec<usize> = applied.iter().map(Vec::len).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [0, 0, 0, 6]);
    assert_eq!(columns_of(db.url()), schema_columns());
}
