//! The SDK's in-process caches: each site key's gate (what
//! `GET /sdk/chat/config` answers, served with no database round trip and
//! no blocking-pool hop once cached) and the browser origins the SDK's
//! CORS preflight admits.
//!
//! Freshness:
//! - a dashboard change on this replica drops the site's entries before
//!   the change's response is sent ([`SdkCaches::site_changed`]);
//! - the store reports every change, made by any replica or the CLI
//!   (PostgreSQL NOTIFY within milliseconds; the change log, polled every
//!   few seconds, on both backends) to [`SdkCaches::apply`];
//! - entries are reloaded after [`GATE_MAX_AGE`] in any case, a backstop
//!   for a change report that never came.
//!
//! A load that started before a change and finishes after it must not put
//! the old state back: every drop moves an epoch on, and a load stores its
//! result only if the epoch it started under is still current.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use chatdesk_domain::ports::ConfigChange;
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::visitor::SiteGate;

/// A known key's gate is reloaded after this long even if no change was
/// reported.
pub const GATE_MAX_AGE: Duration = Duration::from_secs(300);
/// An unknown key is looked up again after this long.
pub const UNKNOWN_KEY_MAX_AGE: Duration = Duration::from_secs(5);
/// An origin's preflight answer is kept this long.
pub const ORIGIN_MAX_AGE: Duration = Duration::from_secs(10);
/// The most keys (or origins) kept; past it the cache starts over.
const MAX_ENTRIES: usize = 100_000;

/// A site key's gate with its config response ready to send.
#[derive(Debug)]
pub struct CachedGate {
    /// The gate.
    pub gate: SiteGate,
    /// The `GET /sdk/chat/config` body, serialized once.
    pub config_body: Bytes,
}

#[derive(Debug, Clone)]
enum KeyEntry {
    Known(Arc<CachedGate>, Instant),
    Unknown(Instant),
}

/// What the cache knows of a key.
#[derive(Debug, Clone)]
pub enum Cached {
    /// The key's site and gate.
    Known(Arc<CachedGate>),
    /// No site has this key.
    Unknown,
}

/// The epoch a load started under; see the module's description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch(u64);

/// The SDK's caches, shared by every worker of a process.
#[derive(Debug, Default)]
pub struct SdkCaches {
    keys: RwLock<HashMap<SecretHash, KeyEntry>>,
    origins: RwLock<HashMap<String, (bool, Instant)>>,
    epoch: AtomicU64,
}

impl SdkCaches {
    /// Empty caches.
    pub fn new() -> Self {
        Self::default()
    }

    /// What is cached for a key, unless it is too old.
    pub fn key(&self, key: &SecretHash) -> Option<Cached> {
        let keys = self.keys.read().ok()?;
        match keys.get(key)? {
            KeyEntry::Known(gate, at) if at.elapsed() < GATE_MAX_AGE => {
                Some(Cached::Known(gate.clone()))
            }
            KeyEntry::Unknown(at) if at.elapsed() < UNKNOWN_KEY_MAX_AGE => Some(Cached::Unknown),
            _ => None,
        }
    }

    /// The current epoch, taken before loading.
    pub fn epoch(&self) -> Epoch {
        Epoch(self.epoch.load(Ordering::Acquire))
    }

    /// Stores what a load found for a key, unless something changed since
    /// `epoch`.
    pub fn store_key(&self, key: SecretHash, found: Option<Arc<CachedGate>>, epoch: Epoch) {
        let Ok(mut keys) = self.keys.write() else {
            return;
        };
        // Checked under the write lock: a drop takes the same lock after
        // moving the epoch on, so it either sees this entry or this check
        // sees its epoch.
        if self.epoch() != epoch {
            return;
        }
        if keys.len() >= MAX_ENTRIES {
            keys.clear();
        }
        let now = Instant::now();
        let entry = match found {
            Some(gate) => KeyEntry::Known(gate, now),
            None => KeyEntry::Unknown(now),
        };
        keys.insert(key, entry);
    }

    /// Whether a browser on this origin host may call the SDK, if known.
    pub fn origin(&self, host: &str) -> Option<bool> {
        let origins = self.origins.read().ok()?;
        let (admitted, at) = origins.get(host)?;
        (at.elapsed() < ORIGIN_MAX_AGE).then_some(*admitted)
    }

    /// Stores an origin host's preflight answer, unless something changed
    /// since `epoch`.
    pub fn store_origin(&self, host: String, admitted: bool, epoch: Epoch) {
        let Ok(mut origins) = self.origins.write() else {
            return;
        };
        if self.epoch() != epoch {
            return;
        }
        if origins.len() >= MAX_ENTRIES {
            origins.clear();
        }
        origins.insert(host, (admitted, Instant::now()));
    }

    /// Drops what a change may have made stale.
    pub fn apply(&self, change: ConfigChange) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut keys) = self.keys.write() {
            // One pass: the changed site's or tenant's gates go, and so do
            // unknown keys (a site's new key may be cached as unknown).
            keys.retain(|_, entry| match (entry, change) {
                (KeyEntry::Unknown(_), _) | (_, ConfigChange::Everything) => false,
                (KeyEntry::Known(gate, _), ConfigChange::Site(site)) => gate.gate.site.id != site,
                (KeyEntry::Known(gate, _), ConfigChange::Tenant(tenant)) => {
                    gate.gate.site.tenant_id != tenant
                }
            });
        }
        if let Ok(mut origins) = self.origins.write() {
            // Domains move between sites rarely; start the origins over.
            origins.clear();
        }
    }

    /// A dashboard change to a site on this replica: dropped at once.
    pub fn site_changed(&self, site: chatdesk_domain::ids::SiteId) {
        self.apply(ConfigChange::Site(site));
    }

    /// How many keys are cached (for tests and metrics).
    pub fn len(&self) -> usize {
        self.keys.read().map_or(0, |k| k.len())
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatdesk_domain::tenant::Plan;
    use chatdesk_domain::testing::builders::{a_site, a_widget};

    fn cached(
        tenant_site: (chatdesk_domain::ids::TenantId, chatdesk_domain::ids::SiteId),
    ) -> Arc<CachedGate> {
        let site = a_site().tenant_id(tenant_site.0).id(tenant_site.1).build();
        Arc::new(CachedGate {
            gate: SiteGate {
                widget: Some(a_widget().site_id(site.id).build()),
                site,
                plan: Plan::Pro,
            },
            config_body: Bytes::from_static(b"{}"),
        })
    }

    fn ids() -> (chatdesk_domain::ids::TenantId, chatdesk_domain::ids::SiteId) {
        (
            chatdesk_domain::ids::TenantId(uuid::Uuid::now_v7()),
            chatdesk_domain::ids::SiteId(uuid::Uuid::now_v7()),
        )
    }

    #[test]
    fn a_change_drops_the_sites_and_tenants_entries_only() {
        let caches = SdkCaches::new();
        let (a, b) = (ids(), ids());
        let (ka, kb) = (SecretHash::of("a"), SecretHash::of("b"));
        caches.store_key(ka.clone(), Some(cached(a)), caches.epoch());
        caches.store_key(kb.clone(), Some(cached(b)), caches.epoch());
        caches.apply(ConfigChange::Site(a.1));
        assert!(caches.key(&ka).is_none());
        assert!(matches!(caches.key(&kb), Some(Cached::Known(_))));
        caches.apply(ConfigChange::Tenant(b.0));
        assert!(caches.key(&kb).is_none());
    }

    #[test]
    fn a_load_that_raced_a_change_is_not_stored() {
        let caches = SdkCaches::new();
        let site = ids();
        let key = SecretHash::of("k");
        let before = caches.epoch();
        caches.apply(ConfigChange::Site(site.1));
        caches.store_key(key.clone(), Some(cached(site)), before);
        assert!(caches.key(&key).is_none());
        caches.store_key(key.clone(), Some(cached(site)), caches.epoch());
        assert!(caches.key(&key).is_some());
    }

    #[test]
    fn unknown_keys_and_origins_are_dropped_by_any_change() {
        let caches = SdkCaches::new();
        let key = SecretHash::of("new");
        caches.store_key(key.clone(), None, caches.epoch());
        caches.store_origin("shop.example".into(), false, caches.epoch());
        assert!(matches!(caches.key(&key), Some(Cached::Unknown)));
        assert_eq!(caches.origin("shop.example"), Some(false));
        caches.apply(ConfigChange::Site(ids().1));
        assert!(caches.key(&key).is_none());
        assert_eq!(caches.origin("shop.example"), None);
        caches.store_key(key.clone(), None, caches.epoch());
        caches.apply(ConfigChange::Everything);
        assert!(caches.is_empty());
    }
}
