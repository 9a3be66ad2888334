//! Sites: round trip, isolation, plan cap (applied on the tenant's locked
//! row), unique domains, API keys, targeted updates with versions and
//! entity tags, races between writers of different fields, pages,
//! deletion of everything under a site.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;

use chatdesk_domain::ids::SiteId;
use chatdesk_domain::ports::{
    ContentRepository, PageRequest, SiteRepository, TenantRepository, WidgetRepository,
};
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::site::{MappingStatus, Site, SiteChanges, SiteDomain, Theme};
use chatdesk_domain::tenant::Plan;
use chatdesk_domain::testing::builders::{a_content_item, a_tenant, a_widget, t0};
use chatdesk_domain::version::{Precondition, Version};
use chatdesk_domain::widget::NamedSettings;
use chatdesk_domain::{Entity, Error};
use chatdesk_store::schema::*;
use chatdesk_store::{connect, DbConnection, Store};
use diesel::prelude::*;
use uuid::Uuid;

use crate::helpers::{
    later, race, site_of, stored, stored_site, stores, tenant_and_site, tenant_with_owner,
    unknown_site, TestStore, ROUNDS,
};

fn theme() -> Theme {
    Theme {
        primary_color: "#112233".into(),
        background_color: "#fafafa".into(),
        text_color: "#000000".into(),
        font_family: "\"Inter\", sans-serif".into(),
    }
}

fn rename(name: &str) -> SiteChanges {
    SiteChanges {
        name: Some(name.into()),
        ..SiteChanges::default()
    }
}

fn new_api_key(plaintext: &str) -> SiteChanges {
    SiteChanges {
        api_key: Some((plaintext[..14].to_string(), SecretHash::of(plaintext))),
        ..SiteChanges::default()
    }
}

fn count_sites(store: &Store, tenant: chatdesk_domain::ids::TenantId) -> usize {
    store
        .list_sites(
            tenant,
            &PageRequest {
                limit: 100,
                after: None,
            },
        )
        .expect("lists")
        .items
        .len()
}

#[test]
fn sites_round_trip_with_theme_and_identity_secret() {
    for t in stores() {
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Pro);
        let site = Site {
            name: "Docs «β»".into(),
            allow_subdomains: true,
            mapping_status: MappingStatus::InProgress,
            api_key_prefix: "cd_live_abc123".into(),
            identity_secret_hash: Some(SecretHash::of("cd_ids_secret")),
            theme: theme(),
            ..site_of(tenant.id, "docs.example.com")
        };
        t.insert_site(&site).expect("inserts");
        assert_eq!(
            t.get_site(tenant.id, site.id).expect("reads"),
            site,
            "{}",
            t.name()
        );

        // Every column a change may name is saved.
        let now = later();
        let changes = SiteChanges {
            domain: Some(SiteDomain::parse("help.example.org").expect("valid")),
            name: Some("Help".into()),
            allow_subdomains: Some(false),
            theme: Some(Theme::default()),
            mapping_status: Some(MappingStatus::Completed),
            api_key: Some(("cd_live_def456".into(), SecretHash::of("cd_live_new"))),
            identity_secret_hash: Some(SecretHash::of("cd_ids_other")),
        };
        let returned = t
            .update_site(tenant.id, site.id, &changes, &Precondition::None, now)
            .expect("updates");
        let expected = Site {
            domain: SiteDomain::parse("help.example.org").expect("valid"),
            name: "Help".into(),
            allow_subdomains: false,
            mapping_status: MappingStatus::Completed,
            api_key_prefix: "cd_live_def456".into(),
            api_key_hash: SecretHash::of("cd_live_new"),
            identity_secret_hash: Some(SecretHash::of("cd_ids_other")),
            theme: Theme::default(),
            updated_at: stored(now),
            version: Version(2),
            ..site.clone()
        };
        assert_eq!(returned, expected, "{}: what the write returns", t.name());
        assert_eq!(
            t.get_site(tenant.id, site.id).expect("reads"),
            expected,
            "{}: what a read gives",
            t.name()
        );
    }
}

#[test]
fn each_change_writes_only_its_columns_and_bumps_the_version() {
    for t in stores() {
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Pro);
        let mut expected = Site {
            name: "Docs".into(),
            mapping_status: MappingStatus::InProgress,
            api_key_prefix: "cd_live_first0".into(),
            identity_secret_hash: Some(SecretHash::of("cd_ids_first")),
            theme: theme(),
            ..site_of(tenant.id, "docs.example.com")
        };
        t.insert_site(&expected).expect("inserts");
        type Case = (SiteChanges, Box<dyn Fn(&mut Site)>);
        let cases: Vec<Case> = vec![
            (rename("Renamed"), Box::new(|s| s.name = "Renamed".into())),
            (
                SiteChanges {
                    domain: Some(SiteDomain::parse("help.example.org").expect("valid")),
                    ..SiteChanges::default()
                },
                Box::new(|s| s.domain = SiteDomain::parse("help.example.org").expect("valid")),
            ),
            (
                SiteChanges {
                    allow_subdomains: Some(true),
                    ..SiteChanges::default()
                },
                Box::new(|s| s.allow_subdomains = true),
            ),
            (
                SiteChanges {
                    theme: Some(Theme::default()),
                    ..SiteChanges::default()
                },
                Box::new(|s| s.theme = Theme::default()),
            ),
            (
                SiteChanges {
                    mapping_status: Some(MappingStatus::Completed),
                    ..SiteChanges::default()
                },
                Box::new(|s| s.mapping_status = MappingStatus::Completed),
            ),
            (
                new_api_key("cd_live_second_key"),
                Box::new(|s| {
                    s.api_key_prefix = "cd_live_second_key"[..14].into();
                    s.api_key_hash = SecretHash::of("cd_live_second_key");
                }),
            ),
            (
                SiteChanges {
                    identity_secret_hash: Some(SecretHash::of("cd_ids_second")),
                    ..SiteChanges::default()
                },
                Box::new(|s| s.identity_secret_hash = Some(SecretHash::of("cd_ids_second"))),
            ),
            (
                SiteChanges {
                    name: Some("Both".into()),
                    mapping_status: Some(MappingStatus::Failed),
                    ..SiteChanges::default()
                },
                Box::new(|s| {
                    s.name = "Both".into();
                    s.mapping_status = MappingStatus::Failed;
                }),
            ),
        ];
        for (i, (changes, change)) in cases.iter().enumerate() {
            let now = later();
            let returned = t
                .update_site(tenant.id, expected.id, changes, &Precondition::None, now)
                .expect("updates");
            change(&mut expected);
            expected.updated_at = stored(now);
            expected.version = Version(i64::try_from(i).expect("small") + 2);
            assert_eq!(returned, expected, "{}: {changes:?}", t.name());
            assert_eq!(
                t.get_site(tenant.id, expected.id).expect("reads"),
                expected,
                "{}: {changes:?}",
                t.name()
            );
        }
        assert_eq!(expected.created_at, t0(), "created_at is kept");
    }
}

#[test]
fn a_change_to_the_values_a_site_has_changes_nothing() {
    for t in stores() {
        let (tenant, site) = tenant_and_site(&t);
        let same = SiteChanges {
            domain: Some(site.domain.clone()),
            name: Some(site.name.clone()),
            allow_subdomains: Some(site.allow_subdomains),
            theme: Some(site.theme.clone()),
            mapping_status: Some(site.mapping_status),
            api_key: None,
            identity_secret_hash: None,
        };
        for changes in [same, SiteChanges::default()] {
            assert_eq!(
                t.update_site(tenant.id, site.id, &changes, &Precondition::None, later()),
                Ok(site.clone()),
                "{}: {changes:?}",
                t.name()
            );
            assert_eq!(
                t.get_site(tenant.id, site.id).expect("reads"),
                site,
                "{}: neither the version nor updated_at moves",
                t.name()
            );
        }

        // The same identity secret again is no change either.
        let secret = SiteChanges {
            identity_secret_hash: Some(SecretHash::of("cd_ids_once")),
            ..SiteChanges::default()
        };
        let now = later();
        let issued = t
            .update_site(tenant.id, site.id, &secret, &Precondition::None, now)
            .expect("updates");
        assert_eq!(issued.version, Version(2));
        assert_eq!(
            t.update_site(tenant.id, site.id, &secret, &Precondition::None, later()),
            Ok(issued.clone()),
            "{}",
            t.name()
        );
        assert_eq!(t.get_site(tenant.id, site.id).expect("reads"), issued);
    }
}

#[test]
fn a_stale_entity_tag_fails_and_changes_nothing() {
    for t in stores() {
        let (tenant, site) = tenant_and_site(&t);
        let first_tag = site.entity_tag();
        let renamed = t
            .update_site(
                tenant.id,
                site.id,
                &rename("First"),
                &Precondition::TagIn(vec![first_tag.clone()]),
                later(),
            )
            .expect("the tag is current");
        assert_eq!(renamed.version, Version(2));
        assert_ne!(renamed.entity_tag(), first_tag);

        let stale = Precondition::TagIn(vec![first_tag.clone()]);
        for changes in [
            rename("Second"),
            new_api_key("cd_live_stale_key"),
            SiteChanges {
                mapping_status: Some(MappingStatus::Completed),
                ..SiteChanges::default()
            },
            // Even a change that would change nothing is refused.
            rename("First"),
        ] {
            assert_eq!(
                t.update_site(tenant.id, site.id, &changes, &stale, later()),
                Err(Error::PreconditionFailed(Entity::Site)),
                "{}: {changes:?}",
                t.name()
            );
        }
        assert_eq!(
            t.update_site(
                tenant.id,
                site.id,
                &rename("Second"),
                &Precondition::TagIn(vec![]),
                later()
            ),
            Err(Error::PreconditionFailed(Entity::Site)),
            "an empty If-Match never matches"
        );
        assert_eq!(
            t.get_site(tenant.id, site.id).expect("reads"),
            renamed,
            "{}: nothing changed",
            t.name()
        );

        // Any one current tag in the list will do.
        let second = t
            .update_site(
                tenant.id,
                site.id,
                &rename("Second"),
                &Precondition::TagIn(vec![first_tag, renamed.entity_tag()]),
                later(),
            )
            .expect("one tag is current");
        assert_eq!(
            (second.name.as_str(), second.version),
            ("Second", Version(3))
        );
    }
}

#[test]
fn another_tenants_site_is_not_found() {
    for t in stores() {
        let (tenant, site) = tenant_and_site(&t);
        let (other, _, _) = tenant_with_owner(&t, Plan::Pro);
        assert_eq!(
            t.get_site(other.id, site.id),
            Err(Error::NotFound(Entity::Site)),
            "{}",
            t.name()
        );
        assert_eq!(
            t.get_site(tenant.id, unknown_site()),
            Err(Error::NotFound(Entity::Site))
        );
        for (owner, id) in [(other.id, site.id), (tenant.id, unknown_site())] {
            assert_eq!(
                t.update_site(owner, id, &rename("Mine now"), &Precondition::None, later()),
                Err(Error::NotFound(Entity::Site)),
                "{}",
                t.name()
            );
        }
        assert_eq!(
            t.update_site(
                other.id,
                site.id,
                &rename("Mine now"),
                &Precondition::TagIn(vec![site.entity_tag()]),
                later()
            ),
            Err(Error::NotFound(Entity::Site)),
            "a right tag does not open another tenant's site"
        );
        assert_eq!(
            t.delete_site(other.id, site.id),
            Err(Error::NotFound(Entity::Site))
        );
        assert_eq!(t.get_site(tenant.id, site.id).expect("untouched"), site);
        assert_eq!(count_sites(&t, other.id), 0);
    }
}

#[test]
fn the_plan_caps_the_number_of_sites() {
    for t in stores() {
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Starter);
        for i in 0..3 {
            let site = site_of(tenant.id, &format!("s{i}.example.com"));
            t.insert_site(&site).expect("under the cap");
        }
        let fourth = site_of(tenant.id, "s3.example.com");
        assert_eq!(
            t.insert_site(&fourth),
            Err(Error::PlanLimit {
                plan: Plan::Starter,
                cap: 3
            }),
            "{}",
            t.name()
        );
        assert_eq!(
            t.get_site(tenant.id, fourth.id),
            Err(Error::NotFound(Entity::Site))
        );
        // No cap on ENTERPRISE.
        t.set_plan(tenant.id, Plan::Enterprise).expect("upgrades");
        t.insert_site(&fourth).expect("no cap");
        assert_eq!(count_sites(&t, tenant.id), 4);
        // Another tenant's sites do not count.
        let (other, _, _) = tenant_with_owner(&t, Plan::Free);
        let theirs = site_of(other.id, "s0.example.com");
        t.insert_site(&theirs).expect("their first site");
        // A tenant that does not exist has no plan.
        let orphan = site_of(a_tenant().build().id, "orphan.example.com");
        assert_eq!(
            t.insert_site(&orphan),
            Err(Error::NotFound(Entity::Tenant)),
            "{}",
            t.name()
        );
    }
}

#[test]
fn the_cap_is_the_plan_stored_now_not_the_one_the_member_signed_in_with() {
    for t in stores() {
        // The member signed in while the tenant was on PRO...
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Pro);
        stored_site(&t, tenant.id, "first.example.com");
        assert_eq!(t.get_tenant(tenant.id).expect("reads").plan, Plan::Pro);
        // ...then the plan went down to FREE: the next site is over its cap.
        t.set_plan(tenant.id, Plan::Free).expect("downgrades");
        let second = site_of(tenant.id, "second.example.com");
        assert_eq!(
            t.insert_site(&second),
            Err(Error::PlanLimit {
                plan: Plan::Free,
                cap: 1
            }),
            "{}",
            t.name()
        );
        assert_eq!(count_sites(&t, tenant.id), 1);

        // And the other way: an upgrade counts at once.
        t.set_plan(tenant.id, Plan::Starter).expect("upgrades");
        t.insert_site(&second).expect("within STARTER's cap");
        assert_eq!(count_sites(&t, tenant.id), 2, "{}", t.name());
    }
}

#[test]
fn concurrent_creates_cannot_pass_the_cap() {
    for t in stores() {
        for _ in 0..ROUNDS / 4 {
            let (tenant, _, _) = tenant_with_owner(&t, Plan::Starter);
            let start = Barrier::new(6);
            let results: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..6)
                    .map(|i| {
                        let site = site_of(tenant.id, &format!("c{i}.example.com"));
                        let (store, start) = (&t.store, &start);
                        s.spawn(move || {
                            start.wait();
                            store.insert_site(&site)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("joins"))
                    .collect()
            });
            let created = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(created, 3, "{}: {results:?}", t.name());
            assert!(
                results.iter().filter_map(|r| r.as_ref().err()).all(|e| *e
                    == Error::PlanLimit {
                        plan: Plan::Starter,
                        cap: 3
                    }),
                "{}: {results:?}",
                t.name()
            );
            assert_eq!(count_sites(&t, tenant.id), 3);
        }
    }
}

/// Creates racing a downgrade from PRO to FREE (cap 1) of a tenant that
/// has one site. A create serialised before the downgrade may succeed
/// (PRO allowed it); one that began after the downgrade returned must fail
/// with FREE's limit, which a create checking the plan its caller read
/// earlier (PRO) would not. The sites stored are exactly the first one
/// and those whose create returned `Ok`.
#[test]
fn creates_racing_a_downgrade_apply_the_plan_in_force() {
    const CREATORS: usize = 4;
    const CREATES_EACH: usize = 2;
    for t in stores() {
        let mut after_downgrade = 0;
        for _ in 0..ROUNDS {
            let (tenant, _, _) = tenant_with_owner(&t, Plan::Pro);
            stored_site(&t, tenant.id, "first.example.com");
            let downgraded = AtomicBool::new(false);
            let start = Barrier::new(CREATORS + 1);
            let (downgrade, creates) = std::thread::scope(|s| {
                let creators: Vec<_> = (0..CREATORS)
                    .map(|i| {
                        let (store, start, downgraded) = (&t.store, &start, &downgraded);
                        let tenant = tenant.id;
                        s.spawn(move || {
                            start.wait();
                            (0..CREATES_EACH)
                                .map(|j| {
                                    let site = site_of(tenant, &format!("c{i}-{j}.example.com"));
                                    let began_after = downgraded.load(Ordering::SeqCst);
                                    (began_after, store.insert_site(&site))
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                let downgrade = s.spawn(|| {
                    start.wait();
                    let result = t.set_plan(tenant.id, Plan::Free);
                    downgraded.store(true, Ordering::SeqCst);
                    result
                });
                (
                    downgrade.join().expect("joins"),
                    creators
                        .into_iter()
                        .flat_map(|h| h.join().expect("joins"))
                        .collect::<Vec<_>>(),
                )
            });
            assert_eq!(downgrade.map(|t| t.plan), Ok(Plan::Free));
            let mut created = 0;
            for (began_after, result) in &creates {
                match result {
                    Ok(()) => {
                        assert!(
                            !began_after,
                            "{}: a create that began after the downgrade passed FREE's cap: \
                             {creates:?}",
                            t.name()
                        );
                        created += 1;
                    }
                    Err(e) => assert_eq!(
                        *e,
                        Error::PlanLimit {
                            plan: Plan::Free,
                            cap: 1
                        },
                        "{}: {creates:?}",
                        t.name()
                    ),
                }
                after_downgrade += usize::from(*began_after);
            }
            assert_eq!(
                count_sites(&t, tenant.id),
                1 + created,
                "{}: {creates:?}",
                t.name()
            );
            // Once the downgrade is in, nothing more passes.
            assert_eq!(
                t.insert_site(&site_of(tenant.id, "late.example.com")),
                Err(Error::PlanLimit {
                    plan: Plan::Free,
                    cap: 1
                })
            );
        }
        eprintln!(
            "{}: {after_downgrade} of {} racing creates began after the downgrade",
            t.name(),
            ROUNDS * CREATORS * CREATES_EACH
        );
    }
}

#[test]
fn domains_are_unique_per_tenant() {
    for t in stores() {
        let (tenant, site) = tenant_and_site(&t);
        let twin = site_of(tenant.id, site.domain.as_str());
        assert_eq!(t.insert_site(&twin), Err(Error::SiteExists), "{}", t.name());
        let (other, _, _) = tenant_with_owner(&t, Plan::Pro);
        stored_site(&t, other.id, site.domain.as_str());

        let second = stored_site(&t, tenant.id, "second.example.com");
        let clash = SiteChanges {
            domain: Some(site.domain.clone()),
            name: Some("Clash".into()),
            ..SiteChanges::default()
        };
        assert_eq!(
            t.update_site(tenant.id, second.id, &clash, &Precondition::None, later()),
            Err(Error::SiteExists),
            "{}",
            t.name()
        );
        assert_eq!(
            t.get_site(tenant.id, second.id).expect("reads"),
            second,
            "{}: neither the domain nor the name changed",
            t.name()
        );
    }
}

#[test]
fn sites_are_found_by_api_key() {
    for t in stores() {
        let (tenant, site) = tenant_and_site(&t);
        let (_, other) = tenant_and_site(&t);
        assert_eq!(
            t.find_by_api_key(&site.api_key_hash).expect("finds"),
            Some(site.clone())
        );
        assert_eq!(
            t.find_by_api_key(&other.api_key_hash).expect("finds"),
            Some(other)
        );
        assert_eq!(
            t.find_by_api_key(&SecretHash::of("cd_live_nope"))
                .expect("finds"),
            None
        );

        // A regenerated key replaces the old one at once.
        let rotated = t
            .update_site(
                tenant.id,
                site.id,
                &new_api_key("cd_live_rotated"),
                &Precondition::None,
                later(),
            )
            .expect("updates");
        assert_eq!(rotated.api_key_hash, SecretHash::of("cd_live_rotated"));
        assert_eq!(
            t.find_by_api_key(&site.api_key_hash).expect("finds"),
            None,
            "{}",
            t.name()
        );
        assert_eq!(
            t.find_by_api_key(&rotated.api_key_hash).expect("finds"),
            Some(rotated)
        );
    }
}

/// `ROUNDS` times, on a fresh site: a rename and `other(round)` start
/// together; both must succeed and the stored site must carry both, one
/// version per write.
fn rename_racing(t: &TestStore, other: impl Fn(usize) -> SiteChanges, what: &str) {
    let (tenant, _, _) = tenant_with_owner(t, Plan::Enterprise);
    for round in 0..ROUNDS {
        let site = stored_site(t, tenant.id, &format!("r{round}.example.com"));
        let name = format!("Renamed {round}");
        let other = other(round);
        let (now_a, now_b) = (later(), later());
        let (renamed, changed) = race(
            || {
                t.update_site(
                    tenant.id,
                    site.id,
                    &rename(&name),
                    &Precondition::None,
                    now_a,
                )
            },
            || t.update_site(tenant.id, site.id, &other, &Precondition::None, now_b),
        );
        assert!(renamed.is_ok(), "{}: {renamed:?}", t.name());
        assert!(changed.is_ok(), "{}: {changed:?}", t.name());

        let read = t.get_site(tenant.id, site.id).expect("reads");
        let mut expected = Site {
            name: name.clone(),
            version: Version(3),
            updated_at: read.updated_at,
            ..site.clone()
        };
        if let Some(status) = other.mapping_status {
            expected.mapping_status = status;
        }
        if let Some((prefix, hash)) = &other.api_key {
            expected.api_key_prefix = prefix.clone();
            expected.api_key_hash = hash.clone();
        }
        if let Some(hash) = &other.identity_secret_hash {
            expected.identity_secret_hash = Some(hash.clone());
        }
        assert_eq!(
            read,
            expected,
            "{}: round {round}, a rename racing {what} lost a write",
            t.name()
        );
        assert!(
            [stored(now_a), stored(now_b)].contains(&read.updated_at),
            "{}: updated_at is the last write's",
            t.name()
        );
    }
}

#[test]
fn a_rename_racing_a_new_api_key_keeps_the_new_key() {
    for t in stores() {
        rename_racing(
            &t,
            |round| new_api_key(&format!("cd_live_race_{round}_{}", Uuid::new_v4().simple())),
            "a new API key",
        );
        let (tenant, site) = tenant_and_site(&t);
        let key = format!("cd_live_final_{}", Uuid::new_v4().simple());
        let (renamed, rotated) = race(
            || {
                t.update_site(
                    tenant.id,
                    site.id,
                    &rename("Last"),
                    &Precondition::None,
                    later(),
                )
            },
            || {
                t.update_site(
                    tenant.id,
                    site.id,
                    &new_api_key(&key),
                    &Precondition::None,
                    later(),
                )
            },
        );
        assert!(
            renamed.is_ok() && rotated.is_ok(),
            "{renamed:?} {rotated:?}"
        );
        assert_eq!(
            t.find_by_api_key(&SecretHash::of(&key))
                .expect("finds")
                .map(|s| s.id),
            Some(site.id),
            "{}: the new key opens the site",
            t.name()
        );
        assert_eq!(t.find_by_api_key(&site.api_key_hash).expect("finds"), None);
    }
}

#[test]
fn a_rename_racing_a_mapping_change_keeps_the_new_mapping() {
    for t in stores() {
        rename_racing(
            &t,
            |round| SiteChanges {
                mapping_status: Some(if round % 2 == 0 {
                    MappingStatus::Completed
                } else {
                    MappingStatus::Failed
                }),
                ..SiteChanges::default()
            },
            "a mapping change",
        );
    }
}

#[test]
fn a_rename_racing_a_new_identity_secret_keeps_the_secret() {
    for t in stores() {
        rename_racing(
            &t,
            |round| SiteChanges {
                identity_secret_hash: Some(SecretHash::of(&format!("cd_ids_race_{round}"))),
                ..SiteChanges::default()
            },
            "a new identity secret",
        );
    }
}

#[test]
fn sites_page_by_id() {
    for t in stores() {
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Enterprise);
        let mut all: Vec<SiteId> = (0..5)
            .map(|i| stored_site(&t, tenant.id, &format!("p{i}.example.com")).id)
            .collect();
        all.sort();
        let mut pages = Vec::new();
        let mut after = None;
        loop {
            let page = t
                .list_sites(tenant.id, &PageRequest { limit: 2, after })
                .expect("lists");
            pages.push(page.items.iter().map(|s| s.id).collect::<Vec<_>>());
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(
            pages.iter().map(Vec::len).collect::<Vec<_>>(),
            [2, 2, 1],
            "{}",
            t.name()
        );
        assert_eq!(pages.concat(), all);
    }
}

/// Stores a visitor, a session with a message, a vote and a ticket under
/// `site` (tables this crate has no repository for yet), through diesel.
fn conversation_under(conn: &mut DbConnection, tenant: &str, site: &str, widget: &str) {
    let now = t0().naive_utc();
    let id = || Uuid::now_v7().to_string();
    let (user, session, message, ticket) = (id(), id(), id(), id());
    diesel::insert_into(end_users::table)
        .values((
            end_users::id.eq(&user),
            end_users::site_id.eq(site),
            end_users::anonymous_id.eq("anon-1"),
            end_users::traits.eq("{\"email\":\"v@example.com\"}"),
            end_users::verified.eq(false),
            end_users::first_seen_at.eq(now),
            end_users::last_seen_at.eq(now),
        ))
        .execute(conn)
        .expect("visitor");
    diesel::insert_into(chat_sessions::table)
        .values((
            chat_sessions::id.eq(&session),
            chat_sessions::site_id.eq(site),
            chat_sessions::widget_id.eq(widget),
            chat_sessions::end_user_id.eq(&user),
            chat_sessions::token_hash.eq(SecretHash::of(&session).to_hex()),
            chat_sessions::started_at.eq(now),
            chat_sessions::last_active_at.eq(now),
        ))
        .execute(conn)
        .expect("session");
    diesel::insert_into(chat_messages::table)
        .values((
            chat_messages::id.eq(&message),
            chat_messages::site_id.eq(site),
            chat_messages::session_id.eq(&session),
            chat_messages::role.eq("ASSISTANT"),
            chat_messages::status.eq("COMPLETED"),
            chat_messages::content.eq("Here is how."),
            chat_messages::created_at.eq(now),
        ))
        .execute(conn)
        .expect("message");
    diesel::insert_into(chat_feedback::table)
        .values((
            chat_feedback::id.eq(id()),
            chat_feedback::site_id.eq(site),
            chat_feedback::session_id.eq(&session),
            chat_feedback::message_id.eq(&message),
            chat_feedback::vote.eq("DOWN"),
            chat_feedback::created_at.eq(now),
            chat_feedback::updated_at.eq(now),
        ))
        .execute(conn)
        .expect("feedback");
    diesel::insert_into(support_tickets::table)
        .values((
            support_tickets::id.eq(&ticket),
            support_tickets::tenant_id.eq(tenant),
            support_tickets::site_id.eq(site),
            support_tickets::session_id.eq(&session),
            support_tickets::email.eq("v@example.com"),
            support_tickets::subject.eq("Help"),
            support_tickets::body.eq("It does not work"),
            support_tickets::conversation.eq("[]"),
            support_tickets::status.eq("OPEN"),
            support_tickets::created_at.eq(now),
            support_tickets::updated_at.eq(now),
        ))
        .execute(conn)
        .expect("ticket");
    diesel::update(chat_sessions::table.find(&session))
        .set(chat_sessions::ticket_id.eq(Some(&ticket)))
        .execute(conn)
        .expect("escalates");
}

/// Rows under `site` in every table below sites.
fn rows_under(conn: &mut DbConnection, site: &str) -> [i64; 7] {
    [
        chat_widgets::table
            .filter(chat_widgets::site_id.eq(site))
            .count()
            .get_result(conn),
        content_items::table
            .filter(content_items::site_id.eq(site))
            .count()
            .get_result(conn),
        end_users::table
            .filter(end_users::site_id.eq(site))
            .count()
            .get_result(conn),
        chat_sessions::table
            .filter(chat_sessions::site_id.eq(site))
            .count()
            .get_result(conn),
        chat_messages::table
            .filter(chat_messages::site_id.eq(site))
            .count()
            .get_result(conn),
        chat_feedback::table
            .filter(chat_feedback::site_id.eq(site))
            .count()
            .get_result(conn),
        support_tickets::table
            .filter(support_tickets::site_id.eq(site))
            .count()
            .get_result(conn),
    ]
    .map(|count| count.expect("counts"))
}

#[test]
fn deleting_a_site_deletes_everything_under_it() {
    for t in stores() {
        let (tenant, site) = tenant_and_site(&t);
        let keep = stored_site(&t, tenant.id, "keep.example.com");
        let mut conn = connect(t.url()).expect("connects");
        for s in [&site, &keep] {
            let widget = a_widget().site_id(s.id).build();
            t.save_widget_settings(tenant.id, &widget, &NamedSettings::ALL, &Precondition::None)
                .expect("widget");
            t.insert_content(&a_content_item().site_id(s.id).build())
                .expect("content");
            conversation_under(
                &mut conn,
                &tenant.id.to_string(),
                &s.id.to_string(),
                &widget.id.to_string(),
            );
        }
        assert_eq!(rows_under(&mut conn, &site.id.to_string()), [1; 7]);

        t.delete_site(tenant.id, site.id).expect("deletes");
        assert_eq!(
            t.get_site(tenant.id, site.id),
            Err(Error::NotFound(Entity::Site))
        );
        assert_eq!(t.get_widget(site.id).expect("reads"), None, "{}", t.name());
        assert_eq!(
            rows_under(&mut conn, &site.id.to_string()),
            [0; 7],
            "{}",
            t.name()
        );
        assert_eq!(
            rows_under(&mut conn, &keep.id.to_string()),
            [1; 7],
            "the other site keeps its rows"
        );
        assert_eq!(
            t.delete_site(tenant.id, site.id),
            Err(Error::NotFound(Entity::Site))
        );
    }
}
