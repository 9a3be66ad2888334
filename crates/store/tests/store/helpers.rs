//! Fresh migrated stores on every backend, seed data, and races.

use std::sync::Barrier;

use chatdesk_domain::ids::{SiteId, TenantId};
use chatdesk_domain::ports::{SiteRepository, TenantRepository};
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::site::{MappingStatus, Site, SiteDomain};
use chatdesk_domain::tenant::{Plan, Tenant, TenantMember};
use chatdesk_domain::testing::builders::{a_member, a_site, a_tenant};
use chatdesk_store::testing::{all_backends, TestDatabase};
use chatdesk_store::Store;
use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

/// A migrated store on a fresh database. Fields drop in order: the pool
/// goes before the database is removed.
pub struct TestStore {
    pub store: Store,
    pub db: TestDatabase,
}

impl TestStore {
    pub fn name(&self) -> &'static str {
        self.store.backend().name()
    }

    pub fn url(&self) -> &str {
        self.db.url()
    }
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

/// A migrated store on every available backend.
pub fn stores() -> Vec<TestStore> {
    all_backends()
        .into_iter()
        .map(|db| {
            let store = Store::open(db.url(), 8).expect("opens the test database");
            store.run_migrations().expect("migrates the test database");
            TestStore { store, db }
        })
        .collect()
}

/// A tenant on `plan` with its first owner; returns the owner's token.
pub fn tenant_with_owner(store: &Store, plan: Plan) -> (Tenant, TenantMember, String) {
    let tenant = a_tenant().plan(plan).build();
    let owner = a_member().tenant_id(tenant.id).build();
    let token = format!("cd_pat_{}", Uuid::new_v4().simple());
    store
        .create_tenant(&tenant, &owner, &SecretHash::of(&token))
        .expect("creates the tenant");
    (tenant, owner, token)
}

/// A site of `tenant` on `domain`, with its own API key hash.
pub fn site_of(tenant: TenantId, domain: &str) -> Site {
    a_site()
        .tenant_id(tenant)
        .domain(SiteDomain::parse(domain).expect("valid domain"))
        .with(|s| {
            s.api_key_hash = SecretHash::of(&format!("cd_live_{}", Uuid::new_v4().simple()));
        })
        .build()
}

/// Stores a new site of `tenant` (within its plan's cap).
pub fn stored_site(store: &Store, tenant: TenantId, domain: &str) -> Site {
    let site = site_of(tenant, domain);
    store.insert_site(&site).expect("stores the site");
    site
}

/// Stores a new site of `tenant` whose mapping is COMPLETED.
pub fn mapped_site(store: &Store, tenant: TenantId, domain: &str) -> Site {
    let site = Site {
        mapping_status: MappingStatus::Completed,
        ..site_of(tenant, domain)
    };
    store.insert_site(&site).expect("stores the site");
    site
}

/// A tenant and one stored site of it.
pub fn tenant_and_site(store: &Store) -> (Tenant, Site) {
    let (tenant, _, _) = tenant_with_owner(store, Plan::Pro);
    let site = stored_site(store, tenant.id, "example.com");
    (tenant, site)
}

/// A site id nobody has.
pub fn unknown_site() -> SiteId {
    SiteId(Uuid::now_v7())
}

/// How many rounds each race runs.
pub const ROUNDS: usize = 40;

/// Runs `a` and `b` on two threads released together by a barrier and
/// returns both results.
pub fn race<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    let start = Barrier::new(2);
    std::thread::scope(|s| {
        let first = s.spawn(|| {
            start.wait();
            a()
        });
        let second = s.spawn(|| {
            start.wait();
            b()
        });
        (
            first.join().expect("the first racer panicked"),
            second.join().expect("the second racer panicked"),
        )
    })
}

/// An instant with nanoseconds, later than anything stored so far.
pub fn later() -> DateTime<Utc> {
    std::thread::sleep(std::time::Duration::from_millis(2));
    Utc::now()
}

/// `instant` to the microsecond, as both backends store it.
pub fn stored(instant: DateTime<Utc>) -> DateTime<Utc> {
    instant.trunc_subsecs(6)
}
