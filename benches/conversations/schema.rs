//! The bench's own PostgreSQL schema: made at the start, dropped at the
//! end (also when the run fails part-way), never anything else.

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::Result;

/// Every schema this program makes starts with this.
pub(crate) const PREFIX: &str = "bench_conversations_";

/// A schema of the server at `base_url`, selected through the URL's
/// `options=-csearch_path=…` (as the store's test schemas are).
pub(crate) struct BenchSchema {
    base_url: String,
    name: String,
    /// Whether it is dropped when this goes (`BENCH_KEEP_SCHEMA=1` keeps it).
    drop_it: bool,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

impl BenchSchema {
    /// A fresh, empty schema.
    pub(crate) fn create(base_url: &str, keep: bool) -> Result<BenchSchema> {
        let mut conn = connect(base_url)?;
        warn_about_leftovers(&mut conn);
        let name = format!("{PREFIX}{}", uuid::Uuid::new_v4().simple());
        conn.batch_execute(&format!("CREATE SCHEMA {name}"))?;
        Ok(BenchSchema {
            base_url: base_url.to_string(),
            name,
            drop_it: !keep,
        })
    }

    /// A schema an earlier run kept (`BENCH_SCHEMA`), loaded already.
    pub(crate) fn reuse(base_url: &str, name: &str, keep: bool) -> Result<BenchSchema> {
        let valid = name.starts_with(PREFIX)
            && name[PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            && name.len() > PREFIX.len();
        if !valid {
            return Err(
                format!("BENCH_SCHEMA must name a schema {PREFIX}<hex> this program made").into(),
            );
        }
        let mut conn = connect(base_url)?;
        let found: Vec<Name> =
            diesel::sql_query("SELECT nspname AS name FROM pg_namespace WHERE nspname = $1")
                .bind::<Text, _>(name)
                .load(&mut conn)?;
        if found.is_empty() {
            return Err(format!("there is no schema {name}").into());
        }
        Ok(BenchSchema {
            base_url: base_url.to_string(),
            name: name.to_string(),
            drop_it: !keep,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The URL of the schema, for the store, the server and the SQL side.
    pub(crate) fn url(&self) -> String {
        let separator = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{separator}options=-csearch_path%3D{}",
            self.base_url, self.name
        )
    }

    /// A plain connection to the schema.
    pub(crate) fn connect(&self) -> Result<PgConnection> {
        connect(&self.url())
    }
}

impl Drop for BenchSchema {
    fn drop(&mut self) {
        if !self.drop_it {
            eprintln!(
                "kept the schema {} (BENCH_KEEP_SCHEMA); reuse it with BENCH_SCHEMA={0}, \
                 drop it with: psql \"$TEST_DATABASE_URL\" -c 'DROP SCHEMA {0} CASCADE'",
                self.name
            );
            return;
        }
        match connect(&self.base_url) {
            Ok(mut conn) => {
                match conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name)) {
                    Ok(()) => println!("dropped the schema {}", self.name),
                    Err(e) => eprintln!("could not drop the schema {}: {e}", self.name),
                }
            }
            Err(e) => eprintln!("could not drop the schema {}: {e}", self.name),
        }
    }
}

fn connect(url: &str) -> Result<PgConnection> {
    PgConnection::establish(url).map_err(|e| {
        format!(
            "PostgreSQL at {} is unavailable: {e}",
            chatdesk_store::redact_url(url)
        )
        .into()
    })
}

/// Schemas of earlier runs that were stopped before they could drop them
/// (another run may be using one now, so they are named, not dropped).
fn warn_about_leftovers(conn: &mut PgConnection) {
    let found: Vec<Name> = diesel::sql_query(
        "SELECT nspname AS name FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY 1",
    )
    .bind::<Text, _>(PREFIX)
    .load(conn)
    .unwrap_or_default();
    for schema in found {
        eprintln!(
            "note: the schema {} is left from an earlier run (or in use by another); \
             drop it with DROP SCHEMA {0} CASCADE once no run uses it",
            schema.name
        );
    }
}
