//! Tenant isolation: a member of tenant B using tenant A's ids gets 404
//! `NOT_FOUND` on every route — never 403 (which would reveal that the id
//! exists) and never 200 — whatever B's role; and nothing of A changes.

mod matrix;
mod routes;
mod world;

use chatdesk_domain::ports::SiteRepository;
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::tenant::Plan;
use serde_json::{json, Value};

use crate::app;
use crate::helpers::{widget_body, TestApp};

/// Tenant A with one of everything.
struct TenantA {
    owner: String,
    site: String,
    api_key: String,
    content: String,
    member: String,
}

fn tenant_a(app: &TestApp) -> TenantA {
    let a = app.tenant(Plan::Pro);
    let created = app.site(&a.token, "a.example.com");
    let site = created["site"]["id"].as_str().unwrap().to_string();
    app.widget(&a.token, &site);
    let content = app.content(
        &a.token,
        &site,
        &json!({"kind": "FLOW", "name": "A's flow", "audiences": ["No users"]}),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (member, _) = app.member_with_id(&a.token, "MEMBER");
    TenantA {
        owner: a.token,
        site,
        api_key: created["apiKey"].as_str().unwrap().to_string(),
        content,
        member,
    }
}

/// Everything of A a member of A can see, to compare before and after.
fn snapshot(app: &TestApp, a: &TenantA) -> Value {
    let t = Some(a.owner.as_str());
    json!({
        "site": app.get(&format!("/api/v1/sites/{}", a.site), t).body,
        "sites": app.get("/api/v1/sites", t).body,
        "widget": app.get(&format!("/api/v1/sites/{}/widget", a.site), t).body,
        "content": app.get(&format!("/api/v1/sites/{}/content", a.site), t).body,
        "members": app.get("/api/v1/members", t).body,
    })
}

/// Every route that takes an id, with A's ids, as (method, path, body).
fn routes(a: &TenantA) -> Vec<(&'static str, String, Option<Value>)> {
    let s = &a.site;
    let c = &a.content;
    vec![
        ("GET", format!("/api/v1/sites/{s}"), None),
        (
            "PATCH",
            format!("/api/v1/sites/{s}"),
            Some(json!({"name": "Taken over"})),
        ),
        ("DELETE", format!("/api/v1/sites/{s}"), None),
        ("POST", format!("/api/v1/sites/{s}/api-key"), None),
        (
            "PUT",
            format!("/api/v1/sites/{s}/mapping"),
            Some(json!({"status": "COMPLETED"})),
        ),
        ("POST", format!("/api/v1/sites/{s}/identity-secret"), None),
        ("GET", format!("/api/v1/sites/{s}/widget"), None),
        (
            "PUT",
            format!("/api/v1/sites/{s}/widget"),
            Some(widget_body()),
        ),
        ("POST", format!("/api/v1/sites/{s}/widget/publish"), None),
        ("POST", format!("/api/v1/sites/{s}/widget/pause"), None),
        ("GET", format!("/api/v1/sites/{s}/content"), None),
        (
            "POST",
            format!("/api/v1/sites/{s}/content"),
            Some(json!({"kind": "TOOLTIP", "name": "Planted"})),
        ),
        ("GET", format!("/api/v1/sites/{s}/content/{c}"), None),
        (
            "PATCH",
            format!("/api/v1/sites/{s}/content/{c}"),
            Some(json!({"status": "PUBLISHED", "audiences": []})),
        ),
        ("DELETE", format!("/api/v1/members/{}", a.member), None),
    ]
}

/// Runs every route as `token` and returns what was not a 404 NOT_FOUND
/// problem, so one run reports every leaking route.
fn leaks(app: &TestApp, token: &str, a: &TenantA) -> Vec<String> {
    let mut out = Vec::new();
    for (method, path, body) in routes(a) {
        let body = body.map(|b| b.to_string());
        let reply = app.send(method, &path, Some(token), body.as_deref(), &[]);
        let ok = reply.status == 404
            && reply.content_type == "application/problem+json"
            && reply.body["code"] == "NOT_FOUND";
        if !ok {
            out.push(format!(
                "{method} {path} -> {} {}",
                reply.status, reply.body["code"]
            ));
        }
    }
    out
}

/// A's content id through B's own site must be answered exactly as an id
/// that does not exist (GET: 404), so it tells B nothing.
fn own_site_oracles(app: &TestApp, token: &str, a: &TenantA, own_site: &str) -> Vec<String> {
    let mut out = Vec::new();
    let unknown = uuid::Uuid::now_v7().to_string();
    let patch = json!({"status": "PUBLISHED", "audiences": []}).to_string();
    for (method, body) in [("GET", None), ("PATCH", Some(patch.as_str()))] {
        let foreign = app.send(
            method,
            &format!("/api/v1/sites/{own_site}/content/{}", a.content),
            Some(token),
            body,
            &[],
        );
        let missing = app.send(
            method,
            &format!("/api/v1/sites/{own_site}/content/{unknown}"),
            Some(token),
            body,
            &[],
        );
        let same = foreign.status == missing.status && foreign.body["code"] == missing.body["code"];
        let found_nothing = method != "GET" || foreign.status == 404;
        if !same || !found_nothing {
            out.push(format!(
                "{method} /api/v1/sites/{{own site}}/content/{{A's content}} -> {} {} (unknown id: {} {})",
                foreign.status, foreign.body["code"], missing.status, missing.body["code"]
            ));
        }
    }
    out
}

fn check_role(role: &str) {
    let app = app!();
    let a = tenant_a(&app);
    let b = app.tenant(Plan::Pro);
    let own_site = app.site_id(&b.token, "b.example.com");
    let token = if role == "OWNER" {
        b.token.clone()
    } else {
        app.member(&b.token, role)
    };
    // The members route: A's owner and A's member.
    let me_a = app.get("/api/v1/me", Some(&a.owner));
    let a_owner_id = me_a.body["member"]["id"].as_str().unwrap().to_string();
    let before = snapshot(&app, &a);

    let mut found = leaks(&app, &token, &a);
    found.extend(own_site_oracles(&app, &token, &a, &own_site));
    let reply = app.delete(&format!("/api/v1/members/{a_owner_id}"), Some(&token));
    if reply.status != 404 || reply.body["code"] != "NOT_FOUND" {
        found.push(format!(
            "DELETE /api/v1/members/{{A's owner}} -> {} {}",
            reply.status, reply.body["code"]
        ));
    }

    let after = snapshot(&app, &a);
    assert_eq!(
        before, after,
        "tenant A changed after B's ({role}) requests"
    );
    let resolved = app
        .store()
        .find_by_api_key(&SecretHash::of(&a.api_key))
        .unwrap()
        .map(|s| s.id.to_string());
    assert_eq!(
        resolved.as_deref(),
        Some(a.site.as_str()),
        "A's API key no longer works"
    );
    assert!(
        found.is_empty(),
        "B's {role} got something other than 404 NOT_FOUND for A's ids:\n{}",
        found.join("\n")
    );
}

#[test]
fn an_owner_of_another_tenant_gets_404_everywhere() {
    check_role("OWNER");
}

#[test]
fn an_admin_of_another_tenant_gets_404_everywhere() {
    check_role("ADMIN");
}

#[test]
fn a_manager_of_another_tenant_gets_404_everywhere() {
    check_role("MANAGER");
}

#[test]
fn a_weak_member_of_another_tenant_gets_404_not_403() {
    check_role("MEMBER");
}

#[test]
fn lists_show_only_the_own_tenant() {
    let app = app!();
    let a = tenant_a(&app);
    let b = app.tenant(Plan::Pro);
    let own_site = app.site_id(&b.token, "a.example.com");
    let sites = app.get("/api/v1/sites", Some(&b.token));
    let ids: Vec<&str> = sites.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [own_site.as_str()]);
    assert!(!sites.body.to_string().contains(&a.site));
    let members = app.get("/api/v1/members", Some(&b.token));
    assert_eq!(members.body["items"].as_array().unwrap().len(), 1);
    assert!(!members.body.to_string().contains(&a.member));
    let content = app.get(&format!("/api/v1/sites/{own_site}/content"), Some(&b.token));
    assert_eq!(content.body["items"], json!([]));
    // B's widget does not exist even though A's site with the same domain has one.
    app.get(&format!("/api/v1/sites/{own_site}/widget"), Some(&b.token))
        .assert_problem(404, "NOT_FOUND");
}
