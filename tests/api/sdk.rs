//! The widget SDK as the widget sees it: the config gate and how fast it
//! follows changes, origins and CORS, the body limit, sessions and
//! identities, session tokens, messages and votes.

use std::collections::HashSet;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use chatdesk_domain::tenant::Plan;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::app;
use crate::helpers::{widget_body, OpenSite, Reply, TestApp, Visitor};

const CONFIG: &str = "/api/v1/sdk/chat/config";
const SESSIONS: &str = "/api/v1/sdk/chat/sessions";
/// How long a change made behind the API (the CLI) may take to show.
const BEHIND_THE_API: Duration = Duration::from_secs(10);

fn messages_path(session: &str) -> String {
    format!("{SESSIONS}/{session}/messages")
}

fn feedback_path(message: &str) -> String {
    format!("/api/v1/sdk/chat/messages/{message}/feedback")
}

fn site_path(site: &str) -> String {
    format!("/api/v1/sites/{site}")
}

fn config(app: &TestApp, key: &str) -> Reply {
    app.sdk("GET", CONFIG, Visitor::key(key), None)
}

/// The config's body, which must be a 200.
#[track_caller]
fn config_body(app: &TestApp, key: &str) -> Value {
    let reply = config(app, key);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.content_type, "application/json", "{}", reply.body);
    reply.body
}

/// Asserts the chat may not open, for this reason (and shows no widget).
#[track_caller]
fn assert_closed(app: &TestApp, key: &str, reason: &str) {
    let body = config_body(app, key);
    assert_eq!(
        body,
        json!({"enabled": false, "reason": reason}),
        "expected {reason}"
    );
}

/// Asserts the chat may open; returns the public widget.
#[track_caller]
fn assert_open(app: &TestApp, key: &str) -> Value {
    let body = config_body(app, key);
    assert_eq!(body["enabled"], true, "{body}");
    assert!(body.get("reason").is_none(), "{body}");
    body["widget"].clone()
}

/// Polls the config until `done` holds or the time is up; returns the
/// last body and how long it took.
fn poll_config(
    app: &TestApp,
    key: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> (Value, Duration, bool) {
    let start = Instant::now();
    loop {
        let body = config_body(app, key);
        if done(&body) {
            return (body, start.elapsed(), true);
        }
        if start.elapsed() > within {
            return (body, start.elapsed(), false);
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn open_session(app: &TestApp, visitor: Visitor, body: &Value) -> Reply {
    app.sdk("POST", SESSIONS, visitor, Some(body))
}

fn anonymous(id: &str) -> Value {
    json!({ "anonymousId": id })
}

/// A fresh anonymous id.
fn new_visitor() -> String {
    format!("anon-{}", uuid::Uuid::new_v4().simple())
}

fn list_messages(app: &TestApp, key: &str, session: &(String, String), query: &str) -> Reply {
    app.sdk(
        "GET",
        &format!("{}{query}", messages_path(&session.0)),
        Visitor::key(key).session(&session.1),
        None,
    )
}

/// Every message of a session (one page of 100), oldest first.
#[track_caller]
fn all_messages(app: &TestApp, key: &str, session: &(String, String)) -> Vec<Value> {
    let reply = list_messages(app, key, session, "?limit=100");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["nextCursor"], Value::Null, "{}", reply.body);
    reply.body["items"].as_array().cloned().unwrap_or_default()
}

fn str_of(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

/// The name of the published Flow that questions match.
const FLOW: &str = "Export invoices";

/// Publishes the Flow [`FLOW`] on the site.
fn publish_flow(app: &TestApp, site: &OpenSite) {
    app.content(
        &site.token,
        &site.site_id,
        &json!({
            "kind": "FLOW",
            "name": FLOW,
            "description": "Download every invoice of a period as a CSV file.",
            "status": "PUBLISHED",
            "audiences": []
        }),
    );
}

/// Asks a question that matches [`FLOW`]; returns the user's and the
/// assistant's message ids.
#[track_caller]
fn ask_matching(app: &TestApp, key: &str, session: &(String, String)) -> (String, String) {
    let reply = app.ask(key, session, "How do I export invoices for March?");
    assert_eq!(reply.status, 201, "{}", reply.body);
    let (user, assistant) = (&reply.body["userMessage"], &reply.body["assistantMessage"]);
    assert_eq!(user["role"], "USER", "{}", reply.body);
    assert_eq!(assistant["role"], "ASSISTANT", "{}", reply.body);
    assert_eq!(assistant["status"], "MATCHED_CONTENT", "{}", reply.body);
    assert_eq!(assistant["contentRef"]["name"], FLOW, "{}", reply.body);
    (str_of(&user["id"]), str_of(&assistant["id"]))
}

/// `hex(HMAC-SHA256(secret, external_id))`, as the site's server signs a
/// signed-in visitor's id.
fn user_hash(secret: &str, external_id: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(external_id.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every value of a header, however many lines carry it.
fn header_values(reply: &Reply, name: &str) -> Vec<String> {
    reply
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect()
}

// ---------------------------------------------------------------------------
// 1. The config gate

#[test]
fn the_config_names_the_first_closed_gate_in_the_products_order() {
    let app = app!();
    // Mapping comes first, even on plans without the widget; then the plan.
    for (plan, domain) in [
        (Plan::Free, "free.example.com"),
        (Plan::Starter, "starter.example.com"),
    ] {
        let tenant = app.tenant(plan);
        let created = app.site(&tenant.token, domain);
        let site = str_of(&created["site"]["id"]);
        let key = str_of(&created["apiKey"]);
        assert_closed(&app, &key, "SITE_NOT_MAPPED");
        app.widget(&tenant.token, &site);
        assert_closed(&app, &key, "SITE_NOT_MAPPED");
        app.set_mapping(&tenant.token, &site, "COMPLETED");
        assert_closed(&app, &key, "FEATURE_LOCKED");
        // Even a published widget stays locked on these plans.
        let reply = app.post_empty(
            &format!("{}/widget/publish", site_path(&site)),
            Some(&tenant.token),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_closed(&app, &key, "FEATURE_LOCKED");
    }

    for plan in [Plan::Pro, Plan::Enterprise] {
        let tenant = app.tenant(plan);
        let t = Some(tenant.token.as_str());
        let created = app.site(&tenant.token, &format!("{plan}.example.com").to_lowercase());
        let site = str_of(&created["site"]["id"]);
        let key = str_of(&created["apiKey"]);
        assert_closed(&app, &key, "SITE_NOT_MAPPED");
        for status in ["IN_PROGRESS", "FAILED"] {
            app.set_mapping(&tenant.token, &site, status);
            assert_closed(&app, &key, "SITE_NOT_MAPPED");
        }
        app.set_mapping(&tenant.token, &site, "COMPLETED");
        assert_closed(&app, &key, "WIDGET_DISABLED");
        let mut widget = widget_body();
        widget["disclaimer"] = json!("Answers may be wrong.");
        widget["supportEmail"] = json!("help@acme.test");
        widget["persona"] = json!("You are Acme's secret helper.");
        widget["position"] = json!("TOP_LEFT");
        let reply = app.put(&format!("{}/widget", site_path(&site)), t, &widget);
        assert_eq!(reply.status, 201, "{}", reply.body);
        assert_closed(&app, &key, "WIDGET_NOT_PUBLISHED");

        let publish = format!("{}/widget/publish", site_path(&site));
        let pause = format!("{}/widget/pause", site_path(&site));
        assert_eq!(app.post_empty(&publish, t).status, 200);
        let public = assert_open(&app, &key);
        let theme = app.get(&site_path(&site), t).body["theme"].clone();
        assert!(theme.is_object(), "{theme}");
        assert_eq!(public["welcomeMessage"], "Hi! How can we help?", "{public}");
        assert_eq!(public["disclaimer"], "Answers may be wrong.", "{public}");
        assert_eq!(public["position"], "TOP_LEFT", "{public}");
        assert_eq!(public["theme"], theme, "{public}");
        assert_eq!(public["identityVerification"], false, "{public}");
        // What only the team may see is not in the public widget.
        let text = public.to_string();
        for hidden in ["supportEmail", "persona", "help@acme.test", "secret helper"] {
            assert!(!text.contains(hidden), "{hidden} shown: {public}");
        }

        assert_eq!(app.post_empty(&pause, t).status, 200);
        assert_closed(&app, &key, "WIDGET_PAUSED");
        assert_eq!(app.post_empty(&publish, t).status, 200);
        assert_open(&app, &key);
    }
}

#[test]
fn a_draft_paused_before_it_was_ever_published_is_still_not_published() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let created = app.site(&tenant.token, "draft.example.com");
    let site = str_of(&created["site"]["id"]);
    let key = str_of(&created["apiKey"]);
    app.set_mapping(&tenant.token, &site, "COMPLETED");
    app.widget(&tenant.token, &site);
    assert_closed(&app, &key, "WIDGET_NOT_PUBLISHED");
    // The API lets a draft be paused (WidgetTransition::Pause applies to
    // any status); it was still never published.
    let reply = app.post_empty(
        &format!("{}/widget/pause", site_path(&site)),
        Some(&tenant.token),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["publishedAt"], Value::Null, "{}", reply.body);
    assert_closed(&app, &key, "WIDGET_NOT_PUBLISHED");
}

#[test]
fn an_unknown_or_missing_key_is_refused() {
    let app = app!();
    let site = app.open_site("shop.example.com");
    config(&app, "cd_live_nosuchkey0000000000000000000000")
        .assert_problem(401, "INVALID_CREDENTIALS");
    // A key is a whole key: its visible prefix is not enough.
    config(&app, &site.key[..12]).assert_problem(401, "INVALID_CREDENTIALS");
    app.sdk("GET", CONFIG, Visitor::default(), None)
        .assert_problem(401, "MISSING_CREDENTIALS");
    open_session(&app, Visitor::default(), &anonymous("a"))
        .assert_problem(401, "MISSING_CREDENTIALS");
    open_session(&app, Visitor::key("cd_live_nope"), &anonymous("a"))
        .assert_problem(401, "INVALID_CREDENTIALS");
    // The real key still works after the misses.
    assert_open(&app, &site.key);
}

#[test]
fn dashboard_changes_show_in_the_very_next_config() {
    let app = app!();
    let site = app.open_site("shop.example.com");
    let t = Some(site.token.as_str());
    // Cached first, so each check below sees the cache's freshness.
    assert_open(&app, &site.key);

    app.set_mapping(&site.token, &site.site_id, "PENDING");
    assert_closed(&app, &site.key, "SITE_NOT_MAPPED");
    app.set_mapping(&site.token, &site.site_id, "COMPLETED");
    assert_open(&app, &site.key);

    let pause = format!("{}/widget/pause", site_path(&site.site_id));
    assert_eq!(app.post_empty(&pause, t).status, 200);
    assert_closed(&app, &site.key, "WIDGET_PAUSED");
    let publish = format!("{}/widget/publish", site_path(&site.site_id));
    assert_eq!(app.post_empty(&publish, t).status, 200);
    assert_open(&app, &site.key);

    let mut widget = widget_body();
    widget["welcomeMessage"] = json!("Hello again, how can we help?");
    widget["position"] = json!("BOTTOM_LEFT");
    let reply = app.put(&format!("{}/widget", site_path(&site.site_id)), t, &widget);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let public = assert_open(&app, &site.key);
    assert_eq!(public["welcomeMessage"], "Hello again, how can we help?");
    assert_eq!(public["position"], "BOTTOM_LEFT");

    let theme = json!({
        "primaryColor": "#112233",
        "backgroundColor": "#fafafa",
        "textColor": "#000000",
        "fontFamily": "Georgia, serif"
    });
    let reply = app.patch(&site_path(&site.site_id), t, &json!({ "theme": theme }));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let public = assert_open(&app, &site.key);
    assert_eq!(public["theme"], reply.body["theme"], "{public}");
    assert_eq!(public["theme"]["fontFamily"], "Georgia, serif", "{public}");

    let reply = app.patch(&site_path(&site.site_id), t, &json!({ "name": "Shop" }));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(assert_open(&app, &site.key)["siteName"], "Shop");
}

#[test]
fn a_plan_change_made_behind_the_api_shows_within_ten_seconds() {
    let app = app!();
    let site = app.open_site("shop.example.com");
    assert_open(&app, &site.key);
    app.set_plan(&site.tenant, Plan::Starter);
    let (body, took, seen) = poll_config(&app, &site.key, BEHIND_THE_API, |b| {
        b["reason"] == "FEATURE_LOCKED"
    });
    assert!(seen, "after {took:?} the config still says {body}");
    app.set_plan(&site.tenant, Plan::Enterprise);
    let (body, took, seen) = poll_config(&app, &site.key, BEHIND_THE_API, |b| b["enabled"] == true);
    assert!(seen, "after {took:?} the config still says {body}");
}

#[test]
fn a_regenerated_key_replaces_the_old_one_at_once() {
    let app = app!();
    let site = app.open_site("shop.example.com");
    publish_flow(&app, &site);
    let old = site.key.clone();
    assert_open(&app, &old);
    let session = app.visit(&old, "visitor-1");
    ask_matching(&app, &old, &session);

    let reply = app.post_empty(
        &format!("{}/api-key", site_path(&site.site_id)),
        Some(&site.token),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let new = str_of(&reply.body["apiKey"]);
    assert_ne!(new, old);

    config(&app, &old).assert_problem(401, "INVALID_CREDENTIALS");
    open_session(&app, Visitor::key(&old), &anonymous("visitor-1"))
        .assert_problem(401, "INVALID_CREDENTIALS");
    app.ask(&old, &session, "How do I export invoices?")
        .assert_problem(401, "INVALID_CREDENTIALS");
    list_messages(&app, &old, &session, "").assert_problem(401, "INVALID_CREDENTIALS");

    assert_open(&app, &new);
    let reply = open_session(&app, Visitor::key(&new), &anonymous("visitor-1"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["sessionId"], session.0.as_str());
    let resumed = (session.0.clone(), str_of(&reply.body["sessionToken"]));
    ask_matching(&app, &new, &resumed);
    assert_eq!(all_messages(&app, &new, &resumed).len(), 4);
}

// ---------------------------------------------------------------------------
// 2. Origins and CORS

fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> Reply {
    app.send(
        "OPTIONS",
        path,
        None,
        None,
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", method),
            (
                "Access-Control-Request-Headers",
                "x-chatdesk-site-key, content-type",
            ),
        ],
    )
}

/// Asserts the answer lets the page at `origin` read it.
#[track_caller]
fn assert_allowed_for(reply: &Reply, origin: &str) {
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some(origin),
        "{origin}: {} {}",
        reply.status,
        reply.body
    );
    assert!(
        header_values(reply, "vary").contains(&"origin".to_string()),
        "{origin}: vary {:?}",
        header_values(reply, "vary")
    );
}

/// Asserts a 403 `ORIGIN_NOT_ALLOWED` the browser may not read.
#[track_caller]
fn assert_refused_origin(reply: &Reply, origin: &str) {
    reply.assert_problem(403, "ORIGIN_NOT_ALLOWED");
    assert_eq!(
        reply.header("access-control-allow-origin"),
        None,
        "{origin}"
    );
}

#[test]
fn browser_calls_must_come_from_the_sites_domain() {
    let app = app!();
    let site = app.open_site("shop.example.com");
    let allowed = [
        "https://shop.example.com",
        "http://shop.example.com",
        "https://shop.example.com:8443",
        "http://shop.example.com:3000",
    ];
    let refused = [
        "https://www.shop.example.com",
        "https://app.shop.example.com",
        "https://example.com",
        "https://other.org",
        "https://evilshop.example.com",
        "https://shop.example.com.evil.io",
        "https://shopexample.com",
        "null",
        "file://",
        "shop.example.com",
    ];
    for origin in allowed {
        let visitor = Visitor::key(&site.key).origin(origin);
        let reply = app.sdk("GET", CONFIG, visitor, None);
        assert_eq!(reply.status, 200, "{origin}: {}", reply.body);
        assert_eq!(reply.body["enabled"], true, "{origin}");
        assert_allowed_for(&reply, origin);
        let reply = open_session(&app, visitor, &anonymous(&new_visitor()));
        assert_eq!(reply.status, 201, "{origin}: {}", reply.body);
        assert_allowed_for(&reply, origin);
    }
    for origin in refused {
        let visitor = Visitor::key(&site.key).origin(origin);
        assert_refused_origin(&app.sdk("GET", CONFIG, visitor, None), origin);
        assert_refused_origin(
            &open_session(&app, visitor, &anonymous(&new_visitor())),
            origin,
        );
    }
    // A call with no Origin (the site's server, curl) is not a browser's.
    let reply = config(&app, &site.key);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("access-control-allow-origin"), None);
}

#[test]
fn subdomains_are_allowed_only_on_sites_that_allow_them() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let reply = app.post(
        "/api/v1/sites",
        Some(&tenant.token),
        &json!({"domain": "docs.example.org", "name": "Docs", "allowSubdomains": true}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["site"]["allowSubdomains"], true);
    let site = str_of(&reply.body["site"]["id"]);
    let key = str_of(&reply.body["apiKey"]);
    app.set_mapping(&tenant.token, &site, "COMPLETED");
    app.widget(&tenant.token, &site);
    let reply = app.post_empty(
        &format!("{}/widget/publish", site_path(&site)),
        Some(&tenant.token),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);

    for origin in [
        "https://docs.example.org",
        "https://app.docs.example.org",
        "https://a.b.docs.example.org:8080",
        "http://eu.docs.example.org",
    ] {
        let visitor = Visitor::key(&key).origin(origin);
        let reply = app.sdk("GET", CONFIG, visitor, None);
        assert_eq!(reply.status, 200, "{origin}: {}", reply.body);
        assert_allowed_for(&reply, origin);
        let reply = open_session(&app, visitor, &anonymous(&new_visitor()));
        assert_eq!(reply.status, 201, "{origin}: {}", reply.body);
        assert_allowed_for(&reply, origin);
        let reply = preflight(&app, SESSIONS, origin, "POST");
        assert_eq!(reply.status, 204, "{origin}: {}", reply.body);
        assert_allowed_for(&reply, origin);
    }
    for origin in [
        "https://xdocs.example.org",
        "https://example.org",
        "https://docs.example.org.evil.io",
        "https://app-docs.example.org",
    ] {
        let visitor = Visitor::key(&key).origin(origin);
        assert_refused_origin(&app.sdk("GET", CONFIG, visitor, None), origin);
        assert_refused_origin(
            &open_session(&app, visitor, &anonymous(&new_visitor())),
            origin,
        );
    }
}

#[test]
fn the_sdk_preflight_is_answered_for_sites_origins_only() {
    let app = app!();
    let site = app.open_site("shop.example.com");
    let session = app.visit(&site.key, "visitor-1");
    for (path, method) in [
        (CONFIG.to_string(), "GET"),
        (SESSIONS.to_string(), "POST"),
        (messages_path(&session.0), "POST"),
        (feedback_path(&session.0), "PUT"),
    ] {
        for origin in ["https://shop.example.com", "http://shop.example.com:8080"] {
            let reply = preflight(&app, &path, origin, method);
            assert_eq!(reply.status, 204, "{path} {origin}: {}", reply.body);
            assert_allowed_for(&reply, origin);
            let methods = reply.header("access-control-allow-methods").unwrap_or("");
            assert!(
                methods.contains(method),
                "{path}: allow-methods {methods:?}"
            );
            let headers = header_values(&reply, "access-control-allow-headers");
            for needed in ["x-chatdesk-site-key", "x-chatdesk-session", "content-type"] {
                assert!(
                    headers.contains(&needed.to_string()),
                    "{path}: allow-headers {headers:?}"
                );
            }
            let max_age = reply.header("access-control-max-age").unwrap_or("");
            assert!(
                max_age.parse::<u32>().is_ok_and(|s| s > 0),
                "{path}: max-age {max_age:?}"
            );
        }
        for origin in [
            "https://unknown.example.net",
            "https://evilshop.example.com",
            "https://www.shop.example.com",
            "null",
        ] {
            let reply = preflight(&app, &path, origin, method);
            assert_refused_origin(&reply, origin);
            for name in [
                "access-control-allow-methods",
                "access-control-allow-headers",
                "access-control-max-age",
            ] {
                assert_eq!(reply.header(name), None, "{path} {origin}: {name}");
            }
        }
    }
}

#[test]
fn the_sdk_and_the_dashboard_keep_their_own_origins() {
    const DASHBOARD: &str = "https://dash.example.com";
    let Some(app) = TestApp::try_spawn_with(|c| c.dashboard_origins = vec![DASHBOARD.into()])
    else {
        return;
    };
    let site = app.open_site("shop.example.com");
    let origin = site.origin();

    // The dashboard's origin is no site's domain: the SDK refuses it.
    let reply = preflight(&app, SESSIONS, DASHBOARD, "POST");
    assert_refused_origin(&reply, DASHBOARD);
    assert_eq!(reply.header("access-control-allow-methods"), None);
    let visitor = Visitor::key(&site.key).origin(DASHBOARD);
    assert_refused_origin(&app.sdk("GET", CONFIG, visitor, None), DASHBOARD);

    // A site's origin is not the dashboard's: the dashboard API refuses it.
    let reply = app.send(
        "OPTIONS",
        "/api/v1/sites",
        None,
        None,
        &[
            ("Origin", origin.as_str()),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization, content-type",
            ),
        ],
    );
    assert_eq!(reply.header("access-control-allow-origin"), None);
    reply.assert_problem(403, "ORIGIN_NOT_ALLOWED");
    let reply = app.send(
        "GET",
        "/api/v1/me",
        Some(&site.token),
        None,
        &[("Origin", origin.as_str())],
    );
    assert_eq!(reply.header("access-control-allow-origin"), None);

    // Each still answers its own origin.
    let reply = preflight(&app, SESSIONS, &origin, "POST");
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_allowed_for(&reply, &origin);
    let reply = app.send(
        "GET",
        "/api/v1/me",
        Some(&site.token),
        None,
        &[("Origin", DASHBOARD)],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("access-control-allow-origin"), Some(DASHBOARD));
}

#[test]
fn errors_to_an_allowed_origin_are_readable_with_their_retry_after() {
    let app = app!();
    let site = app.open_site("shop.example.com");
    let origin = site.origin();
    let mut widget = widget_body();
    widget["rateLimitPerSession"] = json!(1);
    let reply = app.put(
        &format!("{}/widget", site_path(&site.site_id)),
        Some(&site.token),
        &widget,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);

    let session = app.visit(&site.key, "visitor-1");
    let ask = |question: &str| {
        app.sdk(
            "POST",
            &messages_path(&session.0),
            Visitor::key(&site.key).session(&session.1).origin(&origin),
            Some(&json!({ "content": question })),
        )
    };
    let reply = ask("Where are my invoices?");
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_allowed_for(&reply, &origin);
    let reply = ask("And my receipts?");
    reply.assert_problem(429, "RATE_LIMITED");
    assert_allowed_for(&reply, &origin);
    let retry_after = reply.header("retry-after").unwrap_or("");
    assert!(
        retry_after.parse::<u64>().is_ok_and(|s| s >= 1),
        "retry-after {retry_after:?}"
    );
    let exposed = header_values(&reply, "access-control-expose-headers");
    assert!(
        exposed.contains(&"retry-after".to_string()),
        "expose-headers {exposed:?}"
    );

    // 401s too: a missing session token, and an unknown key.
    let reply = app.sdk(
        "GET",
        &messages_path(&session.0),
        Visitor::key(&site.key).origin(&origin),
        None,
    );
    reply.assert_problem(401, "SESSION_TOKEN_REQUIRED");
    assert_allowed_for(&reply, &origin);
    let reply = app.sdk(
        "GET",
        CONFIG,
        Visitor::key("cd_live_unknown").origin(&origin),
        None,
    );
    reply.assert_problem(401, "INVALID_CREDENTIALS");
    assert_allowed_for(&reply, &origin);
    // And a closed gate.
    app.set_mapping(&site.token, &site.site_id, "PENDING");
    let reply = open_session(
        &app,
        Visitor::key(&site.key).origin(&origin),
        &anonymous("visitor-2"),
    );
    reply.assert_problem(403, "SITE_NOT_MAPPED");
    assert_allowed_for(&reply, &origin);
}

// ---------------------------------------------------------------------------
// 3. The body limit

#[test]
fn sdk_bodies_over_64_kib_are_refused() {
    let app = app!();
    let site = app.open_site("shop.example.com");
    let headers = [("X-Chatdesk-Site-Key", site.key.as_str())];
    let body = json!({ "anonymousId": "x".repeat(65 * 1024) }).to_string();
    assert!(body.len() > 65 * 1024);
    let reply = app.send("POST", SESSIONS, None, Some(&body), &headers);
    reply.assert_problem(413, "PAYLOAD_TOO_LARGE");
    let detail = str_of(&reply.body["detail"]);
    assert!(detail.contains("64 KiB"), "{detail}");

    // Just under the limit, the body is read and judged on its fields.
    let body = json!({ "anonymousId": "x".repeat(63 * 1024) }).to_string();
    let reply = app.send("POST", SESSIONS, None, Some(&body), &headers);
    assert_ne!(reply.status, 413, "{}", reply.body);
    reply.assert_invalid(&["anonymousId"]);

    let session = app.visit(&site.key, "visitor-1");
    let body = json!({ "content": "q".repeat(63 * 1024) }).to_string();
    let reply = app.send(
        "POST",
        &messages_path(&session.0),
        None,
        Some(&body),
        &[
            ("X-Chatdesk-Site-Key", site.key.as_str()),
            ("X-Chatdesk-Session", session.1.as_str()),
        ],
    );
    assert_ne!(reply.status, 413, "{}", reply.body);
    reply.assert_invalid(&["content"]);
    let body = json!({ "content": "q".repeat(65 * 1024) }).to_string();
    let reply = app.send(
        "POST",
        &messages_path(&session.0),
        None,
        Some(&body),
        &[
            ("X-Chatdesk-Site-Key", site.key.as_str()),
            ("X-Chatdesk-Session", session.1.as_str()),
        ],
    );
    reply.assert_problem(413, "PAYLOAD_TOO_LARGE");
    // Nothing was recorded.
    assert!(all_messages(&app, &site.key, &session).is_empty());
}

// ---------------------------------------------------------------------------
// 4. Sessions and identities

#[test]
fn a_visitor_resumes_their_session_with_a_new_token_each_time() {
    let app = app!();
    let site = app.open_site("shop.example.com");
    publish_flow(&app, &site);
    let mut widget = widget_body();
    widget["welcomeMessage"] = json!("Welcome to the shop!");
    widget["disclaimer"] = json!("Answers may be wrong.");
    let reply = app.put(
        &format!("{}/widget", site_path(&site.site_id)),
        Some(&site.token),
        &widget,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);

    let first = open_session(&app, Visitor::key(&site.key), &anonymous("visitor-1"));
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["welcomeMessage"], "Welcome to the shop!");
    assert_eq!(first.body["disclaimer"], "Answers may be wrong.");
    let session_id = str_of(&first.body["sessionId"]);
    assert!(uuid::Uuid::parse_str(&session_id).is_ok(), "{}", first.body);

    let again = open_session(&app, Visitor::key(&site.key), &anonymous("visitor-1"));
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["sessionId"], session_id.as_str());
    assert_eq!(again.body["welcomeMessage"], "Welcome to the shop!");
    let (t1, t2) = (
        str_of(&first.body["sessionToken"]),
        str_of(&again.body["sessionToken"]),
    );
    assert!(!t1.is_empty() && !t2.is_empty());
    assert_ne!(t1, t2);
    // Both tokens work, on the one conversation.
    ask_matching(&app, &site.key, &(session_id.clone(), t1.clone()));
    ask_matching(&app, &site.key, &(session_id.clone(), t2.clone()));
    let by_first = all_messages(&app, &site.key, &(session_id.clone(), t1));
    let by_second = all_messages(&app, &site.key, &(session_id.clone(), t2));
    assert_eq!(by_first.len(), 4);
    assert_eq!(by_first, by_second);

    // Another visitor has another session.
    let other = open_session(&app, Visitor::key(&site.key), &anonymous("visitor-2"));
    assert_eq!(other.status, 201, "{}", other.body);
    assert_ne!(other.body["sessionId"], session_id.as_str());
}

#[test]
fn concurrent_first_calls_of_one_visitor_open_one_session() {
    let app = app!();
    let site = app.open_site("shop.example.com");
    let visitor = new_visitor();
    const CALLS: usize = 16;
    let start = Barrier::new(CALLS);
    let replies: Vec<(u16, Value)> = thread::scope(|s| {
        let handles: Vec<_> = (0..CALLS)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let reply = open_session(&app, Visitor::key(&site.key), &anonymous(&visitor));
                    (reply.status, reply.body)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("request thread"))
            .collect()
    });
    let created = replies.iter().filter(|(status, _)| *status == 201).count();
    let resumed = replies.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!((created, resumed), (1, CALLS - 1), "{replies:?}");
    let ids: HashSet<String> = replies
        .iter()
        .map(|(_, b)| str_of(&b["sessionId"]))
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let tokens: HashSet<String> = replies
        .iter()
        .map(|(_, b)| str_of(&b["sessionToken"]))
        .collect();
    assert_eq!(tokens.len(), CALLS, "each call has its own token");
    // Every token opens the one session.
    let id = ids.into_iter().next().unwrap_or_default();
    for token in tokens {
        let reply = list_messages(&app, &site.key, &(id.clone(), token), "");
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
}

#[test]
fn identified_visitors_are_taken_as_given_without_verification() {
    let app = app!();
    let site = app.open_site("shop.example.com");
    let reply = open_session(
        &app,
        Visitor::key(&site.key),
        &json!({
            "anonymousId": "visitor-1",
            "externalId": "user-42",
            "traits": {"email": "ada@example.com", "plan": "pro", "seats": 3}
        }),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    // A userHash is not needed, and is ignored when the site does not verify.
    let reply = open_session(
        &app,
        Visitor::key(&site.key),
        &json!({"anonymousId": "visitor-2", "externalId": "user-43", "userHash": "00ff"}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(assert_open(&app, &site.key)["identityVerification"], false);
}

#[test]
fn a_verifying_site_needs_the_signed_external_id() {
    let app = app!();
    let site = app.open_site("shop.example.com");
    assert_open(&app, &site.key);
    let reply = app.post_empty(
        &format!("{}/identity-secret", site_path(&site.site_id)),
        Some(&site.token),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let secret = str_of(&reply.body["identitySecret"]);
    assert!(!secret.is_empty(), "{}", reply.body);
    assert_eq!(assert_open(&app, &site.key)["identityVerification"], true);

    let key = Visitor::key(&site.key);
    let signed = user_hash(&secret, "user-42");
    let reply = open_session(
        &app,
        key,
        &json!({"anonymousId": "visitor-1", "externalId": "user-42", "userHash": signed,
                "traits": {"email": "ada@example.com"}}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    // Upper-case hex is the same hash.
    let reply = open_session(
        &app,
        key,
        &json!({"anonymousId": "visitor-1", "externalId": "user-42",
                "userHash": signed.to_uppercase()}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);

    let refused = [
        json!({"anonymousId": "visitor-2", "externalId": "user-43"}),
        json!({"anonymousId": "visitor-2", "externalId": "user-43", "userHash": signed}),
        json!({"anonymousId": "visitor-2", "externalId": "user-43",
               "userHash": user_hash("not the secret", "user-43")}),
        json!({"anonymousId": "visitor-2", "externalId": "user-43", "userHash": ""}),
    ];
    for body in refused {
        open_session(&app, key, &body).assert_problem(401, "IDENTITY_NOT_VERIFIED");
    }
    // Anonymous visitors need no signature.
    let reply = open_session(&app, key, &anonymous("visitor-3"));
    assert_eq!(reply.status, 201, "{}", reply.body);

    // A new secret replaces the old one at once.
    let reply = app.post_empty(
        &format!("{}/identity-secret", site_path(&site.site_id)),
        Some(&site.token),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let renewed = str_of(&reply.body["identitySecret"]);
    open_session(
        &app,
        key,
        &json!({"anonymousId": "visitor-4", "externalId": "user-42", "userHash": signed}),
    )
    .assert_problem(401, "IDENTITY_NOT_VERIFIED");
    let reply = open_session(
        &app,
        key,
        &json!({"anonymousId": "visitor-4", "externalId": "user-42",
                "userHash": user_hash(&renewed, "user-42")}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
}

#[test]
fn invalid_session_bodies_name_the_field() {
    let app = app!();
    let site = app.open_site("shop.example.com");
    let key = Visitor::key(&site.key);
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "anonymousId"),
        (json!({"anonymousId": ""}), "anonymousId"),
        (json!({"anonymousId": "a".repeat(201)}), "anonymousId"),
        (json!({"anonymousId": "a\u{7}b"}), "anonymousId"),
        (json!({"anonymousId": 42}), "anonymousId"),
        (json!({"anonymousId": "a", "externalId": ""}), "externalId"),
        (
            json!({"anonymousId": "a", "externalId": "e".repeat(201)}),
            "externalId",
        ),
        (json!({"anonymousId": "a", "traits": "vip"}), "traits"),
        (json!({"anonymousId": "a", "traits": [1, 2]}), "traits"),
        (json!({"anonymousId": "a", "userHash": "00"}), "userHash"),
        (json!({"anonymousId": "a", "visitorId": "b"}), "visitorId"),
    ];
    for (body, field) in cases {
        let reply = open_session(&app, key, &body);
        assert_eq!(reply.status, 422, "{body}: {}", reply.body);
        reply.assert_invalid(&[field]);
    }
    // Too many traits.
    let traits: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), json!(i))).collect();
    open_session(&app, key, &json!({"anonymousId": "a", "traits": traits}))
        .assert_invalid(&["traits"]);
    // The bounds are inclusive.
    let reply = open_session(&app, key, &anonymous(&"a".repeat(200)));
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = open_session(
        &app,
        key,
        &json!({"anonymousId": "b", "traits": null, "externalId": "e".repeat(200)}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);

    for malformed in ["{", "{\"anonymousId\": }", "not json"] {
        app.send(
            "POST",
            SESSIONS,
            None,
            Some(malformed),
            &[("X-Chatdesk-Site-Key", site.key.as_str())],
        )
        .assert_problem(400, "MALFORMED_JSON");
    }
}

#[test]
fn a_closed_gate_opens_no_session_and_answers_no_question() {
    let app = app!();
    let site = app.open_site("shop.example.com");
    publish_flow(&app, &site);
    let session = app.visit(&site.key, "visitor-1");
    let pause = format!("{}/widget/pause", site_path(&site.site_id));
    assert_eq!(app.post_empty(&pause, Some(&site.token)).status, 200);
    open_session(&app, Visitor::key(&site.key), &anonymous("visitor-1"))
        .assert_problem(403, "WIDGET_PAUSED");
    open_session(&app, Visitor::key(&site.key), &anonymous("visitor-2"))
        .assert_problem(403, "WIDGET_PAUSED");
    app.ask(&site.key, &session, "How do I export invoices?")
        .assert_problem(403, "WIDGET_PAUSED");
    // The conversation so far stays readable.
    let reply = list_messages(&app, &site.key, &session, "");
    assert_eq!(reply.status, 200, "{}", reply.body);

    let tenant = app.tenant(Plan::Pro);
    let created = app.site(&tenant.token, "unmapped.example.com");
    let key = str_of(&created["apiKey"]);
    open_session(&app, Visitor::key(&key), &anonymous("visitor-1"))
        .assert_problem(403, "SITE_NOT_MAPPED");
    app.set_mapping(&tenant.token, &str_of(&created["site"]["id"]), "COMPLETED");
    open_session(&app, Visitor::key(&key), &anonymous("visitor-1"))
        .assert_problem(403, "WIDGET_DISABLED");
}

// ---------------------------------------------------------------------------
// 5. Session tokens

#[test]
fn a_session_is_reached_only_with_its_own_token_and_sites_key() {
    let app = app!();
    let site = app.open_site("shop.example.com");
    let other_site = app.open_site("other.example.net");
    publish_flow(&app, &site);
    publish_flow(&app, &other_site);
    let mine = app.visit(&site.key, "visitor-1");
    let theirs = app.visit(&site.key, "visitor-2");
    let elsewhere = app.visit(&other_site.key, "visitor-1");
    let (_, my_answer) = ask_matching(&app, &site.key, &mine);
    let (_, their_answer) = ask_matching(&app, &site.key, &theirs);
    let (_, elsewhere_answer) = ask_matching(&app, &other_site.key, &elsewhere);
    let question = json!({"content": "How do I export invoices?"});
    let vote = json!({"vote": "UP"});

    // No token.
    let key = Visitor::key(&site.key);
    app.sdk("GET", &messages_path(&mine.0), key, None)
        .assert_problem(401, "SESSION_TOKEN_REQUIRED");
    app.sdk("POST", &messages_path(&mine.0), key, Some(&question))
        .assert_problem(401, "SESSION_TOKEN_REQUIRED");
    app.sdk("PUT", &feedback_path(&my_answer), key, Some(&vote))
        .assert_problem(401, "SESSION_TOKEN_REQUIRED");
    app.sdk("GET", &messages_path(&mine.0), key.session("  "), None)
        .assert_problem(401, "SESSION_TOKEN_REQUIRED");

    // (key, session id in the path, token, message voted on): all 404.
    let refused: Vec<(&str, &str, &str, &str)> = vec![
        // Another session's token on the same site.
        (
            site.key.as_str(),
            mine.0.as_str(),
            theirs.1.as_str(),
            my_answer.as_str(),
        ),
        // The other site's session with its token, under this site's key.
        (
            site.key.as_str(),
            elsewhere.0.as_str(),
            elsewhere.1.as_str(),
            elsewhere_answer.as_str(),
        ),
        // This site's session and token, under the other site's key.
        (
            other_site.key.as_str(),
            mine.0.as_str(),
            mine.1.as_str(),
            my_answer.as_str(),
        ),
        // A token that is no session's.
        (
            site.key.as_str(),
            mine.0.as_str(),
            "cd_sess_nosuchtoken",
            my_answer.as_str(),
        ),
        // A session id that is not a UUID.
        (
            site.key.as_str(),
            "not-a-uuid",
            mine.1.as_str(),
            "not-a-uuid",
        ),
        (site.key.as_str(), "123", mine.1.as_str(), "123"),
    ];
    for (key, session, token, message) in refused {
        let visitor = Visitor::key(key).session(token);
        let what = format!("{session} with {token}");
        let reply = app.sdk("GET", &messages_path(session), visitor, None);
        assert_eq!(reply.status, 404, "GET {what}: {}", reply.body);
        reply.assert_problem(404, "NOT_FOUND");
        let reply = app.sdk("POST", &messages_path(session), visitor, Some(&question));
        assert_eq!(reply.status, 404, "POST {what}: {}", reply.body);
        reply.assert_problem(404, "NOT_FOUND");
        let reply = app.sdk("PUT", &feedback_path(message), visitor, Some(&vote));
        assert_eq!(reply.status, 404, "PUT vote {what}: {}", reply.body);
        reply.assert_problem(404, "NOT_FOUND");
    }
    // Their session's message, voted on with my token.
    app.vote(&site.key, &mine.1, &their_answer, "UP")
        .assert_problem(404, "NOT_FOUND");

    // Nothing was added or voted by the refused calls.
    for (key, session) in [
        (&site.key, &mine),
        (&site.key, &theirs),
        (&other_site.key, &elsewhere),
    ] {
        let messages = all_messages(&app, key, session);
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages.iter().all(|m| m["feedback"].is_null()),
            "{messages:?}"
        );
    }
}

#[test]
fn messages_are_listed_oldest_first_with_votes_and_paged_without_gaps() {
    let app = app!();
    let site = app.open_site("shop.example.com");
    publish_flow(&app, &site);
    let session = app.visit(&site.key, "visitor-1");
    let mut asked = Vec::new();
    for _ in 0..4 {
        asked.push(ask_matching(&app, &site.key, &session));
    }
    let voted = [(&asked[0].1, "UP"), (&asked[2].1, "DOWN")];
    for (message, vote) in voted {
        assert_eq!(app.vote(&site.key, &session.1, message, vote).status, 200);
    }

    let all = all_messages(&app, &site.key, &session);
    let ids: Vec<String> = all.iter().map(|m| str_of(&m["id"])).collect();
    let expected: Vec<String> = asked
        .iter()
        .flat_map(|(user, assistant)| [user.clone(), assistant.clone()])
        .collect();
    assert_eq!(
        ids, expected,
        "oldest first, each question before its answer"
    );
    let stamps: Vec<String> = all.iter().map(|m| str_of(&m["createdAt"])).collect();
    let times: Vec<chrono::DateTime<chrono::Utc>> = stamps
        .iter()
        .map(|s| s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
    for m in &all {
        let id = str_of(&m["id"]);
        let expected_vote = voted
            .iter()
            .find(|(message, _)| **message == id)
            .map_or(Value::Null, |(_, vote)| json!(vote));
        assert_eq!(m["feedback"], expected_vote, "{m}");
        for field in ["role", "status", "content", "createdAt"] {
            assert!(m.get(field).is_some(), "{field}: {m}");
        }
    }

    for limit in [1, 3, 7, 8] {
        let mut paged = Vec::new();
        let mut query = format!("?limit={limit}");
        for _ in 0..20 {
            let reply = list_messages(&app, &site.key, &session, &query);
            assert_eq!(reply.status, 200, "{}", reply.body);
            let items = reply.body["items"].as_array().cloned().unwrap_or_default();
            assert!(items.len() <= limit, "limit {limit}: {}", reply.body);
            paged.extend(items);
            match reply.body["nextCursor"].as_str() {
                Some(cursor) => query = format!("?limit={limit}&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(paged, all, "limit {limit}");
    }
    // A bad page size is refused.
    for query in ["?limit=0", "?limit=101"] {
        let reply = list_messages(&app, &site.key, &session, query);
        assert_eq!(reply.status, 422, "{query}: {}", reply.body);
    }
}

// ---------------------------------------------------------------------------
// 6. Votes

#[test]
fn votes_on_an_answer_offer_a_ticket_after_a_thumbs_down() {
    let app = app!();
    let site = app.open_site("shop.example.com");
    publish_flow(&app, &site);
    let session = app.visit(&site.key, "visitor-1");
    let (question, answer) = ask_matching(&app, &site.key, &session);

    let reply = app.vote(&site.key, &session.1, &answer, "UP");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body, json!({"vote": "UP", "followUp": []}));
    let feedback_of = |id: &str| {
        all_messages(&app, &site.key, &session)
            .into_iter()
            .find(|m| m["id"] == id)
            .map(|m| m["feedback"].clone())
    };
    assert_eq!(feedback_of(&answer), Some(json!("UP")));

    let reply = app.vote(&site.key, &session.1, &answer, "DOWN");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["vote"], "DOWN");
    let follow_up = reply.body["followUp"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(follow_up.contains(&json!("OPEN_TICKET")), "{}", reply.body);
    assert_eq!(feedback_of(&answer), Some(json!("DOWN")));

    let reply = app.vote(&site.key, &session.1, &answer, "UP");
    assert_eq!(reply.body, json!({"vote": "UP", "followUp": []}));
    assert_eq!(feedback_of(&answer), Some(json!("UP")));

    // Not on the visitor's own question.
    let reply = app.vote(&site.key, &session.1, &question, "UP");
    reply.assert_problem(422, "NOT_AN_ASSISTANT_MESSAGE");
    assert_eq!(
        reply.body["errors"][0]["field"], "messageId",
        "{}",
        reply.body
    );
    assert_eq!(feedback_of(&question), Some(Value::Null));

    // Not a vote.
    for bad in [json!("SIDEWAYS"), json!("up"), json!(""), json!(1)] {
        let reply = app.sdk(
            "PUT",
            &feedback_path(&answer),
            Visitor::key(&site.key).session(&session.1),
            Some(&json!({ "vote": bad })),
        );
        reply.assert_invalid(&["vote"]);
    }
    let reply = app.sdk(
        "PUT",
        &feedback_path(&answer),
        Visitor::key(&site.key).session(&session.1),
        Some(&json!({})),
    );
    reply.assert_invalid(&["vote"]);
    assert_eq!(feedback_of(&answer), Some(json!("UP")));

    // A message that does not exist, and another session's message.
    app.vote(
        &site.key,
        &session.1,
        &uuid::Uuid::now_v7().to_string(),
        "UP",
    )
    .assert_problem(404, "NOT_FOUND");
    let other = app.visit(&site.key, "visitor-2");
    let (_, other_answer) = ask_matching(&app, &site.key, &other);
    app.vote(&site.key, &session.1, &other_answer, "DOWN")
        .assert_problem(404, "NOT_FOUND");
    app.vote(&site.key, &other.1, &answer, "DOWN")
        .assert_problem(404, "NOT_FOUND");
    assert_eq!(feedback_of(&answer), Some(json!("UP")));
}

/// The session's vote counters as stored (what the Conversations list
/// filters on).
fn stored_vote_counts(app: &TestApp, session: &str) -> (i32, i32) {
    use chatdesk_store::schema::chat_sessions;
    use diesel::prelude::*;
    let mut conn = chatdesk_store::connect(&app.config.database_url).expect("database");
    chat_sessions::table
        .filter(chat_sessions::id.eq(session))
        .select((chat_sessions::up_votes, chat_sessions::down_votes))
        .get_result(&mut conn)
        .expect("the session's row")
}

#[test]
fn concurrent_votes_keep_the_sessions_counters_exact() {
    let app = app!();
    let site = app.open_site("shop.example.com");
    publish_flow(&app, &site);
    let session = app.visit(&site.key, "visitor-1");
    let answers: Vec<String> = (0..3)
        .map(|_| ask_matching(&app, &site.key, &session).1)
        .collect();
    for round in 0..3 {
        const VOTES: usize = 24;
        // Random UP/DOWN, from a random UUID's bits.
        let bits = uuid::Uuid::new_v4().as_u128();
        let votes: Vec<&str> = (0..VOTES)
            .map(|i| if (bits >> i) & 1 == 1 { "UP" } else { "DOWN" })
            .collect();
        let results = app.in_parallel(VOTES, |i| {
            app.vote(&site.key, &session.1, &answers[i % answers.len()], votes[i])
        });
        assert!(
            results.iter().all(|(status, _)| *status == 200),
            "round {round}: {results:?}"
        );
        let messages = all_messages(&app, &site.key, &session);
        let finals: Vec<Value> = answers
            .iter()
            .map(|a| {
                messages
                    .iter()
                    .find(|m| m["id"] == a.as_str())
                    .map_or(Value::Null, |m| m["feedback"].clone())
            })
            .collect();
        for (i, vote) in finals.iter().enumerate() {
            let sent: Vec<&str> = (i..VOTES)
                .step_by(answers.len())
                .map(|j| votes[j])
                .collect();
            assert!(
                vote.as_str().is_some_and(|v| sent.contains(&v)),
                "round {round}: message {i} shows {vote}, sent {sent:?}"
            );
        }
        let ups = finals.iter().filter(|v| *v == "UP").count();
        let downs = finals.iter().filter(|v| *v == "DOWN").count();
        let (up_votes, down_votes) = stored_vote_counts(&app, &session.0);
        assert_eq!(
            (up_votes, down_votes),
            (
                i32::try_from(ups).unwrap_or(-1),
                i32::try_from(downs).unwrap_or(-1)
            ),
            "round {round}: stored counters vs the votes shown {finals:?}"
        );
    }
}

/// A shared browser: the anonymousId stays in localStorage while people
/// sign in and out. An identified visitor's conversation is resumed only
/// for that same visitor; anyone else gets 409 IDENTITY_CONFLICT and
/// neither sees nor changes it.
#[test]
fn an_identified_visitor_is_resumed_only_by_themselves() {
    let app = app!();
    let site = app.open_site("shared.example.com");
    publish_flow(&app, &site);
    let reply = app.post_empty(
        &format!("{}/identity-secret", site_path(&site.site_id)),
        Some(&site.token),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let secret = str_of(&reply.body["identitySecret"]);
    let browser = new_visitor();
    let signed_in = |external_id: &str, email: &str| {
        json!({
            "anonymousId": browser,
            "externalId": external_id,
            "userHash": user_hash(&secret, external_id),
            "traits": { "email": email }
        })
    };

    // Anonymous first, then Alice signs in: her conversation goes on.
    let first = open_session(&app, Visitor::key(&site.key), &anonymous(&browser));
    assert_eq!(first.status, 201, "{}", first.body);
    let alice = open_session(
        &app,
        Visitor::key(&site.key),
        &signed_in("alice", "alice@example.com"),
    );
    assert_eq!(alice.status, 200, "{}", alice.body);
    assert_eq!(alice.body["sessionId"], first.body["sessionId"]);
    let session = (
        str_of(&alice.body["sessionId"]),
        str_of(&alice.body["sessionToken"]),
    );
    ask_matching(&app, &site.key, &session);

    // Bob signs in on the same browser; then someone without an identity.
    for body in [
        signed_in("bob", "bob@example.com"),
        anonymous(&browser),
        json!({ "anonymousId": browser, "traits": { "email": "attacker@example.com" } }),
    ] {
        let reply = open_session(&app, Visitor::key(&site.key), &body);
        reply.assert_problem(409, "IDENTITY_CONFLICT");
        assert!(reply.body.get("sessionToken").is_none(), "{}", reply.body);
    }

    // Alice still has her conversation and her identity.
    let again = open_session(
        &app,
        Visitor::key(&site.key),
        &signed_in("alice", "alice@example.com"),
    );
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["sessionId"], session.0.as_str());
    assert_eq!(all_messages(&app, &site.key, &session).len(), 2);
    use chatdesk_store::schema::end_users;
    use diesel::prelude::*;
    let mut conn = chatdesk_store::connect(&app.config.database_url).unwrap();
    let (external_id, verified, traits): (Option<String>, bool, String) = end_users::table
        .filter(end_users::anonymous_id.eq(&browser))
        .select((
            end_users::external_id,
            end_users::verified,
            end_users::traits,
        ))
        .first(&mut conn)
        .unwrap();
    assert_eq!(external_id.as_deref(), Some("alice"));
    assert!(verified);
    assert!(traits.contains("alice@example.com"), "{traits}");

    // Bob on a browser of his own is a visitor of his own.
    let bob = open_session(
        &app,
        Visitor::key(&site.key),
        &json!({
            "anonymousId": new_visitor(),
            "externalId": "bob",
            "userHash": user_hash(&secret, "bob"),
        }),
    );
    assert_eq!(bob.status, 201, "{}", bob.body);
    assert_ne!(bob.body["sessionId"], session.0.as_str());
}

/// Once the key's site is known, a page on another domain gets 403
/// ORIGIN_NOT_ALLOWED whatever it sends: the origin is checked before the
/// body is read, and the answer carries no CORS headers.
#[test]
fn a_foreign_origin_is_refused_before_its_body_is_read() {
    let app = app!();
    let site = app.open_site("first.example.com");
    publish_flow(&app, &site);
    let session = app.visit(&site.key, &new_visitor());
    let (_, answer) = ask_matching(&app, &site.key, &session);
    assert_eq!(config(&app, &site.key).status, 200, "the key is cached");
    let evil = Visitor::key(&site.key)
        .session(&session.1)
        .origin("https://evil.example.net");
    let bad_bodies = [
        ("PUT", feedback_path(&answer), json!({ "vote": 1 })),
        (
            "PUT",
            feedback_path(&answer),
            json!({ "vote": "UP", "extra": true }),
        ),
        ("POST", messages_path(&session.0), json!({ "content": "" })),
        ("POST", SESSIONS.to_string(), json!({ "anonymousId": 7 })),
    ];
    for (method, path, body) in bad_bodies {
        // The key must be in the cache when the request arrives; on
        // PostgreSQL the config watcher may drop it (a change notified by
        // the set-up) between the warming call and the request, and then
        // the body is read first. Warm it again and retry, a bounded number
        // of times: a request that never meets a cached key fails.
        let mut reply = app.sdk(method, &path, evil, Some(&body));
        for _ in 0..20 {
            if reply.status == 403 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            assert_eq!(config(&app, &site.key).status, 200);
            reply = app.sdk(method, &path, evil, Some(&body));
        }
        reply.assert_problem(403, "ORIGIN_NOT_ALLOWED");
        assert!(
            reply.header("access-control-allow-origin").is_none(),
            "{method} {path}: {:?}",
            reply.headers
        );
    }
    // The vote did not change.
    let messages = all_messages(&app, &site.key, &session);
    assert_eq!(messages[1]["feedback"], Value::Null);
}
