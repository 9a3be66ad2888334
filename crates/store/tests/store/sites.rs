//! Sites: round trip, isolation, plan cap, unique domains, API keys,
//! pages, deletion of everything under a site.

use std::sync::{Arc, Barrier};

use chatdesk_domain::ids::SiteId;
use chatdesk_domain::ports::{ContentRepository, PageRequest, SiteRepository, WidgetRepository};
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::site::{MappingStatus, Site, SiteDomain, Theme};
use chatdesk_domain::tenant::Plan;
use chatdesk_domain::testing::builders::{a_content_item, a_widget, t0};
use chatdesk_domain::{Entity, Error};
use chatdesk_store::schema::*;
use chatdesk_store::{connect, DbConnection};
use chrono::{SubsecRound, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::helpers::{
    site_of, stored_site, stores, tenant_and_site, tenant_with_owner, unknown_site,
};

fn theme() -> Theme {
    Theme {
        primary_color: "#112233".into(),
        background_color: "#fafafa".into(),
        text_color: "#000000".into(),
        font_family: "\"Inter\", sans-serif".into(),
    }
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
        t.insert_site_within_cap(&site, Some(10), Plan::Pro)
            .expect("inserts");
        assert_eq!(
            t.get_site(tenant.id, site.id).expect("reads"),
            site,
            "{}",
            t.name()
        );

        // Every mutable field is saved.
        let now = Utc::now();
        let changed = Site {
            domain: SiteDomain::parse("help.example.org").expect("valid"),
            name: "Help".into(),
            allow_subdomains: false,
            mapping_status: MappingStatus::Completed,
            api_key_prefix: "cd_live_def456".into(),
            api_key_hash: SecretHash::of("cd_live_new"),
            identity_secret_hash: None,
            theme: Theme::default(),
            updated_at: now,
            ..site.clone()
        };
        t.update_site(&changed).expect("updates");
        let read = t.get_site(tenant.id, site.id).expect("reads");
        assert_eq!(
            read,
            Site {
                updated_at: now.trunc_subsecs(6),
                ..changed
            },
            "{}",
            t.name()
        );
        assert_eq!(read.created_at, site.created_at, "created_at is kept");
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

        let hijack = Site {
            tenant_id: other.id,
            name: "Mine now".into(),
            ..site.clone()
        };
        assert_eq!(t.update_site(&hijack), Err(Error::NotFound(Entity::Site)));
        assert_eq!(
            t.delete_site(other.id, site.id),
            Err(Error::NotFound(Entity::Site))
        );
        assert_eq!(t.get_site(tenant.id, site.id).expect("untouched"), site);
        let listed = t
            .list_sites(
                other.id,
                &PageRequest {
                    limit: 10,
                    after: None,
                },
            )
            .expect("lists");
        assert!(listed.items.is_empty());
    }
}

#[test]
fn the_plan_caps_the_number_of_sites() {
    for t in stores() {
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Starter);
        for i in 0..3 {
            let site = site_of(tenant.id, &format!("s{i}.example.com"));
            t.insert_site_within_cap(&site, Some(3), Plan::Starter)
                .expect("under the cap");
        }
        let fourth = site_of(tenant.id, "s3.example.com");
        assert_eq!(
            t.insert_site_within_cap(&fourth, Some(3), Plan::Starter),
            Err(Error::PlanLimit {
                plan: "STARTER",
                cap: 3
            }),
            "{}",
            t.name()
        );
        assert_eq!(
            t.get_site(tenant.id, fourth.id),
            Err(Error::NotFound(Entity::Site))
        );
        // No cap: unlimited.
        t.insert_site_within_cap(&fourth, None, Plan::Enterprise)
            .expect("no cap");
        // Another tenant's sites do not count.
        let (other, _, _) = tenant_with_owner(&t, Plan::Free);
        let theirs = site_of(other.id, "s0.example.com");
        t.insert_site_within_cap(&theirs, Some(1), Plan::Free)
            .expect("their first site");
    }
}

#[test]
fn concurrent_creates_cannot_pass_the_cap() {
    for t in stores() {
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Starter);
        let store = Arc::new(t.store.clone());
        let start = Arc::new(Barrier::new(6));
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let store = Arc::clone(&store);
                let start = Arc::clone(&start);
                let site = site_of(tenant.id, &format!("c{i}.example.com"));
                std::thread::spawn(move || {
                    start.wait();
                    store.insert_site_within_cap(&site, Some(3), Plan::Starter)
                })
            })
            .collect();
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("joins"))
            .collect();
        let created = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(created, 3, "{}: {results:?}", t.name());
        assert!(results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| e.code() == "PLAN_LIMIT"));
        let listed = t
            .list_sites(
                tenant.id,
                &PageRequest {
                    limit: 100,
                    after: None,
                },
            )
            .expect("lists");
        assert_eq!(listed.items.len(), 3);
    }
}

#[test]
fn domains_are_unique_per_tenant() {
    for t in stores() {
        let (tenant, site) = tenant_and_site(&t);
        let twin = site_of(tenant.id, site.domain.as_str());
        assert_eq!(
            t.insert_site_within_cap(&twin, Some(10), Plan::Pro),
            Err(Error::SiteExists),
            "{}",
            t.name()
        );
        let (other, _, _) = tenant_with_owner(&t, Plan::Pro);
        stored_site(&t, other.id, site.domain.as_str());

        let second = stored_site(&t, tenant.id, "second.example.com");
        let clash = Site {
            domain: site.domain.clone(),
            ..second
        };
        assert_eq!(
            t.update_site(&clash),
            Err(Error::SiteExists),
            "{}",
            t.name()
        );
    }
}

#[test]
fn sites_are_found_by_api_key() {
    for t in stores() {
        let (_, site) = tenant_and_site(&t);
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
        let rotated = Site {
            api_key_hash: SecretHash::of("cd_live_rotated"),
            ..site.clone()
        };
        t.update_site(&rotated).expect("updates");
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
            t.save_widget(&widget).expect("widget");
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
