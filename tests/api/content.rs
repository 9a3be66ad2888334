//! The content library: `/api/v1/sites/{siteId}/content[/{contentId}]`.

use chatdesk_domain::tenant::Plan;
use serde_json::{json, Value};

use crate::app;
use crate::helpers::{at_micros, TestApp};

fn path(site: &str) -> String {
    format!("/api/v1/sites/{site}/content")
}

fn names(reply: &Value) -> Vec<String> {
    reply["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_string())
        .collect()
}

/// The names listed under a query, checking the reply.
fn listed(app: &TestApp, token: &str, site: &str, query: &str) -> Vec<String> {
    let reply = app.get(&format!("{}{query}", path(site)), Some(token));
    assert_eq!(reply.status, 200, "{query}: {}", reply.body);
    names(&reply.body)
}

fn item(kind: &str, name: &str) -> Value {
    json!({"kind": kind, "name": name})
}

#[test]
fn creating_flows_and_tooltips() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "example.com");
    let reply = app.post(
        &path(&site),
        Some(&tenant.token),
        &json!({
            "kind": "FLOW",
            "name": "  Invite a teammate ",
            "description": "Shows where the invite button is",
            "audiences": ["Admins", "Admins", "Trial", "Admins"]
        }),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.content_type, "application/json");
    let flow = &reply.body;
    for key in [
        "id",
        "siteId",
        "kind",
        "name",
        "description",
        "status",
        "audiences",
        "generated",
        "createdAt",
    ] {
        assert!(flow.get(key).is_some(), "content.{key} missing: {flow}");
    }
    assert!(uuid::Uuid::parse_str(flow["id"].as_str().unwrap()).is_ok());
    assert_eq!(flow["siteId"], site.as_str());
    assert_eq!(flow["kind"], "FLOW");
    assert_eq!(flow["name"], "Invite a teammate");
    assert_eq!(flow["description"], "Shows where the invite button is");
    assert_eq!(flow["status"], "DRAFT");
    assert_eq!(flow["audiences"], json!(["Admins", "Trial"]));
    assert_eq!(flow["generated"], false);
    assert_eq!(
        flow["origin"],
        Value::Null,
        "only AI-made Flows have an origin"
    );

    let tooltip = app.post(
        &path(&site),
        Some(&tenant.token),
        &json!({"kind": "TOOLTIP", "name": "Billing hint", "status": "PUBLISHED"}),
    );
    assert_eq!(tooltip.status, 201, "{}", tooltip.body);
    assert_eq!(tooltip.body["kind"], "TOOLTIP");
    assert_eq!(tooltip.body["status"], "PUBLISHED");
    assert_eq!(tooltip.body["audiences"], json!([]));
    assert_eq!(tooltip.body["description"], "");
    assert_eq!(tooltip.body["generated"], false);

    // A client cannot claim an item was AI-made.
    let mut claimed = item("FLOW", "Fake AI flow");
    claimed["generated"] = json!(true);
    app.post(&path(&site), Some(&tenant.token), &claimed)
        .assert_invalid(&["generated"]);

    let list = app.get(&path(&site), Some(&tenant.token));
    assert_eq!(list.status, 200);
    let mut keys: Vec<&String> = list.body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["items", "nextCursor"]);
    assert_eq!(names(&list.body), ["Invite a teammate", "Billing hint"]);
    assert_eq!(at_micros(&list.body["items"][0]), at_micros(flow));
}

#[test]
fn content_fields_are_validated() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "example.com");
    let t = Some(tenant.token.as_str());
    let twenty_one: Vec<String> = (0..21).map(|i| format!("A{i}")).collect();
    let cases: Vec<(Vec<&str>, Value)> = vec![
        (vec!["kind"], json!({"kind": "GUIDE", "name": "x"})),
        (vec!["kind"], json!({"kind": "flow", "name": "x"})),
        (vec!["kind"], json!({"name": "x"})),
        (vec!["name"], json!({"kind": "FLOW"})),
        (vec!["name"], json!({"kind": "FLOW", "name": ""})),
        (vec!["name"], json!({"kind": "FLOW", "name": "  "})),
        (
            vec!["name"],
            json!({"kind": "FLOW", "name": "n".repeat(121)}),
        ),
        (
            vec!["description"],
            json!({"kind": "FLOW", "name": "x", "description": "d".repeat(2001)}),
        ),
        (
            vec!["status"],
            json!({"kind": "FLOW", "name": "x", "status": "LIVE"}),
        ),
        (
            vec!["status"],
            json!({"kind": "FLOW", "name": "x", "status": "published"}),
        ),
        (
            vec!["audiences[1]"],
            json!({"kind": "FLOW", "name": "x", "audiences": ["Admins", ""]}),
        ),
        (
            vec!["audiences[0]"],
            json!({"kind": "FLOW", "name": "x", "audiences": ["a".repeat(51)]}),
        ),
        (
            vec!["audiences"],
            json!({"kind": "FLOW", "name": "x", "audiences": twenty_one}),
        ),
        (
            vec!["audiences[0]"],
            json!({"kind": "FLOW", "name": "x", "audiences": [3]}),
        ),
        (
            vec!["audiences"],
            json!({"kind": "FLOW", "name": "x", "audiences": "Admins"}),
        ),
        (
            vec!["kind", "name", "status"],
            json!({"kind": "GUIDE", "name": "", "status": "LIVE"}),
        ),
    ];
    for (fields, body) in cases {
        let reply = app.post(&path(&site), t, &body);
        assert_eq!(reply.status, 422, "{body}: {}", reply.body);
        reply.assert_invalid(&fields);
    }
    app.send("POST", &path(&site), t, Some("{\"kind\""), &[])
        .assert_problem(400, "MALFORMED_JSON");
    assert!(listed(&app, &tenant.token, &site, "").is_empty());

    // The bounds themselves are fine.
    let twenty: Vec<String> = (0..20).map(|i| format!("A{i}")).collect();
    let ok = app.post(
        &path(&site),
        t,
        &json!({
            "kind": "FLOW",
            "name": "n".repeat(120),
            "description": "d".repeat(2000),
            "audiences": twenty
        }),
    );
    assert_eq!(ok.status, 201, "{}", ok.body);
    assert_eq!(ok.body["audiences"].as_array().unwrap().len(), 20);
}

/// Four items covering every filter value.
fn library(app: &TestApp, token: &str, site: &str) {
    for body in [
        json!({"kind": "FLOW", "name": "F published", "status": "PUBLISHED", "audiences": ["Admins"]}),
        json!({"kind": "FLOW", "name": "F draft"}),
        json!({"kind": "TOOLTIP", "name": "T published", "status": "PUBLISHED", "audiences": ["No users"]}),
        json!({"kind": "TOOLTIP", "name": "T draft", "status": "DRAFT", "audiences": ["Admins", "No users"]}),
    ] {
        app.content(token, site, &body);
    }
}

#[test]
fn the_list_filters_by_kind_status_and_audience() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "example.com");
    library(&app, &tenant.token, &site);
    let t = &tenant.token;
    let table: [(&str, &[&str]); 14] = [
        ("", &["F published", "F draft", "T published", "T draft"]),
        ("?kind=FLOW", &["F published", "F draft"]),
        ("?kind=TOOLTIP", &["T published", "T draft"]),
        ("?status=PUBLISHED", &["F published", "T published"]),
        ("?status=DRAFT", &["F draft", "T draft"]),
        ("?audience=Admins", &["F published", "T draft"]),
        ("?audience=No%20users", &["T published", "T draft"]),
        ("?audience=No+users", &["T published", "T draft"]),
        ("?audience=Nobody", &[]),
        ("?kind=TOOLTIP&status=PUBLISHED", &["T published"]),
        ("?kind=FLOW&audience=No%20users", &[]),
        ("?status=DRAFT&audience=Admins", &["T draft"]),
        (
            "?kind=TOOLTIP&status=DRAFT&audience=No%20users",
            &["T draft"],
        ),
        (
            "?kind=FLOW&status=PUBLISHED&audience=Admins&limit=10",
            &["F published"],
        ),
    ];
    for (query, expected) in table {
        assert_eq!(listed(&app, t, &site, query), expected, "{query}");
    }
}

#[test]
fn invalid_filters_are_422_naming_them() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "example.com");
    let t = Some(tenant.token.as_str());
    let p = path(&site);
    app.get(&format!("{p}?kind=GUIDE"), t)
        .assert_invalid(&["kind"]);
    app.get(&format!("{p}?kind=flow"), t)
        .assert_invalid(&["kind"]);
    app.get(&format!("{p}?status=LIVE"), t)
        .assert_invalid(&["status"]);
    app.get(&format!("{p}?audience="), t)
        .assert_invalid(&["audience"]);
    app.get(&format!("{p}?audience={}", "a".repeat(51)), t)
        .assert_invalid(&["audience"]);
    app.get(&format!("{p}?kind=X&status=Y"), t)
        .assert_invalid(&["kind", "status"]);
    app.get(&format!("{p}?limit=0"), t)
        .assert_invalid(&["limit"]);
    app.get(&format!("{p}?limit=101"), t)
        .assert_invalid(&["limit"]);
    app.get(&format!("{p}?cursor=nope"), t)
        .assert_invalid(&["cursor"]);
    app.get(&format!("{p}?limit=abc"), t)
        .assert_problem(400, "MALFORMED_QUERY");
}

#[test]
fn paging_through_five_items_two_at_a_time() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "example.com");
    let made: Vec<String> = (1..=5)
        .map(|n| {
            app.content(&tenant.token, &site, &item("FLOW", &format!("Flow {n}")))["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    // A published tooltip in between, to page a filtered list too.
    app.content(
        &tenant.token,
        &site,
        &json!({"kind": "TOOLTIP", "name": "Tip", "status": "PUBLISHED"}),
    );

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut query = format!("{}?kind=FLOW&limit=2", path(&site));
    loop {
        let page = app.get(&query, Some(&tenant.token));
        assert_eq!(page.status, 200, "{}", page.body);
        let items = page.body["items"].as_array().unwrap();
        sizes.push(items.len());
        seen.extend(items.iter().map(|c| c["id"].as_str().unwrap().to_string()));
        match page.body["nextCursor"].as_str() {
            Some(cursor) => query = format!("{}?kind=FLOW&limit=2&cursor={cursor}", path(&site)),
            None => break,
        }
        assert!(sizes.len() < 10, "paging does not end");
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(seen, made, "every item once, oldest first");
}

#[test]
fn paging_keeps_its_place_when_items_are_added() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "example.com");
    for n in 1..=3 {
        app.content(&tenant.token, &site, &item("FLOW", &format!("Flow {n}")));
    }
    let first = app.get(&format!("{}?limit=2", path(&site)), Some(&tenant.token));
    assert_eq!(names(&first.body), ["Flow 1", "Flow 2"]);
    let cursor = first.body["nextCursor"].as_str().expect("more").to_string();
    app.content(&tenant.token, &site, &item("FLOW", "Flow 4"));
    let second = app.get(
        &format!("{}?limit=2&cursor={cursor}", path(&site)),
        Some(&tenant.token),
    );
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(names(&second.body), ["Flow 3", "Flow 4"]);
}

#[test]
fn get_and_patch_one_item() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "example.com");
    let t = Some(tenant.token.as_str());
    let created = app.content(
        &tenant.token,
        &site,
        &json!({"kind": "FLOW", "name": "Invite", "audiences": ["Admins"]}),
    );
    let id = created["id"].as_str().unwrap();
    let one = format!("{}/{id}", path(&site));

    let got = app.get(&one, t);
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(at_micros(&got.body), at_micros(&created));

    let reply = app.patch(&one, t, &json!({"status": "PUBLISHED"}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "PUBLISHED");
    assert_eq!(reply.body["audiences"], json!(["Admins"]));

    let reply = app.patch(&one, t, &json!({"audiences": ["Trial", "Beta", "Trial"]}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["audiences"], json!(["Trial", "Beta"]));
    assert_eq!(reply.body["status"], "PUBLISHED");

    let reply = app.patch(&one, t, &json!({"status": "DRAFT", "audiences": []}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "DRAFT");
    assert_eq!(reply.body["audiences"], json!([]));

    let reply = app.patch(&one, t, &json!({}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "DRAFT");

    let got = app.get(&one, t);
    assert_eq!(got.body["status"], "DRAFT");
    assert_eq!(got.body["audiences"], json!([]));
    assert_eq!(got.body["id"], created["id"]);
    assert_eq!(got.body["name"], "Invite");
    assert_eq!(got.body["kind"], "FLOW");
    assert_eq!(
        at_micros(&got.body)["createdAt"],
        at_micros(&created)["createdAt"]
    );

    // Invalid patches are refused and change nothing.
    app.patch(&one, t, &json!({"status": "LIVE"}))
        .assert_invalid(&["status"]);
    app.patch(&one, t, &json!({"audiences": ["ok", ""]}))
        .assert_invalid(&["audiences[1]"]);
    app.patch(&one, t, &json!({"name": "Renamed"}))
        .assert_invalid(&["name"]);
    app.patch(&one, t, &json!({"status": 1}))
        .assert_invalid(&["status"]);
    assert_eq!(app.get(&one, t).body["status"], "DRAFT");

    // Unknown and malformed ids.
    for bad in [uuid::Uuid::now_v7().to_string(), "not-a-uuid".into()] {
        app.get(&format!("{}/{bad}", path(&site)), t)
            .assert_problem(404, "NOT_FOUND");
        app.patch(
            &format!("{}/{bad}", path(&site)),
            t,
            &json!({"status": "DRAFT"}),
        )
        .assert_problem(404, "NOT_FOUND");
    }
}

#[test]
fn removing_no_users_retargets_an_item_to_everyone() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "example.com");
    let t = &tenant.token;
    let held = app.content(
        t,
        &site,
        &json!({"kind": "FLOW", "name": "Held back", "status": "PUBLISHED", "audiences": ["No users"]}),
    );
    app.content(
        t,
        &site,
        &json!({"kind": "FLOW", "name": "Everyone", "status": "PUBLISHED"}),
    );
    assert_eq!(held["audiences"], json!(["No users"]));
    assert_eq!(
        listed(&app, t, &site, "?status=PUBLISHED&audience=No%20users"),
        ["Held back"]
    );

    let id = held["id"].as_str().unwrap();
    let reply = app.patch(
        &format!("{}/{id}", path(&site)),
        Some(t),
        &json!({"audiences": []}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["audiences"], json!([]));
    assert_eq!(reply.body["status"], "PUBLISHED");

    assert_eq!(
        listed(&app, t, &site, "?status=PUBLISHED"),
        ["Held back", "Everyone"]
    );
    assert!(listed(&app, t, &site, "?audience=No%20users").is_empty());
    assert!(listed(&app, t, &site, "?status=PUBLISHED&audience=No%20users").is_empty());
}

#[test]
fn members_read_content_but_cannot_change_it() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "example.com");
    let created = app.content(&tenant.token, &site, &item("FLOW", "Invite"));
    let id = created["id"].as_str().unwrap();
    let member = app.member(&tenant.token, "MEMBER");
    let m = Some(member.as_str());

    app.post(&path(&site), m, &item("TOOLTIP", "Mine"))
        .assert_problem(403, "ROLE_TOO_WEAK");
    app.patch(
        &format!("{}/{id}", path(&site)),
        m,
        &json!({"status": "PUBLISHED"}),
    )
    .assert_problem(403, "ROLE_TOO_WEAK");

    assert_eq!(listed(&app, &member, &site, ""), ["Invite"]);
    let got = app.get(&format!("{}/{id}", path(&site)), m);
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.body["status"], "DRAFT");

    // A MANAGER may.
    let manager = app.member(&tenant.token, "MANAGER");
    let reply = app.post(&path(&site), Some(&manager), &item("TOOLTIP", "Managed"));
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = app.patch(
        &format!("{}/{id}", path(&site)),
        Some(&manager),
        &json!({"status": "PUBLISHED"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[test]
fn an_item_is_reached_only_through_its_own_site() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site_a = app.site_id(&tenant.token, "a.example.com");
    let site_b = app.site_id(&tenant.token, "b.example.com");
    let t = Some(tenant.token.as_str());
    let on_a = app.content(&tenant.token, &site_a, &item("FLOW", "On A"));
    let id = on_a["id"].as_str().unwrap();

    app.get(&format!("{}/{id}", path(&site_b)), t)
        .assert_problem(404, "NOT_FOUND");
    app.patch(
        &format!("{}/{id}", path(&site_b)),
        t,
        &json!({"status": "PUBLISHED"}),
    )
    .assert_problem(404, "NOT_FOUND");
    assert!(listed(&app, &tenant.token, &site_b, "").is_empty());
    let got = app.get(&format!("{}/{id}", path(&site_a)), t);
    assert_eq!(got.status, 200);
    assert_eq!(got.body["status"], "DRAFT");

    // An unknown or malformed site.
    for bad in [uuid::Uuid::now_v7().to_string(), "nope".into()] {
        app.get(&path(&bad), t).assert_problem(404, "NOT_FOUND");
        app.post(&path(&bad), t, &item("FLOW", "x"))
            .assert_problem(404, "NOT_FOUND");
        app.get(&format!("{}/{id}", path(&bad)), t)
            .assert_problem(404, "NOT_FOUND");
    }
}

#[test]
fn timestamps_read_back_exactly_as_returned() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "example.com");
    let t = Some(tenant.token.as_str());
    let created = app.content(&tenant.token, &site, &item("FLOW", "Invite"));
    let one = format!("{}/{}", path(&site), created["id"].as_str().unwrap());
    assert_eq!(app.get(&one, t).body, created, "GET differs from the POST");
    let patched = app.patch(&one, t, &json!({"status": "PUBLISHED"}));
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        app.get(&one, t).body,
        patched.body,
        "GET differs from the PATCH"
    );
}
