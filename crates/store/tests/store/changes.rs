//! The config change log and its watcher: a change made through one store
//! reaches a watcher on another store of the same database (another
//! replica) in time, on PostgreSQL by its notification alone within a
//! second; a rolled-back change is never reported; the watcher stops when
//! told, survives losing its listening connection, and prunes old entries.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chatdesk_domain::ids::{SiteId, TenantId};
use chatdesk_domain::ports::{ConfigChange, SiteRepository, TenantRepository, WidgetRepository};
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::site::{MappingStatus, Site, SiteChanges, SiteDomain};
use chatdesk_domain::tenant::Plan;
use chatdesk_domain::testing::builders::a_widget;
use chatdesk_domain::version::Precondition;
use chatdesk_domain::widget::{NamedSettings, WidgetTransition};
use chatdesk_domain::Error;
use chatdesk_store::schema::config_changes;
use chatdesk_store::{connect, Backend, DbConnection, Store, WatcherSettings};
use chrono::NaiveDate;
use diesel::prelude::*;
use uuid::Uuid;

use crate::helpers::{later, mapped_site, stored_site, stores, tenant_with_owner, TestStore};

/// How long a change may take to reach another replica's watcher: the
/// log is polled every 2 s, and CLI changes must show within 10 s; the
/// margin keeps a loaded CI machine from failing a healthy watcher.
const IN_TIME: Duration = Duration::from_secs(6);
/// How long a notification may take on PostgreSQL.
const NOTIFIED_IN_TIME: Duration = Duration::from_secs(1);

/// A running watcher and what it reported, each with when it arrived.
struct Watch {
    changes: Receiver<(Instant, ConfigChange)>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watch {
    fn start(store: &Store, settings: WatcherSettings) -> Watch {
        let (sender, changes) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = store
            .watch_config_changes_tuned(
                settings,
                move |change| {
                    let _ = sender.send((Instant::now(), change));
                },
                stop.clone(),
            )
            .expect("starts the watcher");
        Watch {
            changes,
            stop,
            thread: Some(thread),
        }
    }

    /// The first reported change `wanted` accepts, with when it arrived,
    /// if it comes by `deadline`; the changes before it are returned too.
    fn until(
        &self,
        deadline: Instant,
        wanted: impl Fn(ConfigChange) -> bool,
    ) -> (Option<Instant>, Vec<ConfigChange>) {
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.changes.recv_timeout(left) {
                Ok((at, change)) if wanted(change) => return (Some(at), before),
                Ok((_, change)) => before.push(change),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    return (None, before)
                }
            }
        }
    }

    /// Waits for `expected` until `within` after `committed`; returns how
    /// long after the commit it arrived.
    fn expect(&self, expected: ConfigChange, committed: Instant, within: Duration) -> Duration {
        match self.until(committed + within, |c| c == expected) {
            (Some(at), _) => at.saturating_duration_since(committed),
            (None, seen) => panic!(
                "{expected:?} was not reported within {within:?} of its commit; seen: {seen:?}"
            ),
        }
    }

    /// Sets `stop` and waits for the thread to end, at most `within`.
    fn stop(&mut self, within: Duration) -> Result<(), String> {
        self.stop.store(true, Ordering::Relaxed);
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + within;
        while !thread.is_finished() {
            if Instant::now() >= deadline {
                return Err(format!("the watcher still runs {within:?} after stop"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        thread
            .join()
            .map_err(|_| "the watcher thread panicked".to_string())
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.stop(Duration::from_secs(5));
    }
}

/// Another replica: a second pool on the same database.
fn replica(t: &TestStore) -> Store {
    Store::open(t.url(), 4).expect("opens a second pool")
}

/// Settings with the listener named uniquely, so a test can find its own
/// listener among those of the tests running beside it (PostgreSQL
/// notification channels are per database, shared by the tests' schemas).
fn settings() -> WatcherSettings {
    WatcherSettings {
        listener_name: format!("chatdesk-test-{}", Uuid::new_v4().simple()),
        ..WatcherSettings::default()
    }
}

fn new_key(plaintext: &str) -> SiteChanges {
    SiteChanges {
        api_key: Some(("cd_live_rotate".into(), SecretHash::of(plaintext))),
        ..SiteChanges::default()
    }
}

/// A mapped site with a saved (DRAFT) widget.
fn site_with_widget(store: &Store, tenant: TenantId, domain: &str) -> Site {
    let site = mapped_site(store, tenant, domain);
    let widget = a_widget().site_id(site.id).build();
    store
        .save_widget_settings(tenant, &widget, &NamedSettings::ALL, &Precondition::None)
        .expect("saves the widget");
    site
}

/// How many open connections are named `name`.
fn listeners(t: &TestStore, name: &str) -> i64 {
    let Ok(DbConnection::Pg(mut pg)) = connect(t.url()) else {
        panic!("connects to PostgreSQL");
    };
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1")
        .bind::<diesel::sql_types::Text, _>(name)
        .get_result::<Count>(&mut pg)
        .expect("reads pg_stat_activity")
        .n
}

/// Every kind of write that changes the config reaches a watcher on
/// another replica within 3 s, on both backends (PostgreSQL by both
/// paths, SQLite by reading the log).
#[test]
fn every_config_change_reaches_another_replica() {
    for t in stores() {
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Pro);
        let to_publish = site_with_widget(&t, tenant.id, "publish.example.com");
        let to_pause = site_with_widget(&t, tenant.id, "pause.example.com");
        t.transition_widget(tenant.id, to_pause.id, WidgetTransition::Publish, later())
            .expect("publishes");
        let to_edit_widget = site_with_widget(&t, tenant.id, "edit.example.com");
        let to_add_widget = mapped_site(&t, tenant.id, "add.example.com");
        let to_rekey = stored_site(&t, tenant.id, "rekey.example.com");
        let to_verify = stored_site(&t, tenant.id, "verify.example.com");
        let to_map = stored_site(&t, tenant.id, "map.example.com");
        let to_rename = stored_site(&t, tenant.id, "rename.example.com");
        let to_delete = stored_site(&t, tenant.id, "delete.example.com");

        // Started after the set-up: what was recorded before is not
        // reported.
        let other = replica(&t);
        let watch = Watch::start(&other, settings());

        type Write<'a> = Box<dyn Fn() -> Result<(), Error> + 'a>;
        let site = |s: &Site| ConfigChange::Site(s.id);
        let writes: Vec<(&str, ConfigChange, Write)> = vec![
            (
                "publish",
                site(&to_publish),
                Box::new(|| {
                    t.transition_widget(
                        tenant.id,
                        to_publish.id,
                        WidgetTransition::Publish,
                        later(),
                    )
                    .map(drop)
                }),
            ),
            (
                "pause",
                site(&to_pause),
                Box::new(|| {
                    t.transition_widget(tenant.id, to_pause.id, WidgetTransition::Pause, later())
                        .map(drop)
                }),
            ),
            (
                "widget settings",
                site(&to_edit_widget),
                Box::new(|| {
                    let mut draft = a_widget().site_id(to_edit_widget.id).build();
                    draft.settings.welcome_message = "Changed".into();
                    draft.updated_at = later();
                    t.save_widget_settings(
                        tenant.id,
                        &draft,
                        &NamedSettings::ALL,
                        &Precondition::None,
                    )
                    .map(drop)
                }),
            ),
            (
                "widget created",
                site(&to_add_widget),
                Box::new(|| {
                    let widget = a_widget().site_id(to_add_widget.id).build();
                    t.save_widget_settings(
                        tenant.id,
                        &widget,
                        &NamedSettings::ALL,
                        &Precondition::None,
                    )
                    .map(drop)
                }),
            ),
            (
                "key regenerated",
                site(&to_rekey),
                Box::new(|| {
                    t.update_site(
                        tenant.id,
                        to_rekey.id,
                        &new_key("cd_live_rotated_key"),
                        &Precondition::None,
                        later(),
                    )
                    .map(drop)
                }),
            ),
            (
                "identity secret",
                site(&to_verify),
                Box::new(|| {
                    let changes = SiteChanges {
                        identity_secret_hash: Some(SecretHash::of("cd_ids_secret")),
                        ..SiteChanges::default()
                    };
                    t.update_site(
                        tenant.id,
                        to_verify.id,
                        &changes,
                        &Precondition::None,
                        later(),
                    )
                    .map(drop)
                }),
            ),
            (
                "mapping",
                site(&to_map),
                Box::new(|| {
                    let changes = SiteChanges {
                        mapping_status: Some(MappingStatus::Completed),
                        ..SiteChanges::default()
                    };
                    t.update_site(tenant.id, to_map.id, &changes, &Precondition::None, later())
                        .map(drop)
                }),
            ),
            (
                "domain",
                site(&to_rename),
                Box::new(|| {
                    let changes = SiteChanges {
                        domain: Some(SiteDomain::parse("renamed.example.com").expect("valid")),
                        ..SiteChanges::default()
                    };
                    t.update_site(
                        tenant.id,
                        to_rename.id,
                        &changes,
                        &Precondition::None,
                        later(),
                    )
                    .map(drop)
                }),
            ),
            (
                "site deleted",
                site(&to_delete),
                Box::new(|| t.delete_site(tenant.id, to_delete.id)),
            ),
            (
                "plan",
                ConfigChange::Tenant(tenant.id),
                Box::new(|| t.set_plan(tenant.id, Plan::Enterprise).map(drop)),
            ),
        ];
        for (what, expected, write) in writes {
            write().unwrap_or_else(|e| panic!("{what} on {}: {e:?}", t.name()));
            let committed = Instant::now();
            let took = watch.expect(expected, committed, IN_TIME);
            eprintln!("{}: {what} reported after {took:?}", t.name());
        }
    }
}

/// A write that changes nothing records nothing: setting the plan a
/// tenant has, or a site's field to its value.
#[test]
fn writes_that_change_nothing_report_nothing() {
    for t in stores() {
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Pro);
        let unchanged = stored_site(&t, tenant.id, "same.example.com");
        let marker = stored_site(&t, tenant.id, "marker.example.com");
        let other = replica(&t);
        let watch = Watch::start(&other, settings());

        t.set_plan(tenant.id, Plan::Pro)
            .expect("sets the same plan");
        let same_name = SiteChanges {
            name: Some(unchanged.name.clone()),
            ..SiteChanges::default()
        };
        t.update_site(
            tenant.id,
            unchanged.id,
            &same_name,
            &Precondition::None,
            later(),
        )
        .expect("updates nothing");

        // A later change: once it is reported (by every path), anything
        // recorded before it would have been.
        t.update_site(
            tenant.id,
            marker.id,
            &new_key("cd_live_marker_key"),
            &Precondition::None,
            later(),
        )
        .expect("regenerates the key");
        let seen = seen_until_marker(&t, &watch, ConfigChange::Site(marker.id));
        for change in [
            ConfigChange::Tenant(tenant.id),
            ConfigChange::Site(unchanged.id),
        ] {
            assert!(
                !seen.contains(&change),
                "{}: {change:?} in {seen:?}",
                t.name()
            );
        }
    }
}

/// What `watch` reported before `marker` had arrived by every path that
/// is on: twice on PostgreSQL (its notification, then the log), once on
/// SQLite (the log). The notifications arrive in commit order and the log
/// is read in `seq` order, so anything committed before the marker has
/// been reported by then.
fn seen_until_marker(t: &TestStore, watch: &Watch, marker: ConfigChange) -> Vec<ConfigChange> {
    let paths = match t.backend() {
        Backend::Postgres => 2,
        Backend::Sqlite => 1,
    };
    let committed = Instant::now();
    let mut seen = Vec::new();
    for _ in 0..paths {
        let (at, before) = watch.until(committed + IN_TIME, |c| c == marker);
        seen.extend(before);
        assert!(
            at.is_some(),
            "{}: the marker did not arrive by every path; seen {seen:?}",
            t.name()
        );
    }
    seen
}

/// A change whose transaction rolls back (a new domain the tenant already
/// has: the entry is written, then the update fails) is never reported,
/// by either path.
#[test]
fn a_rolled_back_change_reports_nothing() {
    for t in stores() {
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Pro);
        let site = stored_site(&t, tenant.id, "a.example.com");
        let marker = stored_site(&t, tenant.id, "b.example.com");
        let other = replica(&t);
        let watch = Watch::start(&other, settings());

        let taken = SiteChanges {
            domain: Some(SiteDomain::parse("b.example.com").expect("valid")),
            ..SiteChanges::default()
        };
        assert_eq!(
            t.update_site(tenant.id, site.id, &taken, &Precondition::None, later()),
            Err(Error::SiteExists),
            "{}",
            t.name()
        );

        t.update_site(
            tenant.id,
            marker.id,
            &new_key("cd_live_marker_key"),
            &Precondition::None,
            later(),
        )
        .expect("regenerates the key");
        let seen = seen_until_marker(&t, &watch, ConfigChange::Site(marker.id));
        assert!(
            !seen.contains(&ConfigChange::Site(site.id)),
            "{}: the rolled-back change was reported: {seen:?}",
            t.name()
        );
    }
}

/// On PostgreSQL the notification alone (the log's reader off) brings a
/// change from another replica within a second.
#[test]
fn postgres_notifications_arrive_within_a_second() {
    for t in stores() {
        if t.backend() != Backend::Postgres {
            continue;
        }
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Pro);
        let site = site_with_widget(&t, tenant.id, "notify.example.com");
        let other = replica(&t);
        let watch = Watch::start(
            &other,
            WatcherSettings {
                log_poll: None,
                ..settings()
            },
        );

        t.transition_widget(tenant.id, site.id, WidgetTransition::Publish, later())
            .expect("publishes");
        let took = watch.expect(
            ConfigChange::Site(site.id),
            Instant::now(),
            NOTIFIED_IN_TIME,
        );
        eprintln!("publish notified after {took:?}");

        t.set_plan(tenant.id, Plan::Enterprise)
            .expect("sets the plan");
        watch.expect(
            ConfigChange::Tenant(tenant.id),
            Instant::now(),
            NOTIFIED_IN_TIME,
        );
    }
}

/// On PostgreSQL the log alone (no listener) still brings changes, within
/// 3 s: the backstop when a notification is lost.
#[test]
fn postgres_log_alone_brings_changes() {
    for t in stores() {
        if t.backend() != Backend::Postgres {
            continue;
        }
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Pro);
        let site = stored_site(&t, tenant.id, "log.example.com");
        let other = replica(&t);
        let watch = Watch::start(
            &other,
            WatcherSettings {
                listen: false,
                ..settings()
            },
        );

        t.update_site(
            tenant.id,
            site.id,
            &new_key("cd_live_log_only_key"),
            &Precondition::None,
            later(),
        )
        .expect("regenerates the key");
        watch.expect(ConfigChange::Site(site.id), Instant::now(), IN_TIME);
    }
}

/// Killing the listener's connection reports `Everything` (changes may
/// have been missed), then `Everything` again once it listens again, and
/// notifications flow again afterwards.
#[test]
fn a_lost_listener_reports_everything_and_listens_again() {
    for t in stores() {
        if t.backend() != Backend::Postgres {
            continue;
        }
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Pro);
        let site = stored_site(&t, tenant.id, "reconnect.example.com");
        let other = replica(&t);
        let settings = WatcherSettings {
            log_poll: None,
            ..settings()
        };
        let name = settings.listener_name.clone();
        let watch = Watch::start(&other, settings);
        assert_eq!(listeners(&t, &name), 1, "the watcher listens");

        let Ok(DbConnection::Pg(mut admin)) = connect(t.url()) else {
            panic!("connects to PostgreSQL");
        };
        diesel::sql_query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind::<diesel::sql_types::Text, _>(&name)
        .execute(&mut admin)
        .expect("terminates the listener's connection");
        let killed = Instant::now();

        watch.expect(ConfigChange::Everything, killed, IN_TIME);
        let back = watch.expect(ConfigChange::Everything, killed, IN_TIME + IN_TIME);
        eprintln!("listening again {back:?} after the kill");
        assert_eq!(listeners(&t, &name), 1, "the watcher listens again");

        t.update_site(
            tenant.id,
            site.id,
            &new_key("cd_live_after_kill_key"),
            &Precondition::None,
            later(),
        )
        .expect("regenerates the key");
        watch.expect(
            ConfigChange::Site(site.id),
            Instant::now(),
            NOTIFIED_IN_TIME,
        );
    }
}

/// Setting `stop` ends the thread within a tick or so, and on PostgreSQL
/// its connection is closed.
#[test]
fn the_watcher_stops_when_told() {
    for t in stores() {
        let settings = settings();
        let name = settings.listener_name.clone();
        let mut watch = Watch::start(&t, settings);
        if t.backend() == Backend::Postgres {
            assert_eq!(listeners(&t, &name), 1, "the watcher listens");
        }
        watch
            .stop(Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("{}: {e}", t.name()));
        if t.backend() == Backend::Postgres {
            // The server drops the session once it reads the client's
            // Terminate message.
            let deadline = Instant::now() + IN_TIME;
            while listeners(&t, &name) != 0 {
                assert!(
                    Instant::now() < deadline,
                    "the listener's connection is still open"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Entries older than an hour are deleted by the watcher; newer ones stay.
#[test]
fn old_entries_are_pruned() {
    for t in stores() {
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Pro);
        let old_site = SiteId(Uuid::now_v7());
        let mut conn = connect(t.url()).expect("connects");
        diesel::insert_into(config_changes::table)
            .values((
                config_changes::site_id.eq(old_site.to_string()),
                config_changes::changed_at.eq(NaiveDate::from_ymd_opt(2000, 1, 1)
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .expect("a valid instant")),
            ))
            .execute(&mut conn)
            .expect("inserts an old entry");
        t.set_plan(tenant.id, Plan::Enterprise)
            .expect("sets the plan");
        let about_site = |conn: &mut DbConnection| -> i64 {
            config_changes::table
                .filter(config_changes::site_id.eq(old_site.to_string()))
                .count()
                .get_result(conn)
                .expect("counts")
        };
        let about_tenant = |conn: &mut DbConnection| -> i64 {
            config_changes::table
                .filter(config_changes::tenant_id.eq(tenant.id.to_string()))
                .count()
                .get_result(conn)
                .expect("counts")
        };
        assert_eq!(about_site(&mut conn), 1);

        let watch = Watch::start(
            &t,
            WatcherSettings {
                prune_every: Duration::from_millis(100),
                ..settings()
            },
        );
        let deadline = Instant::now() + IN_TIME;
        while about_site(&mut conn) != 0 {
            assert!(
                Instant::now() < deadline,
                "{}: the old entry is still there",
                t.name()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            about_tenant(&mut conn),
            1,
            "{}: the new entry stays",
            t.name()
        );
        drop(watch);
    }
}
