//! The pool's figures for `/metrics`: its size and use from r2d2, the
//! checkouts that had to wait (measured here, r2d2 does not tell), and the
//! outbox depth.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chatdesk_domain::observability::{Observability, PoolStats, WaitHistogram};
use diesel::dsl::sql;
use diesel::sql_types::BigInt;
use diesel::RunQueryDsl;

use crate::{Pool, PooledConnection, Store, StoreError};

/// How long a scrape waits for a connection to count the outbox: a scrape
/// must answer quickly even when the pool is exhausted or the database is
/// down.
const SCRAPE_CHECKOUT_TIMEOUT: Duration = Duration::from_millis(500);

/// Upper bounds, in seconds, of the checkout-wait histogram's buckets.
pub(crate) const CHECKOUT_WAIT_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Checkouts that had to wait and how long, shared by a store's clones.
#[derive(Debug, Default)]
pub(crate) struct CheckoutWaits {
    /// Waits per bucket (not cumulative); the last slot counts waits longer
    /// than every bound.
    buckets: [AtomicU64; CHECKOUT_WAIT_BUCKETS.len() + 1],
    /// Total waited, in nanoseconds.
    sum_nanos: AtomicU64,
}

impl CheckoutWaits {
    pub(crate) fn record(&self, waited: Duration) {
        let seconds = waited.as_secs_f64();
        let slot = CHECKOUT_WAIT_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(CHECKOUT_WAIT_BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The histogram so far. The count is the buckets' total, so it always
    /// agrees with them.
    pub(crate) fn snapshot(&self) -> WaitHistogram {
        let mut cumulative = 0u64;
        let mut buckets = Vec::with_capacity(CHECKOUT_WAIT_BUCKETS.len());
        for (bound, slot) in CHECKOUT_WAIT_BUCKETS.iter().zip(&self.buckets) {
            cumulative += slot.load(Ordering::Relaxed);
            buckets.push((*bound, cumulative));
        }
        let overflow = self.buckets[CHECKOUT_WAIT_BUCKETS.len()].load(Ordering::Relaxed);
        WaitHistogram {
            count: cumulative + overflow,
            sum_seconds: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)).as_secs_f64(),
            buckets,
        }
    }
}

/// A connection from the pool, waiting up to `timeout`. A checkout that
/// finds no idle connection (it waits for one to be returned or opened) is
/// recorded in `waits`, whether it succeeds or times out.
pub(crate) fn checkout(
    pool: &Pool,
    waits: &CheckoutWaits,
    timeout: Duration,
) -> Result<PooledConnection, r2d2::Error> {
    if let Some(conn) = pool.try_get() {
        return Ok(conn);
    }
    let started = Instant::now();
    let conn = pool.get_timeout(timeout);
    waits.record(started.elapsed());
    conn
}

impl Observability for Store {
    fn pool_stats(&self) -> PoolStats {
        let state = self.pool.state();
        PoolStats {
            max_connections: self.pool.max_size(),
            open_connections: state.connections,
            idle_connections: state.idle_connections,
            checkout_waits: self.checkout_waits.snapshot(),
        }
    }

    fn outbox_depth(&self) -> Result<u64, chatdesk_domain::Error> {
        let mut conn = checkout(&self.pool, &self.checkout_waits, SCRAPE_CHECKOUT_TIMEOUT)
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        let pending: i64 = diesel::select(sql::<BigInt>(
            "(SELECT COUNT(*) FROM email_outbox WHERE status = 'PENDING')",
        ))
        .get_result(&mut *conn)
        .map_err(StoreError::Query)?;
        Ok(u64::try_from(pending).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// A store of `size` connections on a fresh SQLite file, removed on drop.
    struct TempStore {
        store: Store,
        path: std::path::PathBuf,
    }

    impl TempStore {
        fn new(size: u32) -> TempStore {
            let path = std::env::temp_dir().join(format!(
                "chatdesk-observability-{}.sqlite3",
                uuid::Uuid::new_v4()
            ));
            let store = Store::open(&format!("sqlite://{}", path.display()), size).unwrap();
            TempStore { store, path }
        }
    }

    impl Drop for TempStore {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm", ".lock"] {
                let mut file = self.path.clone().into_os_string();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
        }
    }

    #[test]
    fn pool_stats_count_open_idle_and_checked_out_connections() {
        let temp = TempStore::new(3);
        let store = &temp.store;
        let held = store.conn().unwrap();
        let stats = store.pool_stats();
        assert_eq!(stats.max_connections, 3);
        assert!(stats.open_connections >= 1 && stats.open_connections <= 3);
        assert_eq!(stats.in_use(), 1, "{stats:?}");
        drop(held);
        assert_eq!(store.pool_stats().in_use(), 0);
    }

    #[test]
    fn a_checkout_that_waits_for_a_connection_is_recorded() {
        let temp = TempStore::new(1);
        let store = temp.store.clone();
        // Let the pool open its one connection, then take it.
        let held = store.conn().unwrap();
        let before = store.pool_stats().checkout_waits;
        let (started, waiting) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            started.send(()).unwrap();
            store.conn().map(drop)
        });
        waiting.recv().unwrap();
        std::thread::sleep(Duration::from_millis(120));
        drop(held);
        waiter.join().unwrap().unwrap();
        let after = temp.store.pool_stats().checkout_waits;
        assert_eq!(after.count, before.count + 1, "{after:?}");
        assert!(after.sum_seconds - before.sum_seconds >= 0.1, "{after:?}");
        // An idle connection is handed out without waiting.
        drop(temp.store.conn().unwrap());
        assert_eq!(temp.store.pool_stats().checkout_waits.count, after.count);
    }

    #[test]
    fn outbox_depth_counts_only_pending_rows() {
        use diesel::connection::SimpleConnection;

        let temp = TempStore::new(2);
        temp.store.run_migrations().unwrap();
        assert_eq!(temp.store.outbox_depth(), Ok(0));
        // Rows without their tickets: this test is about the count alone.
        let mut conn = crate::connect(&format!("sqlite://{}", temp.path.display())).unwrap();
        let crate::DbConnection::Sqlite(conn) = &mut conn else {
            panic!("a SQLite connection");
        };
        let row = |n: u32, status: &str, next: &str, sent: &str| {
            format!(
                "INSERT INTO email_outbox (id, ticket_id, site_id, tenant_id, status, \
                 message_id, next_attempt_at, created_at, updated_at, sent_at) VALUES \
                 ('o{n}', 't{n}', 's', 'x', '{status}', 'm{n}', {next}, \
                 '2026-11-25 10:00:00', '2026-11-25 10:00:00', {sent});"
            )
        };
        let now = "'2026-11-25 10:00:00'";
        conn.batch_execute(&format!(
            "PRAGMA foreign_keys = OFF; {} {} {} {}",
            row(1, "PENDING", now, "NULL"),
            row(2, "PENDING", now, "NULL"),
            row(3, "SENT", "NULL", now),
            row(4, "FAILED", "NULL", "NULL"),
        ))
        .unwrap();
        assert_eq!(temp.store.outbox_depth(), Ok(2));
    }

    #[test]
    fn outbox_depth_is_an_error_when_it_cannot_be_read() {
        // No migrations: there is no outbox table.
        let temp = TempStore::new(1);
        assert!(temp.store.outbox_depth().is_err());
        // The pool figures need no query.
        assert_eq!(temp.store.pool_stats().max_connections, 1);
    }

    #[test]
    fn waits_land_in_the_first_bucket_that_holds_them() {
        let waits = CheckoutWaits::default();
        for millis in [0, 1, 3, 30, 30, 5_000] {
            waits.record(Duration::from_millis(millis));
        }
        let histogram = waits.snapshot();
        assert_eq!(histogram.count, 6);
        assert!((histogram.sum_seconds - 5.064).abs() < 1e-9);
        let at = |bound: f64| {
            histogram
                .buckets
                .iter()
                .find(|(b, _)| (*b - bound).abs() < 1e-12)
                .map(|(_, count)| *count)
        };
        assert_eq!(at(0.0005), Some(1));
        assert_eq!(at(0.001), Some(2));
        assert_eq!(at(0.0025), Some(2));
        assert_eq!(at(0.005), Some(3));
        assert_eq!(at(0.025), Some(3));
        assert_eq!(at(0.05), Some(5));
        // 5 s is past the last bound: only in the count.
        assert_eq!(at(2.5), Some(5));
        assert_eq!(histogram.buckets.len(), CHECKOUT_WAIT_BUCKETS.len());
    }
}
