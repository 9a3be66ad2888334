//! The store measurements: `Store::list_content` against the same page
//! fetched with hand-written SQL and diesel's DSL on a dedicated connection.

use std::hint::black_box;
use std::time::Instant;

use chatdesk_domain::content::{ContentFilter, ContentStatus};
use chatdesk_domain::ports::{ContentRepository, PageRequest};
use chatdesk_store::schema::content_items;
use chatdesk_store::testing::TestDatabase;
use chatdesk_store::{Backend, DbConnection, Store};
use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::R2D2Connection;
use diesel::sql_types::{BigInt, Bool, Text, Timestamp};

use crate::seed::seed;
use crate::{Result, Settings, PAGE, ROUNDS};

/// The page's rows as the hand-written query returns them.
#[derive(QueryableByName)]
#[allow(dead_code)] // read by the driver; only `id` is compared
struct RawContent {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    site_id: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    description: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Text)]
    audiences: String,
    #[diesel(sql_type = Bool)]
    generated: bool,
    #[diesel(sql_type = Timestamp)]
    created_at: NaiveDateTime,
    #[diesel(sql_type = Timestamp)]
    updated_at: NaiveDateTime,
}

const RAW_SQLITE: &str = "SELECT id, site_id, kind, name, description, status, audiences, \
     generated, created_at, updated_at FROM content_items \
     WHERE site_id = ? AND status = ? ORDER BY id LIMIT ?";
const RAW_POSTGRES: &str = "SELECT id, site_id, kind, name, description, status, audiences, \
     generated, created_at, updated_at FROM content_items \
     WHERE site_id = $1 AND status = $2 ORDER BY id LIMIT $3";

type DslRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    bool,
    NaiveDateTime,
    NaiveDateTime,
);

/// The hand-written query (`sql_query`, which diesel prepares on every
/// call) on a plain connection; the repository also fetches limit + 1.
fn raw_page(conn: &mut DbConnection, site: &str) -> QueryResult<Vec<RawContent>> {
    let limit = i64::from(PAGE) + 1;
    match conn {
        DbConnection::Pg(pg) => diesel::sql_query(RAW_POSTGRES)
            .bind::<Text, _>(site)
            .bind::<Text, _>("PUBLISHED")
            .bind::<BigInt, _>(limit)
            .load(pg),
        DbConnection::Sqlite(lite) => diesel::sql_query(RAW_SQLITE)
            .bind::<Text, _>(site)
            .bind::<Text, _>("PUBLISHED")
            .bind::<BigInt, _>(limit)
            .load(lite),
    }
}

/// The same query in diesel's typed DSL on a dedicated connection: its
/// prepared statement is cached, there is no pool and no domain mapping.
fn dsl_page(conn: &mut DbConnection, site: &str) -> QueryResult<Vec<DslRow>> {
    use content_items::dsl as c;
    c::content_items
        .filter(c::site_id.eq(site))
        .filter(c::status.eq("PUBLISHED"))
        .order(c::id.asc())
        .limit(i64::from(PAGE) + 1)
        .select((
            c::id,
            c::site_id,
            c::kind,
            c::name,
            c::description,
            c::status,
            c::audiences,
            c::generated,
            c::created_at,
            c::updated_at,
        ))
        .load(conn)
}

pub(crate) fn store(s: &Settings) -> Result<()> {
    println!(
        "Store: one page of {PAGE} PUBLISHED items (first page, no cursor), \
         µs per call (mean of {ROUNDS} rounds), single thread"
    );
    println!(
        "{:<10} {:>10} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "backend", "repository", "raw SQL", "typed DSL", "DSL+ping", "repo/raw", "repo/DSL"
    );
    let sqlite = TestDatabase::sqlite();
    store_on("SQLite", &sqlite, s)?;
    match TestDatabase::postgres() {
        Some(pg) => store_on("PostgreSQL", &pg, s)?,
        None => println!(
            "{:<10} skipped: not reachable (TEST_DATABASE_URL)",
            "PostgreSQL"
        ),
    }
    println!(
        "repository = Store::list_content (pool checkout with its SELECT 1 test, boxed \
         query, rows to domain types); raw SQL = the baseline, hand-written sql_query on a \
         dedicated connection, rows to plain structs (diesel prepares it on every call); \
         typed DSL = the same query in diesel's DSL on a dedicated connection (prepared \
         once, cached); DSL+ping = that query preceded by the SELECT 1 that r2d2 runs on \
         every checkout"
    );
    Ok(())
}

fn store_on(name: &str, db: &TestDatabase, s: &Settings) -> Result<()> {
    let url = db.url();
    let seeded = {
        let store = Store::open(url, 4)?;
        store.run_migrations()?;
        seed(&chatdesk::services(store, None, false), s.items)?
    };
    let mut conn = chatdesk_store::connect(url)?;
    if conn.backend() == Backend::Postgres {
        // What autovacuum would have done within a minute in production:
        // without statistics the planner may sort the whole library.
        conn.batch_execute("ANALYZE content_items")?;
    }
    let site = seeded.site;
    let site_text = site.to_string();
    let filter = ContentFilter {
        status: Some(ContentStatus::Published),
        ..ContentFilter::default()
    };
    let first_page = PageRequest {
        limit: PAGE,
        after: None,
    };

    // The three queries must return the same page.
    let repo_ids: Vec<String> = Store::open(url, 1)?
        .list_content(site, &filter, &first_page)?
        .items
        .iter()
        .map(|i| i.id.to_string())
        .collect();
    let raw_ids: Vec<String> = raw_page(&mut conn, &site_text)?
        .into_iter()
        .take(PAGE as usize)
        .map(|r| r.id)
        .collect();
    let dsl_ids: Vec<String> = dsl_page(&mut conn, &site_text)?
        .into_iter()
        .take(PAGE as usize)
        .map(|r| r.0)
        .collect();
    if repo_ids.len() != PAGE as usize || repo_ids != raw_ids || repo_ids != dsl_ids {
        return Err(format!("{name}: the repository, raw SQL and DSL pages differ").into());
    }
    drop(conn);

    let per_round = s.store_calls / ROUNDS;
    let warmup = (per_round / 10).max(20);
    // µs per call of each variant in each round.
    let mut rounds: Vec<[f64; 4]> = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        // Fresh connections every round: on a small VM a PostgreSQL round
        // trip costs more or less depending on where the kernel runs that
        // connection's backend process, and that sticks to the connection.
        let store = Store::open(url, 1)?; // one pooled connection
        let mut raw_conn = chatdesk_store::connect(url)?;
        let mut dsl_conn = chatdesk_store::connect(url)?;
        let mut ping_conn = chatdesk_store::connect(url)?;
        let mut repo = || -> Result<()> {
            black_box(store.list_content(site, &filter, &first_page)?);
            Ok(())
        };
        let mut raw = || -> Result<()> {
            black_box(raw_page(&mut raw_conn, &site_text)?);
            Ok(())
        };
        let mut dsl = || -> Result<()> {
            black_box(dsl_page(&mut dsl_conn, &site_text)?);
            Ok(())
        };
        // What the pool's test on checkout adds to a query: one more round trip.
        let mut dsl_after_ping = || -> Result<()> {
            ping_conn.ping()?;
            black_box(dsl_page(&mut ping_conn, &site_text)?);
            Ok(())
        };
        let mut variants: [&mut dyn FnMut() -> Result<()>; 4] =
            [&mut repo, &mut raw, &mut dsl, &mut dsl_after_ping];
        let mut round = [0.0; 4];
        for (f, micros) in variants.iter_mut().zip(round.iter_mut()) {
            for _ in 0..warmup {
                f()?;
            }
            let t = Instant::now();
            for _ in 0..per_round {
                f()?;
            }
            *micros = t.elapsed().as_secs_f64() * 1e6 / per_round as f64;
        }
        rounds.push(round);
    }
    // Every round has the same number of calls: the mean of the rounds is
    // the mean of all calls.
    let column = |i: usize| rounds.iter().map(|r| r[i]).sum::<f64>() / rounds.len() as f64;
    let ratio = |i: usize, j: usize| column(i) / column(j);
    println!(
        "{:<10} {:>10.1} {:>9.1} {:>9.1} {:>9.1} {:>10.2} {:>10.2}",
        name,
        column(0),
        column(1),
        column(2),
        column(3),
        ratio(0, 1),
        ratio(0, 2),
    );
    Ok(())
}
