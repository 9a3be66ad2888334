//! Fresh migrated stores on every backend, and seed data.

use chatdesk_domain::ids::{SiteId, TenantId};
use chatdesk_domain::ports::{SiteRepository, TenantRepository};
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::site::{Site, SiteDomain};
use chatdesk_domain::tenant::{Plan, Tenant, TenantMember};
use chatdesk_domain::testing::builders::{a_member, a_site, a_tenant};
use chatdesk_store::testing::{all_backends, TestDatabase};
use chatdesk_store::Store;
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

/// Stores a new site of `tenant` (no cap).
pub fn stored_site(store: &Store, tenant: TenantId, domain: &str) -> Site {
    let site = site_of(tenant, domain);
    store
        .insert_site_within_cap(&site, None, Plan::Enterprise)
        .expect("stores the site");
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
