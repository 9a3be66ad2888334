//! The content library: round trip, patches that write only status and
//! audiences, entity tags, racing patches, isolation, filters, pages.

use chatdesk_domain::content::{
    Audience, ContentFilter, ContentItem, ContentKind, ContentPatch, ContentStatus, GeneratedFrom,
};
use chatdesk_domain::ids::{ContentId, MessageId, SessionId, SiteId};
use chatdesk_domain::ports::{ContentRepository, PageRequest};
use chatdesk_domain::testing::builders::a_content_item;
use chatdesk_domain::version::{Precondition, Version};
use chatdesk_domain::{Entity, Error};
use chatdesk_store::Store;
use chrono::{SubsecRound, Utc};
use uuid::Uuid;

use crate::helpers::{
    later, race, stored, stored_site, stores, tenant_and_site, unknown_site, ROUNDS,
};

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

fn patch(status: Option<ContentStatus>, names: Option<&[&str]>) -> ContentPatch {
    ContentPatch {
        status,
        audiences: names.map(audiences),
    }
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
        // An origin names a stored session and message; its round trip
        // is tested with the visitor's side (visitor.rs).
        let flow = ContentItem {
            origin: None,
            ..ContentItem::generated_flow(
                ContentId(Uuid::now_v7()),
                site.id,
                "Export your data".into(),
                "Drafted by the assistant".into(),
                GeneratedFrom {
                    session_id: SessionId(Uuid::now_v7()),
                    message_id: MessageId(Uuid::now_v7()),
                    answer: "Open Settings, then Export.".into(),
                },
                Utc::now().trunc_subsecs(6),
            )
        };
        t.insert_content(&flow).expect("inserts");
        assert_eq!(
            t.get_content(site.id, flow.id).expect("reads"),
            flow,
            "{}",
            t.name()
        );

        // Re-targeting: drop "No users", draft it, later.
        let now = later();
        let returned = t
            .update_content(
                site.id,
                flow.id,
                &patch(Some(ContentStatus::Draft), Some(&["Admins", "Trial users"])),
                &Precondition::TagIn(vec![flow.entity_tag()]),
                now,
            )
            .expect("updates");
        let expected = ContentItem {
            status: ContentStatus::Draft,
            audiences: audiences(&["Admins", "Trial users"]),
            updated_at: stored(now),
            version: Version(2),
            ..flow.clone()
        };
        assert_eq!(returned, expected, "{}", t.name());
        assert_eq!(
            t.get_content(site.id, flow.id).expect("reads"),
            expected,
            "{}",
            t.name()
        );
    }
}

#[test]
fn a_patch_writes_only_what_it_names() {
    for t in stores() {
        let (_, site) = tenant_and_site(&t);
        let mut expected = item(
            site.id,
            ContentKind::Tooltip,
            ContentStatus::Draft,
            &["Admins"],
        );
        t.insert_content(&expected).expect("inserts");
        type Case = (ContentPatch, fn(&mut ContentItem));
        let cases: [Case; 4] = [
            (patch(Some(ContentStatus::Published), None), |i| {
                i.status = ContentStatus::Published
            }),
            (patch(None, Some(&["Trial users", "No users"])), |i| {
                i.audiences = audiences(&["Trial users", "No users"])
            }),
            (patch(None, Some(&[])), |i| i.audiences = Vec::new()),
            (patch(Some(ContentStatus::Draft), Some(&["Admins"])), |i| {
                i.status = ContentStatus::Draft;
                i.audiences = audiences(&["Admins"]);
            }),
        ];
        for (version, (change, apply)) in (2..).zip(cases) {
            let now = later();
            let returned = t
                .update_content(site.id, expected.id, &change, &Precondition::None, now)
                .expect("updates");
            apply(&mut expected);
            expected.updated_at = stored(now);
            expected.version = Version(version);
            assert_eq!(returned, expected, "{}: {change:?}", t.name());
            assert_eq!(
                t.get_content(site.id, expected.id).expect("reads"),
                expected,
                "{}: {change:?}",
                t.name()
            );
        }

        // A patch to the values the item has, or an empty one, changes
        // nothing: neither the version nor updated_at moves.
        for change in [
            patch(Some(expected.status), Some(&["Admins"])),
            patch(Some(expected.status), None),
            ContentPatch::default(),
        ] {
            assert_eq!(
                t.update_content(site.id, expected.id, &change, &Precondition::None, later()),
                Ok(expected.clone()),
                "{}: {change:?}",
                t.name()
            );
        }
        assert_eq!(
            t.get_content(site.id, expected.id).expect("reads"),
            expected
        );
    }
}

#[test]
fn a_stale_entity_tag_fails_and_changes_nothing() {
    for t in stores() {
        let (_, site) = tenant_and_site(&t);
        let original = item(site.id, ContentKind::Flow, ContentStatus::Draft, &[]);
        t.insert_content(&original).expect("inserts");
        let first_tag = original.entity_tag();
        let published = t
            .update_content(
                site.id,
                original.id,
                &patch(Some(ContentStatus::Published), None),
                &Precondition::TagIn(vec![first_tag.clone()]),
                later(),
            )
            .expect("the tag is current");
        assert_eq!(published.version, Version(2));
        for (change, precondition) in [
            (
                patch(None, Some(&["Admins"])),
                Precondition::TagIn(vec![first_tag.clone()]),
            ),
            (
                patch(Some(ContentStatus::Draft), None),
                Precondition::TagIn(vec![first_tag.clone()]),
            ),
            (
                patch(Some(ContentStatus::Published), None),
                Precondition::TagIn(vec![first_tag.clone()]),
            ),
            (patch(None, Some(&["Admins"])), Precondition::TagIn(vec![])),
        ] {
            assert_eq!(
                t.update_content(site.id, original.id, &change, &precondition, later()),
                Err(Error::PreconditionFailed(Entity::Content)),
                "{}: {change:?} {precondition:?}",
                t.name()
            );
        }
        assert_eq!(
            t.get_content(site.id, original.id).expect("reads"),
            published,
            "{}: nothing changed",
            t.name()
        );
        let retargeted = t
            .update_content(
                site.id,
                original.id,
                &patch(None, Some(&["Admins"])),
                &Precondition::TagIn(vec![first_tag, published.entity_tag()]),
                later(),
            )
            .expect("one tag is current");
        assert_eq!(retargeted.version, Version(3));
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
        for (site_id, id) in [(site.id, theirs.id), (other.id, ContentId(Uuid::now_v7()))] {
            assert_eq!(
                t.update_content(
                    site_id,
                    id,
                    &patch(Some(ContentStatus::Draft), None),
                    &Precondition::None,
                    later()
                ),
                Err(Error::NotFound(Entity::Content)),
                "{}",
                t.name()
            );
        }
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

/// A status patch racing an audiences patch of the same item: both stay.
#[test]
fn a_status_patch_racing_an_audiences_patch_keeps_both() {
    for t in stores() {
        let (_, site) = tenant_and_site(&t);
        for round in 0..ROUNDS {
            let original = item(
                site.id,
                ContentKind::Flow,
                ContentStatus::Draft,
                &["No users"],
            );
            t.insert_content(&original).expect("inserts");
            let name = format!("Round {round}");
            let (status_at, audiences_at) = (later(), later());
            let (published, retargeted) = race(
                || {
                    t.update_content(
                        site.id,
                        original.id,
                        &patch(Some(ContentStatus::Published), None),
                        &Precondition::None,
                        status_at,
                    )
                },
                || {
                    t.update_content(
                        site.id,
                        original.id,
                        &patch(None, Some(&["Admins", &name])),
                        &Precondition::None,
                        audiences_at,
                    )
                },
            );
            assert!(published.is_ok(), "{}: {published:?}", t.name());
            assert!(retargeted.is_ok(), "{}: {retargeted:?}", t.name());
            let read = t.get_content(site.id, original.id).expect("reads");
            assert_eq!(
                read,
                ContentItem {
                    status: ContentStatus::Published,
                    audiences: audiences(&["Admins", &name]),
                    version: Version(3),
                    updated_at: read.updated_at,
                    ..original
                },
                "{}: round {round}",
                t.name()
            );
            assert!([stored(status_at), stored(audiences_at)].contains(&read.updated_at));
        }
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
