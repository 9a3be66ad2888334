//! The content library: round trip, isolation, filters, pages.

use chatdesk_domain::content::{Audience, ContentFilter, ContentItem, ContentKind, ContentStatus};
use chatdesk_domain::ids::{ContentId, SiteId};
use chatdesk_domain::ports::{ContentRepository, PageRequest};
use chatdesk_domain::testing::builders::a_content_item;
use chatdesk_domain::{Entity, Error};
use chatdesk_store::Store;
use chrono::{SubsecRound, Utc};
use uuid::Uuid;

use crate::helpers::{stored_site, stores, tenant_and_site, unknown_site};

fn audiences(names: &[&str]) -> Vec<Audience> {
    names
        .iter()
        .map(|n| Audience::parse(n).expect("valid audience"))
        .collect()
}

fn item(site: SiteId, kind: ContentKind, status: ContentStatus, names: &[&str]) -> ContentItem {
    a_content_item()
        .site_id(site)
        .kind(kind)
        .status(status)
        .name(format!("{kind} for {names:?}"))
        .audiences(audiences(names))
        .build()
}

/// Every page of the site's items passing `filter`, `limit` at a time.
fn walk(store: &Store, site: SiteId, filter: &ContentFilter, limit: u32) -> Vec<Vec<ContentId>> {
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_content(site, filter, &PageRequest { limit, after })
            .expect("lists");
        pages.push(page.items.iter().map(|i| i.id).collect());
        match page.next {
            Some(next) => after = Some(next),
            None => return pages,
        }
    }
}

#[test]
fn content_round_trips_and_updates() {
    for t in stores() {
        let (_, site) = tenant_and_site(&t);
        let flow = ContentItem::generated_flow(
            ContentId(Uuid::now_v7()),
            site.id,
            "Export your data".into(),
            "Drafted by the assistant".into(),
            Utc::now().trunc_subsecs(6),
        );
        t.insert_content(&flow).expect("inserts");
        assert_eq!(
            t.get_content(site.id, flow.id).expect("reads"),
            flow,
            "{}",
            t.name()
        );

        // Re-targeting: drop "No users", draft it, later.
        let now = Utc::now();
        let retargeted = ContentItem {
            status: ContentStatus::Draft,
            audiences: audiences(&["Admins", "Trial users"]),
            updated_at: now,
            ..flow.clone()
        };
        t.update_content(&retargeted).expect("updates");
        assert_eq!(
            t.get_content(site.id, flow.id).expect("reads"),
            ContentItem {
                updated_at: now.trunc_subsecs(6),
                ..retargeted
            },
            "{}",
            t.name()
        );
    }
}

#[test]
fn another_sites_content_is_not_found() {
    for t in stores() {
        let (tenant, site) = tenant_and_site(&t);
        let other = stored_site(&t, tenant.id, "other.example.com");
        let theirs = item(other.id, ContentKind::Flow, ContentStatus::Published, &[]);
        t.insert_content(&theirs).expect("inserts");

        assert_eq!(
            t.get_content(site.id, theirs.id),
            Err(Error::NotFound(Entity::Content)),
            "{}",
            t.name()
        );
        let moved = ContentItem {
            site_id: site.id,
            status: ContentStatus::Draft,
            ..theirs.clone()
        };
        assert_eq!(
            t.update_content(&moved),
            Err(Error::NotFound(Entity::Content))
        );
        assert_eq!(
            t.get_content(other.id, theirs.id).expect("untouched"),
            theirs
        );
        let listed = t
            .list_content(
                site.id,
                &ContentFilter::default(),
                &PageRequest {
                    limit: 10,
                    after: None,
                },
            )
            .expect("lists");
        assert!(listed.items.is_empty());
        assert_eq!(
            t.insert_content(&item(
                unknown_site(),
                ContentKind::Flow,
                ContentStatus::Draft,
                &[]
            )),
            Err(Error::NotFound(Entity::Site))
        );
    }
}

#[test]
fn filters_match_the_domain_reference_exactly() {
    use ContentKind::*;
    use ContentStatus::*;
    for t in stores() {
        let (_, site) = tenant_and_site(&t);
        let items = [
            item(site.id, Flow, Published, &["Admins"]),
            item(site.id, Tooltip, Draft, &["50% off"]),
            item(site.id, Flow, Draft, &["a_c"]),
            item(site.id, Flow, Published, &["abc", "Admins"]),
            item(site.id, Tooltip, Published, &["say \"hi\""]),
            item(site.id, Flow, Published, &["back\\slash"]),
            item(site.id, Flow, Published, &["a,", ",b"]),
            item(site.id, Tooltip, Published, &["\",\""]),
            item(site.id, Flow, Published, &["No users"]),
            item(site.id, Tooltip, Draft, &[]),
            item(site.id, Flow, Published, &["Ünïcødé 🎯"]),
        ];
        for i in &items {
            t.insert_content(i).expect("inserts");
        }
        let audience = |name: &str| ContentFilter {
            audience: Some(Audience::parse(name).expect("valid")),
            ..ContentFilter::default()
        };
        let filters = [
            ContentFilter::default(),
            ContentFilter {
                kind: Some(Tooltip),
                ..ContentFilter::default()
            },
            ContentFilter {
                status: Some(Draft),
                ..ContentFilter::default()
            },
            ContentFilter {
                kind: Some(Flow),
                status: Some(Published),
                ..ContentFilter::default()
            },
            audience("Admins"),
            audience("admins"),
            audience("50% off"),
            audience("%"),
            audience("50_ off"),
            audience("a_c"),
            audience("a%c"),
            audience("say \"hi\""),
            audience("\"hi\""),
            audience("back\\slash"),
            audience("\\"),
            audience(","),
            audience("a,"),
            audience(",b"),
            audience("\",\""),
            audience("No users"),
            audience("Ünïcødé 🎯"),
            audience("Nobody"),
            ContentFilter {
                kind: Some(Flow),
                status: Some(Published),
                audience: Some(Audience::parse("Admins").expect("valid")),
            },
            ContentFilter {
                kind: Some(Tooltip),
                status: None,
                audience: Some(Audience::parse("Admins").expect("valid")),
            },
        ];
        for filter in &filters {
            let mut expected: Vec<ContentId> = items
                .iter()
                .filter(|i| filter.matches(i))
                .map(|i| i.id)
                .collect();
            expected.sort();
            let got = walk(&t, site.id, filter, 100).concat();
            assert_eq!(got, expected, "{}: {filter:?}", t.name());
            // Paging one at a time through a filter gives the same items.
            assert_eq!(
                walk(&t, site.id, filter, 1).concat(),
                expected,
                "{}: {filter:?}",
                t.name()
            );
        }
        // Spot checks, should the reference itself be wrong.
        assert_eq!(
            walk(&t, site.id, &audience("a_c"), 10).concat(),
            [items[2].id]
        );
        assert!(walk(&t, site.id, &audience("%"), 10).concat().is_empty());
        assert!(walk(&t, site.id, &audience(","), 10).concat().is_empty());
    }
}

#[test]
fn content_pages_by_id_without_duplicates_or_gaps() {
    for t in stores() {
        let (_, site) = tenant_and_site(&t);
        let mut all: Vec<ContentId> = (0..5)
            .map(|i| {
                let c = item(site.id, ContentKind::Flow, ContentStatus::Published, &[]);
                let c = ContentItem {
                    name: format!("Item {i}"),
                    ..c
                };
                t.insert_content(&c).expect("inserts");
                c.id
            })
            .collect();
        // Items the filter excludes do not disturb the pages.
        for _ in 0..3 {
            t.insert_content(&item(
                site.id,
                ContentKind::Tooltip,
                ContentStatus::Draft,
                &[],
            ))
            .expect("inserts");
        }
        all.sort();
        let filter = ContentFilter {
            kind: Some(ContentKind::Flow),
            ..ContentFilter::default()
        };
        let pages = walk(&t, site.id, &filter, 2);
        assert_eq!(
            pages.iter().map(Vec::len).collect::<Vec<_>>(),
            [2, 2, 1],
            "{}",
            t.name()
        );
        assert_eq!(pages.concat(), all);

        // Insert between fetches, before the cursor: nothing repeats.
        let first = t
            .list_content(
                site.id,
                &filter,
                &PageRequest {
                    limit: 2,
                    after: None,
                },
            )
            .expect("lists");
        let early = ContentItem {
            id: ContentId(Uuid::parse_str("00000000-0000-7000-8000-000000000001").expect("uuid")),
            ..item(site.id, ContentKind::Flow, ContentStatus::Published, &[])
        };
        t.insert_content(&early).expect("inserts");
        let mut seen: Vec<ContentId> = first.items.iter().map(|i| i.id).collect();
        let mut after = first.next;
        while let Some(cursor) = after {
            let page = t
                .list_content(
                    site.id,
                    &filter,
                    &PageRequest {
                        limit: 2,
                        after: Some(cursor),
                    },
                )
                .expect("lists");
            seen.extend(page.items.iter().map(|i| i.id));
            after = page.next;
        }
        assert_eq!(seen, all, "{}: no duplicates, no gaps", t.name());
    }
}
