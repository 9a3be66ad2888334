//! One transaction across several repository calls: while
//! [`Store::atomically`] runs its work on a thread, every connection that
//! thread asks this store for is the one connection holding the
//! transaction, so what the calls write commits together or not at all.
//! The repositories need no change: their own transactions become
//! savepoints inside it.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::Connection;

use crate::connection::DbConnection;
use crate::{PooledConnection, Store, StoreError};

/// The connection a thread's unit of work holds: which store's pool it
/// came from, and the connection itself while no call is using it.
struct Pinned {
    pool: usize,
    conn: Option<PooledConnection>,
}

thread_local! {
    static PINNED: RefCell<Option<Pinned>> = const { RefCell::new(None) };
}

/// A connection handed to a repository call: from the pool, or the
/// thread's unit of work (given back to it when the call is done).
pub(crate) enum Conn {
    Pooled(PooledConnection),
    Pinned(Option<PooledConnection>),
}

impl Deref for Conn {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        match self {
            Conn::Pooled(conn) => conn,
            // Only `Drop` empties it.
            Conn::Pinned(conn) => conn.as_deref().unwrap_or_else(|| unreachable!()),
        }
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut DbConnection {
        match self {
            Conn::Pooled(conn) => conn,
            Conn::Pinned(conn) => conn.as_deref_mut().unwrap_or_else(|| unreachable!()),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Conn::Pinned(conn) = self {
            let conn = conn.take();
            PINNED.with(|pinned| {
                if let Some(pinned) = pinned.borrow_mut().as_mut() {
                    pinned.conn = conn;
                }
            });
        }
    }
}

impl Store {
    /// Which pool this store's connections come from (clones share it).
    fn pool_id(&self) -> usize {
        std::sync::Arc::as_ptr(&self.checkout_waits) as usize
    }

    /// The connection for one repository call: the thread's unit of work
    /// when it runs one on this store, else one from the pool.
    pub(crate) fn conn(&self) -> Result<Conn, StoreError> {
        let id = self.pool_id();
        let pinned = PINNED.with(|pinned| match pinned.borrow_mut().as_mut() {
            Some(pinned) if pinned.pool == id => Some(pinned.conn.take()),
            _ => None,
        });
        match pinned {
            Some(Some(conn)) => Ok(Conn::Pinned(Some(conn))),
            Some(None) => Err(StoreError::Pool(
                "a repository call asked for a second connection inside a unit of work".into(),
            )),
            None => self.pooled().map(Conn::Pooled),
        }
    }

    /// Runs `work` in one transaction (on SQLite taking the write lock up
    /// front): commits when it returns `Ok`, rolls back when it returns
    /// `Err` or panics. Repository calls `work` makes on this thread use
    /// the transaction's connection; a unit of work inside another is part
    /// of the outer one.
    pub(crate) fn unit_of_work<T, E>(&self, work: impl FnOnce() -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let id = self.pool_id();
        let nested = PINNED.with(|pinned| pinned.borrow().as_ref().is_some_and(|p| p.pool == id));
        if nested {
            return work();
        }
        let mut conn = self.pooled()?;
        begin(&mut conn).map_err(StoreError::Query)?;
        PINNED.with(|pinned| {
            *pinned.borrow_mut() = Some(Pinned {
                pool: id,
                conn: Some(conn),
            })
        });
        // Takes the connection back even when `work` panics, rolling back
        // what it left open, so no transaction goes back to the pool.
        let unpin = PinGuard;
        let result = work();
        let mut conn = unpin.take()?;
        match result {
            Ok(value) => {
                <DbConnection as Connection>::TransactionManager::commit_transaction(&mut *conn)
                    .map_err(StoreError::Query)?;
                Ok(value)
            }
            Err(error) => {
                if let Err(rollback) =
                    <DbConnection as Connection>::TransactionManager::rollback_transaction(
                        &mut *conn,
                    )
                {
                    tracing::warn!(%rollback, "a unit of work could not be rolled back");
                }
                Err(error)
            }
        }
    }
}

/// Begins the outer transaction: `BEGIN IMMEDIATE` on SQLite (see
/// [`crate::connection::write_transaction`]).
fn begin(conn: &mut DbConnection) -> Result<(), diesel::result::Error> {
    match conn {
        DbConnection::Pg(_) => {
            <DbConnection as Connection>::TransactionManager::begin_transaction(conn)
        }
        DbConnection::Sqlite(sqlite) => {
            AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")
        }
    }
}

/// Takes the pinned connection off the thread.
struct PinGuard;

impl PinGuard {
    fn take(self) -> Result<PooledConnection, StoreError> {
        let pinned = PINNED.with(|pinned| pinned.borrow_mut().take());
        std::mem::forget(self);
        pinned
            .and_then(|pinned| pinned.conn)
            .ok_or_else(|| StoreError::Pool("a unit of work lost its connection".into()))
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        // Reached only while unwinding from a panic in the work.
        if let Some(mut conn) = PINNED
            .with(|pinned| pinned.borrow_mut().take())
            .and_then(|pinned| pinned.conn)
        {
            let _ =
                <DbConnection as Connection>::TransactionManager::rollback_transaction(&mut *conn);
        }
    }
}
