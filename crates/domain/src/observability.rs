//! Observability: what the operations endpoints (`GET /metrics`) need to
//! know about storage. The store implements [`Observability`]; the API reads
//! it at scrape time and never needs the store itself.

use crate::error::Error;

#[cfg(feature = "testing")]
use mockall::automock;

/// The state of the database connection pool at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolStats {
    /// The most connections the pool opens.
    pub max_connections: u32,
    /// Connections open now, idle or checked out.
    pub open_connections: u32,
    /// Open connections waiting in the pool, not checked out.
    pub idle_connections: u32,
    /// Checkouts that found no idle connection and had to wait (for one to
    /// be returned or opened), with how long they waited.
    pub checkout_waits: WaitHistogram,
}

impl PoolStats {
    /// Connections checked out now: open minus idle.
    pub fn in_use(&self) -> u32 {
        self.open_connections.saturating_sub(self.idle_connections)
    }
}

/// A cumulative histogram of waits, in seconds, since the process started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WaitHistogram {
    /// Every wait recorded.
    pub count: u64,
    /// The waits' total, in seconds.
    pub sum_seconds: f64,
    /// `(upper bound in seconds, waits at most that long)`, bounds
    /// ascending, counts cumulative; waits longer than the last bound are
    /// counted only in [`WaitHistogram::count`].
    pub buckets: Vec<(f64, u64)>,
}

/// What the operations endpoints read from storage.
#[cfg_attr(feature = "testing", automock)]
pub trait Observability: Send + Sync {
    /// The pool's state now. Never touches the database, so it answers
    /// while the database is down.
    fn pool_stats(&self) -> PoolStats;

    /// How many emails wait for delivery: the outbox's PENDING rows. One
    /// short query; waits only briefly for a connection, so an overloaded
    /// or unreachable database is an error rather than a long wait.
    fn outbox_depth(&self) -> Result<u64, Error>;
}

impl std::fmt::Debug for dyn Observability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn Observability")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_use_is_open_minus_idle_and_never_negative() {
        for (open, idle, in_use) in [(0, 0, 0), (4, 1, 3), (4, 4, 0), (1, 2, 0)] {
            let stats = PoolStats {
                max_connections: 4,
                open_connections: open,
                idle_connections: idle,
                checkout_waits: WaitHistogram::default(),
            };
            assert_eq!(stats.in_use(), in_use, "open {open}, idle {idle}");
        }
    }
}
