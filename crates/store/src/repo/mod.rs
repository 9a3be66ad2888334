//! The domain's ports implemented on [`Store`](crate::Store).

mod content;
mod conversations;
mod directory;
mod idempotency;
mod members;
mod outbox;
mod sites;
mod tenants;
mod tickets;
mod visitor;
mod widgets;

pub use conversations::{conversation_list_index, conversation_list_sql, ListBounds};

use chatdesk_domain::Error;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::connection::DbConnection;
use crate::error::StoreError;
use crate::rows::{SiteRow, TenantRow};
use crate::schema;

/// How a repository call failed: a domain outcome (not found, conflict,
/// rule broken) or a storage failure.
#[derive(Debug)]
pub(crate) enum Failure {
    Domain(Error),
    Store(StoreError),
}

impl From<DieselError> for Failure {
    fn from(error: DieselError) -> Self {
        Failure::Store(StoreError::Query(error))
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::Store(error)
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Domain(error)
    }
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Domain(error) => error,
            Failure::Store(error) => error.into(),
        }
    }
}

/// Whether `error` is a unique violation of the constraint `constraint`
/// (PostgreSQL names it) over `columns` (SQLite lists them as
/// `table.column, …`).
pub(crate) fn violates_unique(error: &DieselError, constraint: &str, columns: &str) -> bool {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            info.constraint_name() == Some(constraint)
                || info.message().contains(constraint)
                || info.message().contains(columns)
        }
        _ => false,
    }
}

/// Whether `error` is a foreign-key violation.
pub(crate) fn violates_foreign_key(error: &DieselError) -> bool {
    matches!(
        error,
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)
    )
}

/// Reads a tenant inside a write transaction, locking its row on
/// PostgreSQL so that decisions taken on the tenant's behalf (the site
/// cap, the last owner, the credit balance) are serialised. SQLite write
/// transactions are already serialised.
///
/// The lock is `FOR NO KEY UPDATE`: it excludes the other lockers (and
/// updates) exactly like `FOR UPDATE`, but not the `KEY SHARE` locks that
/// foreign-key checks take, so inserting rows that reference the tenant
/// (tickets, widgets, …) is not held up meanwhile.
pub(crate) fn lock_tenant(conn: &mut DbConnection, id: &str) -> QueryResult<Option<TenantRow>> {
    // `as_select()` is generic over the backend, so each arm builds its own.
    let query = schema::tenants::table.find(id.to_string());
    match conn {
        DbConnection::Pg(pg) => query
            .select(TenantRow::as_select())
            .for_no_key_update()
            .first(pg)
            .optional(),
        DbConnection::Sqlite(_) => query.select(TenantRow::as_select()).first(conn).optional(),
    }
}

/// Reads a site inside a write transaction, locking its row on PostgreSQL
/// (`FOR NO KEY UPDATE`, as [`lock_tenant`]).
pub(crate) fn lock_site(conn: &mut DbConnection, id: &str) -> QueryResult<Option<SiteRow>> {
    // `as_select()` is generic over the backend, so each arm builds its own.
    let query = schema::sites::table.find(id.to_string());
    match conn {
        DbConnection::Pg(pg) => query
            .select(SiteRow::as_select())
            .for_no_key_update()
            .first(pg)
            .optional(),
        DbConnection::Sqlite(_) => query.select(SiteRow::as_select()).first(conn).optional(),
    }
}

/// The number of rows to fetch for a page of `limit`: one more, to learn
/// whether another page follows.
pub(crate) fn overfetch(limit: u32) -> i64 {
    i64::from(limit) + 1
}

/// Converts fetched rows to domain values.
pub(crate) fn convert<R, T>(
    rows: Vec<R>,
    into_domain: impl Fn(R) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.into_iter().map(into_domain).collect()
}
