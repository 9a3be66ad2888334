//! The change log behind the replicas' caches of `GET /sdk/chat/config`,
//! and the watcher that reports its entries.
//!
//! Every write transaction that changes what the config answers (a site,
//! its widget, its tenant's plan) calls [`record_change`]: it appends a row
//! to `config_changes` and, on PostgreSQL, sends `NOTIFY chatdesk_config`
//! in the same transaction. So a change is reported if and only if it
//! commits: PostgreSQL delivers a notification at commit and drops it on
//! rollback, and a rolled-back row never becomes visible.
//!
//! [`Store::watch_config_changes`] runs one thread per replica that
//! reports changes to a callback (the config cache):
//! - on PostgreSQL it `LISTEN`s on a dedicated connection and hears a
//!   dashboard change on another replica within about 100 ms;
//! - on both backends it reads the log every 2 s through the pool: that
//!   carries changes made by processes that cannot notify (the CLI on
//!   SQLite), and is a backstop on PostgreSQL;
//! - once a minute it deletes entries older than an hour.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chatdesk_domain::ids::{SiteId, TenantId};
use chatdesk_domain::ports::ConfigChange;
use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::connection::{open, DbConnection, SqliteOpen};
use crate::error::StoreError;
use crate::rows::to_db_time;
use crate::schema::config_changes;
use crate::{Backend, Store};

/// The PostgreSQL notification channel of config changes.
pub(crate) const CHANNEL: &str = "chatdesk_config";

/// The `application_name` of the listener's connection, so operators can
/// tell it apart in `pg_stat_activity`.
const LISTENER_NAME: &str = "chatdesk-config-listener";

/// How often the watcher looks at its notifications and at `stop`.
const TICK: Duration = Duration::from_millis(100);
/// How often the watcher reads the change log.
const LOG_POLL: Duration = Duration::from_secs(2);
/// How many log entries one read takes at most (more are read at once
/// after it).
const LOG_BATCH: i64 = 1000;
/// How often the watcher prunes the log.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How long an entry is kept: far longer than any replica takes to read
/// it, unless its reads fail that long (see [`LOG_GAP`]).
const KEEP_FOR: chrono::TimeDelta = chrono::TimeDelta::hours(1);
/// After reads of the log failed for this long, entries the watcher never
/// read may have been pruned by another replica (its clock a little
/// ahead), so the first read that succeeds reports
/// [`ConfigChange::Everything`].
const LOG_GAP: Duration = Duration::from_secs(30 * 60);
/// The first wait before reconnecting the listener, doubled after each
/// failure up to [`RECONNECT_CAP`].
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
/// The longest wait between reconnection attempts.
const RECONNECT_CAP: Duration = Duration::from_secs(2);
/// The most notifications handled in one tick, so a flood cannot starve
/// the `stop` check.
const NOTIFICATIONS_PER_TICK: usize = 10_000;

/// What a change-log entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeTarget {
    /// A site: its fields, key, identity secret, widget, or its deletion.
    Site(SiteId),
    /// A tenant: its plan.
    Tenant(TenantId),
}

impl ChangeTarget {
    /// The NOTIFY payload: `site:<uuid>` or `tenant:<uuid>`.
    fn payload(self) -> String {
        match self {
            ChangeTarget::Site(id) => format!("site:{id}"),
            ChangeTarget::Tenant(id) => format!("tenant:{id}"),
        }
    }
}

/// Records that `target` changed, stamped `now` (the stamp only decides
/// when the entry is pruned). Call it inside the write transaction that
/// makes the change: on PostgreSQL it also sends the notification, which
/// is delivered when that transaction commits and never if it rolls back.
pub(crate) fn record_change(
    conn: &mut DbConnection,
    target: ChangeTarget,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let (site_id, tenant_id) = match target {
        ChangeTarget::Site(id) => (Some(id.to_string()), None),
        ChangeTarget::Tenant(id) => (None, Some(id.to_string())),
    };
    diesel::insert_into(config_changes::table)
        .values((
            config_changes::site_id.eq(site_id),
            config_changes::tenant_id.eq(tenant_id),
            config_changes::changed_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
    if let DbConnection::Pg(pg) = conn {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<Text, _>(CHANNEL)
            .bind::<Text, _>(target.payload())
            .execute(pg)?;
    }
    Ok(())
}

/// A notification's payload as a change; anything unexpected is
/// [`ConfigChange::Everything`].
fn parse_payload(payload: &str) -> ConfigChange {
    match payload.split_once(':') {
        Some(("site", id)) => id
            .parse()
            .map_or(ConfigChange::Everything, ConfigChange::Site),
        Some(("tenant", id)) => id
            .parse()
            .map_or(ConfigChange::Everything, ConfigChange::Tenant),
        _ => ConfigChange::Everything,
    }
}

/// A log entry as a change; an unreadable one is
/// [`ConfigChange::Everything`].
fn entry_change(site_id: Option<&str>, tenant_id: Option<&str>) -> ConfigChange {
    match (site_id, tenant_id) {
        (Some(site), _) => site
            .parse()
            .map_or(ConfigChange::Everything, ConfigChange::Site),
        (None, Some(tenant)) => tenant
            .parse()
            .map_or(ConfigChange::Everything, ConfigChange::Tenant),
        (None, None) => ConfigChange::Everything,
    }
}

/// How the config watcher runs. The default is what production uses; the
/// tests turn parts off to prove each path alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherSettings {
    /// How often the change log is read; `None`: never (PostgreSQL then
    /// relies on its notifications alone).
    pub log_poll: Option<Duration>,
    /// Whether to `LISTEN` for notifications (PostgreSQL only).
    pub listen: bool,
    /// How often entries older than an hour are deleted.
    pub prune_every: Duration,
    /// The `application_name` of the listener's connection.
    pub listener_name: String,
}

impl Default for WatcherSettings {
    fn default() -> Self {
        WatcherSettings {
            log_poll: Some(LOG_POLL),
            listen: true,
            prune_every: PRUNE_EVERY,
            listener_name: LISTENER_NAME.to_string(),
        }
    }
}

impl Store {
    /// Starts the thread that reports every committed change to what
    /// `GET /sdk/chat/config` answers, made by this process or any other
    /// on the same database, to `on_change`, until `stop` is set.
    ///
    /// - On PostgreSQL a change is reported within about 100 ms of its
    ///   commit (LISTEN/NOTIFY on a connection of its own, outside the
    ///   pool). When that connection is lost, [`ConfigChange::Everything`]
    ///   is reported at once, the watcher reconnects with backoff (up to
    ///   2 s apart), and reports `Everything` again once it listens again.
    /// - On both backends the change log is read every 2 s, so a change is
    ///   reported within about 2 s even when no notification came (the CLI
    ///   on SQLite). Only changes committed after this call are reported.
    /// - A change may be reported more than once (by both paths).
    ///
    /// The thread checks `stop` every 100 ms, except while it waits on the
    /// database (a connection attempt or a pool checkout gives up within
    /// about 2 s), and closes its connection when it ends. It never
    /// panics: failures are logged and retried. A panic of `on_change` is
    /// caught and logged.
    pub fn watch_config_changes(
        &self,
        on_change: impl Fn(ConfigChange) + Send + 'static,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<JoinHandle<()>> {
        self.watch_config_changes_with(WatcherSettings::default(), on_change, stop)
    }

    /// [`Store::watch_config_changes`] with other settings, for tests.
    #[cfg(feature = "testing")]
    pub fn watch_config_changes_tuned(
        &self,
        settings: WatcherSettings,
        on_change: impl Fn(ConfigChange) + Send + 'static,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<JoinHandle<()>> {
        self.watch_config_changes_with(settings, on_change, stop)
    }

    fn watch_config_changes_with(
        &self,
        settings: WatcherSettings,
        on_change: impl Fn(ConfigChange) + Send + 'static,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<JoinHandle<()>> {
        // The LISTEN, then where the log stands, are taken before
        // returning, so every change committed after this call is
        // reported. In this order: a change taking its seq before the
        // log's newest but committing after that read is not read from the
        // log, and is heard. When the database cannot be reached now, the
        // thread gets them later and reports `Everything` then.
        let now = Instant::now();
        let listener = if settings.listen && self.backend == Backend::Postgres {
            match connect_listener(&self.url, &settings.listener_name) {
                Ok(conn) => Listener::Listening(conn),
                Err(error) => {
                    tracing::warn!(
                        %error,
                        "config watcher: cannot listen for config changes; retrying"
                    );
                    Listener::Down {
                        retry_at: now + RECONNECT_FIRST,
                        backoff: RECONNECT_FIRST,
                    }
                }
            }
        } else {
            Listener::Off
        };
        let log = settings.log_poll.map(|every| {
            let (last, failing_since) = match self.last_seq() {
                Ok(seq) => (Some(seq), None),
                Err(error) => {
                    tracing::warn!(%error, "config watcher: cannot read the change log; retrying");
                    (None, Some(now))
                }
            };
            LogPoll {
                every,
                next_at: now + every,
                last,
                failing_since,
            }
        });
        let mut watcher = Watcher {
            store: self.clone(),
            on_change,
            listener_name: settings.listener_name,
            listener,
            log,
            prune_every: settings.prune_every,
            next_prune_at: now + settings.prune_every,
        };
        std::thread::Builder::new()
            .name("chatdesk-config-watcher".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    watcher.tick();
                    std::thread::sleep(TICK);
                }
                // Dropping the listener's connection closes it.
                drop(watcher);
                tracing::debug!("config watcher stopped");
            })
    }

    /// The newest entry's `seq` (0 when the log is empty).
    fn last_seq(&self) -> Result<i64, StoreError> {
        let mut conn = self.conn()?;
        let max: Option<i64> = config_changes::table
            .select(diesel::dsl::max(config_changes::seq))
            .first(&mut *conn)?;
        Ok(max.unwrap_or(0))
    }

    /// Up to [`LOG_BATCH`] entries after `after`, oldest first.
    fn entries_after(&self, after: i64) -> Result<Vec<LogEntry>, StoreError> {
        let mut conn = self.conn()?;
        Ok(config_changes::table
            .filter(config_changes::seq.gt(after))
            .order(config_changes::seq.asc())
            .limit(LOG_BATCH)
            .select((
                config_changes::seq,
                config_changes::site_id,
                config_changes::tenant_id,
            ))
            .load(&mut *conn)?)
    }

    /// Deletes the entries stamped before `cutoff`; returns how many.
    fn prune_changes(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        Ok(diesel::delete(
            config_changes::table.filter(config_changes::changed_at.lt(to_db_time(cutoff))),
        )
        .execute(&mut *conn)?)
    }
}

/// `(seq, site_id, tenant_id)` of a log entry.
type LogEntry = (i64, Option<String>, Option<String>);

/// A connection of its own (not the pool's: a pooled one would be handed
/// to other work, and LISTEN belongs to the session), made like the pool's
/// (the same URL with the same network timeouts), named, and listening.
fn connect_listener(url: &str, name: &str) -> Result<PgConnection, StoreError> {
    let DbConnection::Pg(mut conn) = open(url, SqliteOpen::ExistingOnly)? else {
        return Err(StoreError::UnsupportedUrl(crate::redact_url(url)));
    };
    diesel::sql_query("SELECT set_config('application_name', $1, false)")
        .bind::<Text, _>(name)
        .execute(&mut conn)?;
    conn.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    Ok(conn)
}

/// The listener's state.
enum Listener {
    /// Not listening: SQLite, or turned off.
    Off,
    /// Listening on this connection.
    Listening(PgConnection),
    /// The connection was lost (or never made): the next attempt at
    /// `retry_at`, then `backoff` later (doubled) if it fails.
    Down {
        retry_at: Instant,
        backoff: Duration,
    },
}

/// The reading of the change log.
struct LogPoll {
    every: Duration,
    next_at: Instant,
    /// The last `seq` reported; `None` until the log could be read.
    last: Option<i64>,
    /// When reads started failing, while they do.
    failing_since: Option<Instant>,
}

struct Watcher<F> {
    store: Store,
    on_change: F,
    listener_name: String,
    listener: Listener,
    log: Option<LogPoll>,
    prune_every: Duration,
    next_prune_at: Instant,
}

impl<F: Fn(ConfigChange)> Watcher<F> {
    fn tick(&mut self) {
        self.hear_notifications();
        self.read_log();
        self.prune();
    }

    fn report(&self, change: ConfigChange) {
        if catch_unwind(AssertUnwindSafe(|| (self.on_change)(change))).is_err() {
            tracing::error!(?change, "config watcher: the change handler panicked");
        }
    }

    /// Reports the notifications that arrived, or reconnects when due.
    fn hear_notifications(&mut self) {
        let now = Instant::now();
        match &mut self.listener {
            Listener::Off => {}
            Listener::Listening(conn) => {
                // `notifications_iter` never waits: each step reads what
                // the socket already holds (PQconsumeInput) and yields the
                // next notification received, or ends.
                let mut heard = Vec::new();
                let mut lost = None;
                for notification in conn.notifications_iter().take(NOTIFICATIONS_PER_TICK) {
                    match notification {
                        Ok(n) if n.channel == CHANNEL => heard.push(parse_payload(&n.payload)),
                        Ok(_) => {}
                        Err(error) => {
                            lost = Some(error);
                            break;
                        }
                    }
                }
                for change in heard {
                    self.report(change);
                }
                if let Some(error) = lost {
                    // Once per outage: the reconnection attempts log at
                    // debug until one succeeds.
                    tracing::warn!(
                        %error,
                        "config watcher: lost the connection listening for config changes; \
                         reconnecting"
                    );
                    self.listener = Listener::Down {
                        retry_at: now + RECONNECT_FIRST,
                        backoff: RECONNECT_FIRST,
                    };
                    self.report(ConfigChange::Everything);
                }
            }
            Listener::Down { retry_at, backoff } => {
                if now < *retry_at {
                    return;
                }
                match connect_listener(&self.store.url, &self.listener_name) {
                    Ok(conn) => {
                        tracing::info!("config watcher: listening for config changes again");
                        self.listener = Listener::Listening(conn);
                        // Changes committed while nobody listened, in an
                        // order the log's reader could skip (see
                        // `read_log`), were heard by neither path.
                        self.report(ConfigChange::Everything);
                    }
                    Err(error) => {
                        tracing::debug!(%error, "config watcher: cannot listen yet");
                        let next = (*backoff * 2).min(RECONNECT_CAP);
                        *retry_at = Instant::now() + *backoff;
                        *backoff = next;
                    }
                }
            }
        }
    }

    /// Reports the log's entries after the last one read, when due.
    ///
    /// `seq > last` is exact on SQLite, whose writers are serialised: seq
    /// values become visible in order. On PostgreSQL a transaction can take
    /// its seq before another and commit after it, so the reader may
    /// already have passed its seq when it becomes visible, and never reads
    /// it. That change is still heard: its transaction sent NOTIFY at
    /// commit to every listener, and a listener that was disconnected then
    /// reports `Everything` when it listens again. The log is the path for
    /// what notifications cannot carry (SQLite, where other processes such
    /// as the CLI write) and a backstop for a notification that got lost.
    fn read_log(&mut self) {
        let now = Instant::now();
        let Some(log) = &mut self.log else {
            return;
        };
        if now < log.next_at {
            return;
        }
        log.next_at = now + log.every;
        let mut changes = Vec::new();
        let outcome = read_entries(&self.store, log, &mut changes);
        match outcome {
            Ok(()) => {
                if let Some(since) = log.failing_since.take() {
                    tracing::info!("config watcher: reading the change log again");
                    if since.elapsed() >= LOG_GAP {
                        changes.push(ConfigChange::Everything);
                    }
                }
            }
            Err(error) => {
                if log.failing_since.is_none() {
                    log.failing_since = Some(now);
                    tracing::warn!(%error, "config watcher: cannot read the change log; retrying");
                } else {
                    tracing::debug!(%error, "config watcher: cannot read the change log yet");
                }
            }
        }
        for change in changes {
            self.report(change);
        }
    }

    /// Deletes the entries older than [`KEEP_FOR`], when due. Any replica
    /// may; several doing it at once delete nothing twice.
    fn prune(&mut self) {
        let now = Instant::now();
        if now < self.next_prune_at {
            return;
        }
        self.next_prune_at = now + self.prune_every;
        match self.store.prune_changes(Utc::now() - KEEP_FOR) {
            Ok(deleted) => tracing::debug!(deleted, "config watcher: pruned the change log"),
            Err(error) => tracing::warn!(%error, "config watcher: cannot prune the change log"),
        }
    }
}

/// Reads the entries after `log.last` into `changes` (all of them, a batch
/// at a time), advancing `log.last` past each. The first successful read
/// of a watcher that could not read where the log stood at its start takes
/// the newest `seq` and reports `Everything` (changes since the start may
/// be missed).
fn read_entries(
    store: &Store,
    log: &mut LogPoll,
    changes: &mut Vec<ConfigChange>,
) -> Result<(), StoreError> {
    let mut last = match log.last {
        Some(last) => last,
        None => {
            let newest = store.last_seq()?;
            log.last = Some(newest);
            changes.push(ConfigChange::Everything);
            return Ok(());
        }
    };
    loop {
        let entries = store.entries_after(last)?;
        let full = entries.len() >= usize::try_from(LOG_BATCH).unwrap_or(usize::MAX);
        for (seq, site_id, tenant_id) in entries {
            changes.push(entry_change(site_id.as_deref(), tenant_id.as_deref()));
            last = last.max(seq);
        }
        log.last = Some(last);
        if !full {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn payloads_round_trip_and_anything_else_is_everything() {
        let site = SiteId(Uuid::now_v7());
        let tenant = TenantId(Uuid::now_v7());
        assert_eq!(
            parse_payload(&ChangeTarget::Site(site).payload()),
            ConfigChange::Site(site)
        );
        assert_eq!(
            parse_payload(&ChangeTarget::Tenant(tenant).payload()),
            ConfigChange::Tenant(tenant)
        );
        let table = [
            "",
            "site",
            "site:",
            "site:not-a-uuid",
            "tenant:42",
            "widget:0193b8d2-7c00-7000-8000-000000000000",
            "SITE:0193b8d2-7c00-7000-8000-000000000000",
            "0193b8d2-7c00-7000-8000-000000000000",
        ];
        for payload in table {
            assert_eq!(
                parse_payload(payload),
                ConfigChange::Everything,
                "{payload:?}"
            );
        }
    }

    #[test]
    fn log_entries_as_changes() {
        let site = SiteId(Uuid::now_v7());
        let tenant = TenantId(Uuid::now_v7());
        let (s, t) = (site.to_string(), tenant.to_string());
        let table = [
            (Some(s.as_str()), None, ConfigChange::Site(site)),
            (Some(s.as_str()), Some(t.as_str()), ConfigChange::Site(site)),
            (None, Some(t.as_str()), ConfigChange::Tenant(tenant)),
            (None, None, ConfigChange::Everything),
            (Some("garbage"), None, ConfigChange::Everything),
            (None, Some("garbage"), ConfigChange::Everything),
        ];
        for (site_id, tenant_id, expected) in table {
            assert_eq!(
                entry_change(site_id, tenant_id),
                expected,
                "{site_id:?} {tenant_id:?}"
            );
        }
    }
}
