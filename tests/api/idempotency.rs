//! `Idempotency-Key` on every creating POST: a retry with the same key and
//! body gets the first answer and makes nothing; the same key with another
//! body is a 422; keys belong to their sender.

use serde_json::{json, Value};

use crate::app;
use crate::helpers::{Reply, TestApp};

fn post(app: &TestApp, path: &str, token: &str, body: &Value, key: &str) -> Reply {
    app.send(
        "POST",
        path,
        Some(token),
        Some(&body.to_string()),
        &[
            ("Idempotency-Key", key),
            ("Content-Type", "application/json"),
        ],
    )
}

/// Sends the same creating request twice with one key: the second answer is
/// the first, marked replayed; then the key with another body is refused.
fn replays(app: &TestApp, path: &str, token: &str, body: &Value, other: &Value) -> Value {
    let key = uuid::Uuid::new_v4().to_string();
    let first = post(app, path, token, body, &key);
    assert_eq!(first.status, 201, "{path}: {}", first.body);
    assert_eq!(first.header("idempotency-replayed"), None);
    let again = post(app, path, token, body, &key);
    assert_eq!(again.status, 201, "{path}: {}", again.body);
    assert_eq!(
        again.body, first.body,
        "{path}: the first answer, secrets included"
    );
    assert_eq!(again.header("idempotency-replayed"), Some("true"));
    post(app, path, token, other, &key).assert_invalid(&["Idempotency-Key"]);
    first.body
}

#[test]
fn every_creating_post_of_the_dashboard_replays_its_first_answer() {
    let app = app!();
    let site = app.open_site("idempotent.example.com");

    let created = replays(
        &app,
        "/api/v1/sites",
        &site.token,
        &json!({"domain": "second.example.com", "name": "Second", "allowSubdomains": false}),
        &json!({"domain": "third.example.com", "name": "Third", "allowSubdomains": false}),
    );
    assert!(created["apiKey"]
        .as_str()
        .is_some_and(|k| k.starts_with("cd_live_")));
    let sites = app.get("/api/v1/sites", Some(&site.token));
    let domains: Vec<&str> = sites.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|s| s["domain"].as_str())
        .collect();
    assert_eq!(
        domains
            .iter()
            .filter(|d| **d == "second.example.com")
            .count(),
        1,
        "{domains:?}"
    );
    // The replayed key is the site's live key.
    let key = created["apiKey"].as_str().expect("key");
    let config = app.sdk(
        "GET",
        "/api/v1/sdk/chat/config",
        crate::helpers::Visitor::key(key),
        None,
    );
    assert_eq!(config.status, 200, "{}", config.body);

    let added = replays(
        &app,
        "/api/v1/members",
        &site.token,
        &json!({"email": "sam@idempotent.example.com", "role": "MEMBER"}),
        &json!({"email": "kim@idempotent.example.com", "role": "MEMBER"}),
    );
    let token = added["token"].as_str().expect("token");
    assert_eq!(app.get("/api/v1/me", Some(token)).status, 200);

    let path = format!("/api/v1/sites/{}/content", site.site_id);
    replays(
        &app,
        &path,
        &site.token,
        &json!({"kind": "FLOW", "name": "Export", "description": "d", "status": "DRAFT", "audiences": []}),
        &json!({"kind": "FLOW", "name": "Import", "description": "d", "status": "DRAFT", "audiences": []}),
    );
    let items = app.get(&path, Some(&site.token));
    assert_eq!(items.body["items"].as_array().map(Vec::len), Some(1));
}

#[test]
fn keys_belong_to_their_sender_and_failures_are_not_remembered() {
    let app = app!();
    let site = app.open_site("idempotent-scope.example.com");
    let other = app.member(&site.token, "ADMIN");
    let key = "shared-key-1";
    let body = json!({"email": "lee@scope.example.com", "role": "MEMBER"});
    let first = post(&app, "/api/v1/members", &site.token, &body, key);
    assert_eq!(first.status, 201, "{}", first.body);
    // Another member's request with the same key is its own: it runs (and
    // meets the member made by the first).
    let theirs = post(&app, "/api/v1/members", &other, &body, key);
    theirs.assert_problem(409, "MEMBER_EXISTS");
    // A failed request leaves the key free: fixed, it runs.
    let key = "retry-after-422";
    post(
        &app,
        "/api/v1/members",
        &site.token,
        &json!({"email": "nope", "role": "MEMBER"}),
        key,
    )
    .assert_invalid(&["email"]);
    let fixed = json!({"email": "nope@scope.example.com", "role": "MEMBER"});
    let reply = post(&app, "/api/v1/members", &site.token, &fixed, key);
    assert_eq!(reply.status, 201, "{}", reply.body);
    // Keys that are not 1-255 visible ASCII characters are refused.
    for bad in ["", "with space", &"k".repeat(256)] {
        post(&app, "/api/v1/members", &site.token, &fixed, bad)
            .assert_invalid(&["Idempotency-Key"]);
    }
}

#[test]
fn racing_requests_with_one_key_make_one_thing() {
    let app = app!();
    let site = app.open_site("idempotent-race.example.com");
    let path = format!("/api/v1/sites/{}/content", site.site_id);
    let body = json!({"kind": "TOOLTIP", "name": "Raced", "description": "d", "status": "DRAFT", "audiences": []});
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| post(&app, &path, &site.token, &body, "race-key")))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    // The key's reservation commits with the item and its answer, so a
    // request that finds it taken waits for that and gets the answer.
    for reply in &replies {
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let replayed = replies
        .iter()
        .filter(|r| r.header("idempotency-replayed") == Some("true"))
        .count();
    assert_eq!(replayed, 7, "every request but the first is a replay");
    let made: Vec<&Reply> = replies.iter().collect();
    let ids: std::collections::BTreeSet<&str> =
        made.iter().filter_map(|r| r.body["id"].as_str()).collect();
    assert_eq!(ids.len(), 1, "one item, answered to every request");
    let items = app.get(&path, Some(&site.token));
    assert_eq!(items.body["items"].as_array().map(Vec::len), Some(1));
}
