//! Conversations are seen only through their own site, by members of its
//! own tenant: anything else is a 404 that tells nothing, for every role.

use chatdesk_domain::tenant::Plan;
use serde_json::json;

use super::{
    ask_matching, detail_path, export_path, ids, list, list_path, new_visitor, open, page,
    publish_flow,
};
use crate::app;
use crate::helpers::{widget_body, Reply, TestApp};

/// Whether a reply is the 404 NOT_FOUND problem.
fn is_not_found(reply: &Reply) -> bool {
    reply.status == 404
        && reply.content_type == "application/problem+json"
        && reply.body["code"] == "NOT_FOUND"
}

/// A second mapped site of the tenant of `token` with a published widget;
/// returns its id and API key.
fn second_site(app: &TestApp, token: &str, domain: &str) -> (String, String) {
    let created = app.site(token, domain);
    let site = created["site"]["id"].as_str().expect("id").to_string();
    let key = created["apiKey"].as_str().expect("apiKey").to_string();
    app.set_mapping(token, &site, "COMPLETED");
    let reply = app.put(
        &format!("/api/v1/sites/{site}/widget"),
        Some(token),
        &widget_body(),
    );
    assert!(reply.status == 200 || reply.status == 201, "{}", reply.body);
    let reply = app.post_empty(&format!("/api/v1/sites/{site}/widget/publish"), Some(token));
    assert_eq!(reply.status, 200, "{}", reply.body);
    (site, key)
}

#[test]
fn other_tenants_other_sites_and_unknown_ids_are_404_for_every_role() {
    let app = app!();
    // Tenant A: two sites, a conversation on each.
    let a = app.open_site("a.example.com");
    publish_flow(&app, &a);
    let a_session = open(&app, &a.key, &json!({"anonymousId": new_visitor()}));
    ask_matching(&app, &a.key, &a_session, "How do I export invoices?");
    let (a2_site, a2_key) = second_site(&app, &a.token, "a2.example.com");
    let a2_session = open(&app, &a2_key, &json!({"anonymousId": new_visitor()}));
    // Tenant B with a site and a conversation of its own.
    let b = app.open_site("b.example.com");
    let b_session = open(&app, &b.key, &json!({"anonymousId": new_visitor()}));

    // Each site lists only its own conversation.
    for (token, site, session) in [
        (&a.token, &a.site_id, &a_session.0),
        (&a.token, &a2_site, &a2_session.0),
        (&b.token, &b.site_id, &b_session.0),
    ] {
        let (items, _) = page(&list(&app, token, site, ""));
        assert_eq!(ids(&items), vec![session.clone()]);
    }

    let mut found = Vec::new();
    let not_found = |who: &str, token: &str, path: String| {
        let reply = app.get(&path, Some(token));
        (!is_not_found(&reply))
            .then(|| format!("{who}: GET {path} -> {} {}", reply.status, reply.body))
    };
    let unknown = uuid::Uuid::now_v7().to_string();
    let a_of = |site: &str, session: &str| [detail_path(site, session), export_path(site, session)];
    for role in ["OWNER", "ADMIN", "MANAGER", "MEMBER"] {
        let a_token = if role == "OWNER" {
            a.token.clone()
        } else {
            app.member(&a.token, role)
        };
        let b_token = if role == "OWNER" {
            b.token.clone()
        } else {
            app.member(&b.token, role)
        };
        // B's members and A's ids: the site, and A's session through A's
        // site and through B's own site.
        let who = format!("B's {role}");
        found.extend(not_found(&who, &b_token, list_path(&a.site_id)));
        found.extend(not_found(
            &who,
            &b_token,
            format!("{}?escalated=false", list_path(&a.site_id)),
        ));
        for path in a_of(&a.site_id, &a_session.0)
            .into_iter()
            .chain(a_of(&b.site_id, &a_session.0))
        {
            found.extend(not_found(&who, &b_token, path));
        }
        // A's members: a session of one of A's sites through the other.
        let who = format!("A's {role}");
        for path in a_of(&a2_site, &a_session.0)
            .into_iter()
            .chain(a_of(&a.site_id, &a2_session.0))
            .chain(a_of(&a.site_id, &b_session.0))
        {
            found.extend(not_found(&who, &a_token, path));
        }
        // Unknown and malformed ids.
        for site in [unknown.as_str(), "not-a-uuid"] {
            found.extend(not_found(&who, &a_token, list_path(site)));
            for path in a_of(site, &a_session.0) {
                found.extend(not_found(&who, &a_token, path));
            }
        }
        for session in [unknown.as_str(), "not-a-uuid"] {
            for path in a_of(&a.site_id, session) {
                found.extend(not_found(&who, &a_token, path));
            }
        }
        // Every role of A reads its own conversations.
        for path in [
            list_path(&a.site_id),
            detail_path(&a.site_id, &a_session.0),
            export_path(&a.site_id, &a_session.0),
        ] {
            let reply = app.get(&path, Some(&a_token));
            if reply.status != 200 {
                found.push(format!(
                    "A's {role}: GET {path} -> {} {}",
                    reply.status, reply.body
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "expected 404 NOT_FOUND (or 200 for A's own):\n{}",
        found.join("\n")
    );

    // No token, or a token that is not one: 401, whatever the ids.
    for path in [
        list_path(&a.site_id),
        detail_path(&a.site_id, &a_session.0),
        export_path(&a.site_id, &a_session.0),
        list_path(&unknown),
    ] {
        app.get(&path, None)
            .assert_problem(401, "MISSING_CREDENTIALS");
        app.get(&path, Some("cd_pat_not-a-real-token"))
            .assert_problem(401, "INVALID_CREDENTIALS");
    }
}

/// A site nobody has talked to yet (no widget even) lists an empty page,
/// whatever the filters.
#[test]
fn a_site_without_conversations_lists_an_empty_page() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "empty.example.com");
    let reply = list(&app, &tenant.token, &site, "");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body, json!({"items": [], "nextCursor": null}));
    let reply = list(
        &app,
        &tenant.token,
        &site,
        "hasFeedback=true&escalated=true",
    );
    assert_eq!(reply.body, json!({"items": [], "nextCursor": null}));
}
