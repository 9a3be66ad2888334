//! The widget Builder: `GET/PUT /sites/{siteId}/widget`, publish and pause.

use chatdesk_domain::tenant::Plan;
use serde_json::{json, Value};

use crate::app;
use crate::helpers::{at_micros, micros, widget_body, TestApp};

fn path(site: &str) -> String {
    format!("/api/v1/sites/{site}/widget")
}

fn full_body() -> Value {
    json!({
        "welcomeMessage": "Welcome to Acme support",
        "disclaimer": "Answers may be wrong.",
        "position": "TOP_LEFT",
        "supportEmail": "Help@Acme.test",
        "persona": "You are Acme's friendly helper.",
        "insufficientCreditsMessage": "We are out of answers today.",
        "rateLimitPerSession": 42
    })
}

fn with(field: &str, value: Value) -> Value {
    let mut body = widget_body();
    body[field] = value;
    body
}

fn site_theme(app: &TestApp, token: &str, site: &str) -> Value {
    app.get(&format!("/api/v1/sites/{site}"), Some(token)).body["theme"].clone()
}

#[test]
fn a_site_has_no_widget_until_one_is_saved() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "example.com");
    app.get(&path(&site), Some(&tenant.token))
        .assert_problem(404, "NOT_FOUND");
}

#[test]
fn put_creates_a_draft_with_defaults_and_the_site_theme() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "example.com");
    let reply = app.put(&path(&site), Some(&tenant.token), &widget_body());
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.content_type, "application/json");
    let w = &reply.body;
    for key in [
        "id",
        "siteId",
        "status",
        "publishedAt",
        "welcomeMessage",
        "disclaimer",
        "position",
        "supportEmail",
        "persona",
        "insufficientCreditsMessage",
        "rateLimitPerSession",
        "updatedAt",
    ] {
        assert!(w.get(key).is_some(), "widget.{key} missing: {w}");
    }
    assert!(uuid::Uuid::parse_str(w["id"].as_str().unwrap()).is_ok());
    assert_eq!(w["siteId"], site.as_str());
    assert_eq!(w["status"], "DRAFT");
    assert_eq!(w["publishedAt"], Value::Null);
    assert_eq!(w["welcomeMessage"], "Hi! How can we help?");
    assert_eq!(w["position"], "BOTTOM_RIGHT");
    assert_eq!(w["disclaimer"], Value::Null);
    assert_eq!(w["supportEmail"], Value::Null);
    assert_eq!(w["persona"], Value::Null);
    assert_eq!(w["rateLimitPerSession"], 20);
    let default_message = w["insufficientCreditsMessage"].as_str().unwrap();
    assert!(!default_message.trim().is_empty());
    assert_eq!(w["theme"], site_theme(&app, &tenant.token, &site));

    let got = app.get(&path(&site), Some(&tenant.token));
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(at_micros(&got.body), at_micros(w));
}

#[test]
fn put_again_updates_and_keeps_id_and_status() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.mapped_site(&tenant.token, "example.com");
    let t = Some(tenant.token.as_str());
    let created = app.put(&path(&site), t, &widget_body());
    assert_eq!(created.status, 201, "{}", created.body);

    let updated = app.put(&path(&site), t, &full_body());
    assert_eq!(updated.status, 200, "{}", updated.body);
    let w = &updated.body;
    assert_eq!(w["id"], created.body["id"]);
    assert_eq!(w["status"], "DRAFT");
    assert_eq!(w["publishedAt"], Value::Null);
    assert_eq!(w["welcomeMessage"], "Welcome to Acme support");
    assert_eq!(w["disclaimer"], "Answers may be wrong.");
    assert_eq!(w["position"], "TOP_LEFT");
    assert_eq!(w["supportEmail"], "help@acme.test");
    assert_eq!(w["persona"], "You are Acme's friendly helper.");
    assert_eq!(
        w["insufficientCreditsMessage"],
        "We are out of answers today."
    );
    assert_eq!(w["rateLimitPerSession"], 42);
    assert_eq!(
        at_micros(&app.get(&path(&site), t).body),
        at_micros(&updated.body)
    );

    // Saving a published widget keeps it published.
    let published = app.post_empty(&format!("{}/publish", path(&site)), t);
    assert_eq!(published.status, 200, "{}", published.body);
    let saved = app.put(&path(&site), t, &widget_body());
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert_eq!(saved.body["id"], created.body["id"]);
    assert_eq!(saved.body["status"], "ACTIVE");
    assert_eq!(
        at_micros(&saved.body)["publishedAt"],
        at_micros(&published.body)["publishedAt"]
    );
    // Optional fields left out keep their values (a PUT never changes a
    // field it does not name); the required ones are replaced.
    assert_eq!(saved.body["disclaimer"], "Answers may be wrong.");
    assert_eq!(saved.body["supportEmail"], "help@acme.test");
    assert_eq!(saved.body["persona"], "You are Acme's friendly helper.");
    assert_eq!(
        saved.body["insufficientCreditsMessage"],
        "We are out of answers today."
    );
    assert_eq!(saved.body["rateLimitPerSession"], 42);
    assert_eq!(saved.body["position"], "BOTTOM_RIGHT");

    // Named as null, they are cleared or go back to their defaults.
    let mut cleared = widget_body();
    for field in [
        "disclaimer",
        "supportEmail",
        "persona",
        "insufficientCreditsMessage",
        "rateLimitPerSession",
    ] {
        cleared[field] = Value::Null;
    }
    let saved = app.put(&path(&site), t, &cleared);
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert_eq!(saved.body["disclaimer"], Value::Null);
    assert_eq!(saved.body["supportEmail"], Value::Null);
    assert_eq!(saved.body["persona"], Value::Null);
    assert_eq!(
        saved.body["insufficientCreditsMessage"],
        chatdesk_domain::widget::DEFAULT_INSUFFICIENT_CREDITS_MESSAGE
    );
    assert_eq!(saved.body["rateLimitPerSession"], 20);
    assert_eq!(app.get(&path(&site), t).body, saved.body);
}

#[test]
fn concurrent_puts_of_different_optional_fields_both_survive() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "example.com");
    let t = Some(tenant.token.as_str());
    assert_eq!(app.put(&path(&site), t, &widget_body()).status, 201);
    for round in 0..30 {
        let persona = format!("Persona {round}");
        let mut a = widget_body();
        a["persona"] = json!(persona);
        let mut b = widget_body();
        b["rateLimitPerSession"] = json!(round + 1);
        let (ra, rb) = std::thread::scope(|s| {
            let ha = s.spawn(|| app.put(&path(&site), t, &a));
            let hb = s.spawn(|| app.put(&path(&site), t, &b));
            (ha.join().expect("a"), hb.join().expect("b"))
        });
        assert_eq!((ra.status, rb.status), (200, 200), "round {round}");
        let w = app.get(&path(&site), t).body;
        assert_eq!(w["persona"], json!(persona), "round {round}");
        assert_eq!(w["rateLimitPerSession"], json!(round + 1), "round {round}");
    }
}

#[test]
fn every_position_is_accepted() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "example.com");
    for position in ["BOTTOM_RIGHT", "BOTTOM_LEFT", "TOP_RIGHT", "TOP_LEFT"] {
        let reply = app.put(
            &path(&site),
            Some(&tenant.token),
            &with("position", json!(position)),
        );
        assert!(
            reply.status == 200 || reply.status == 201,
            "{position}: {}",
            reply.body
        );
        assert_eq!(reply.body["position"], position);
    }
}

#[test]
fn each_widget_field_is_validated() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "example.com");
    let t = Some(tenant.token.as_str());
    let cases: Vec<(&str, Value)> = vec![
        ("welcomeMessage", with("welcomeMessage", json!(""))),
        ("welcomeMessage", with("welcomeMessage", json!("   "))),
        (
            "welcomeMessage",
            with("welcomeMessage", json!("w".repeat(501))),
        ),
        ("disclaimer", with("disclaimer", json!("d".repeat(501)))),
        ("position", with("position", json!("MIDDLE"))),
        ("position", with("position", json!("bottom_right"))),
        ("supportEmail", with("supportEmail", json!("nope"))),
        ("persona", with("persona", json!("p".repeat(2001)))),
        (
            "insufficientCreditsMessage",
            with("insufficientCreditsMessage", json!("i".repeat(501))),
        ),
        ("rateLimitPerSession", with("rateLimitPerSession", json!(0))),
        (
            "rateLimitPerSession",
            with("rateLimitPerSession", json!(1001)),
        ),
        (
            "rateLimitPerSession",
            with("rateLimitPerSession", json!(-5)),
        ),
        (
            "rateLimitPerSession",
            with("rateLimitPerSession", json!("twenty")),
        ),
        (
            "rateLimitPerSession",
            with("rateLimitPerSession", json!(2.5)),
        ),
        ("welcomeMessage", json!({"position": "BOTTOM_RIGHT"})),
        ("position", json!({"welcomeMessage": "Hi"})),
    ];
    for (field, body) in cases {
        let reply = app.put(&path(&site), t, &body);
        assert_eq!(reply.status, 422, "{field} with {body}: {}", reply.body);
        reply.assert_invalid(&[field]);
    }
    // Nothing was created by the refused bodies.
    app.get(&path(&site), t).assert_problem(404, "NOT_FOUND");

    // Several invalid fields are all named.
    let mut body = with("position", json!("MIDDLE"));
    body["supportEmail"] = json!("nope");
    body["rateLimitPerSession"] = json!(0);
    app.put(&path(&site), t, &body).assert_invalid(&[
        "position",
        "supportEmail",
        "rateLimitPerSession",
    ]);
    // Unknown fields are refused.
    app.put(&path(&site), t, &with("status", json!("ACTIVE")))
        .assert_invalid(&["status"]);
    app.send("PUT", &path(&site), t, Some("{"), &[])
        .assert_problem(400, "MALFORMED_JSON");
}

#[test]
fn widget_field_bounds_are_inclusive() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "example.com");
    let t = Some(tenant.token.as_str());
    for (field, value) in [
        ("rateLimitPerSession", json!(1)),
        ("rateLimitPerSession", json!(1000)),
        ("welcomeMessage", json!("w".repeat(500))),
        ("disclaimer", json!("d".repeat(500))),
        ("persona", json!("p".repeat(2000))),
        ("insufficientCreditsMessage", json!("i".repeat(500))),
    ] {
        let reply = app.put(&path(&site), t, &with(field, value.clone()));
        assert!(
            reply.status == 200 || reply.status == 201,
            "{field}: {}",
            reply.body
        );
        assert_eq!(reply.body[field], value, "{field}");
    }
    // Blank optional fields mean "none".
    let mut body = widget_body();
    body["disclaimer"] = json!("  ");
    body["supportEmail"] = json!("");
    body["persona"] = json!("");
    let reply = app.put(&path(&site), t, &body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["disclaimer"], Value::Null);
    assert_eq!(reply.body["supportEmail"], Value::Null);
    assert_eq!(reply.body["persona"], Value::Null);
}

#[test]
fn publish_and_pause_need_a_completed_mapping() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "example.com");
    let t = Some(tenant.token.as_str());
    app.widget(&tenant.token, &site);
    for status in ["PENDING", "IN_PROGRESS", "FAILED"] {
        app.set_mapping(&tenant.token, &site, status);
        app.post_empty(&format!("{}/publish", path(&site)), t)
            .assert_problem(409, "SITE_NOT_MAPPED");
        app.post_empty(&format!("{}/pause", path(&site)), t)
            .assert_problem(409, "SITE_NOT_MAPPED");
        let got = app.get(&path(&site), t);
        assert_eq!(got.body["status"], "DRAFT", "{status}");
        assert_eq!(got.body["publishedAt"], Value::Null, "{status}");
    }
}

#[test]
fn publish_pause_publish() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.mapped_site(&tenant.token, "example.com");
    let t = Some(tenant.token.as_str());
    let created = app.widget(&tenant.token, &site);

    let published = app.post_empty(&format!("{}/publish", path(&site)), t);
    assert_eq!(published.status, 200, "{}", published.body);
    assert_eq!(published.body["id"], created["id"]);
    assert_eq!(published.body["status"], "ACTIVE");
    let first_published_at = published.body["publishedAt"]
        .as_str()
        .expect("publishedAt set");
    assert_eq!(app.get(&path(&site), t).body["status"], "ACTIVE");

    let paused = app.post_empty(&format!("{}/pause", path(&site)), t);
    assert_eq!(paused.status, 200, "{}", paused.body);
    assert_eq!(paused.body["status"], "PAUSED");
    assert_eq!(
        micros(paused.body["publishedAt"].as_str().unwrap()),
        micros(first_published_at)
    );
    let got = app.get(&path(&site), t);
    assert_eq!(got.body["status"], "PAUSED");
    assert_eq!(
        micros(got.body["publishedAt"].as_str().unwrap()),
        micros(first_published_at)
    );

    let again = app.post_empty(&format!("{}/publish", path(&site)), t);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["status"], "ACTIVE");
    let second_published_at = again.body["publishedAt"].as_str().expect("publishedAt set");
    let first = micros(first_published_at);
    let second = micros(second_published_at);
    assert!(
        second >= first,
        "{second_published_at} before {first_published_at}"
    );
    assert_eq!(app.get(&path(&site), t).body["status"], "ACTIVE");

    // Un-mapping the site blocks pausing again.
    app.set_mapping(&tenant.token, &site, "IN_PROGRESS");
    app.post_empty(&format!("{}/pause", path(&site)), t)
        .assert_problem(409, "SITE_NOT_MAPPED");
    assert_eq!(app.get(&path(&site), t).body["status"], "ACTIVE");
}

#[test]
fn a_draft_can_be_paused_on_a_mapped_site() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.mapped_site(&tenant.token, "example.com");
    app.widget(&tenant.token, &site);
    let paused = app.post_empty(&format!("{}/pause", path(&site)), Some(&tenant.token));
    assert_eq!(paused.status, 200, "{}", paused.body);
    assert_eq!(paused.body["status"], "PAUSED");
    assert_eq!(paused.body["publishedAt"], Value::Null);
}

#[test]
fn publish_or_pause_without_a_widget_is_404() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.mapped_site(&tenant.token, "example.com");
    let t = Some(tenant.token.as_str());
    app.post_empty(&format!("{}/publish", path(&site)), t)
        .assert_problem(404, "NOT_FOUND");
    app.post_empty(&format!("{}/pause", path(&site)), t)
        .assert_problem(404, "NOT_FOUND");
    app.get(&path(&site), t).assert_problem(404, "NOT_FOUND");
}

#[test]
fn members_read_the_widget_but_cannot_change_it() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.mapped_site(&tenant.token, "example.com");
    let member = app.member(&tenant.token, "MEMBER");
    let m = Some(member.as_str());

    // Not even the first save.
    app.put(&path(&site), m, &widget_body())
        .assert_problem(403, "ROLE_TOO_WEAK");
    app.get(&path(&site), m).assert_problem(404, "NOT_FOUND");

    let created = app.widget(&tenant.token, &site);
    app.put(&path(&site), m, &full_body())
        .assert_problem(403, "ROLE_TOO_WEAK");
    app.post_empty(&format!("{}/publish", path(&site)), m)
        .assert_problem(403, "ROLE_TOO_WEAK");
    app.post_empty(&format!("{}/pause", path(&site)), m)
        .assert_problem(403, "ROLE_TOO_WEAK");
    let got = app.get(&path(&site), m);
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(at_micros(&got.body), at_micros(&created));

    // A MANAGER can.
    let manager = app.member(&tenant.token, "MANAGER");
    let saved = app.put(&path(&site), Some(&manager), &full_body());
    assert_eq!(saved.status, 200, "{}", saved.body);
    let published = app.post_empty(&format!("{}/publish", path(&site)), Some(&manager));
    assert_eq!(published.status, 200, "{}", published.body);
    let paused = app.post_empty(&format!("{}/pause", path(&site)), Some(&manager));
    assert_eq!(paused.status, 200, "{}", paused.body);
}

#[test]
fn the_site_theme_shows_in_the_widget() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "example.com");
    app.widget(&tenant.token, &site);
    let theme = json!({
        "primaryColor": "#0a0b0c",
        "backgroundColor": "#fefefe",
        "textColor": "#202020",
        "fontFamily": "Georgia, serif"
    });
    let patched = app.patch(
        &format!("/api/v1/sites/{site}"),
        Some(&tenant.token),
        &json!({"theme": theme}),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    let got = app.get(&path(&site), Some(&tenant.token));
    assert_eq!(got.status, 200);
    assert_eq!(got.body["theme"], theme);
    // The widget body has no theme of its own.
    app.put(&path(&site), Some(&tenant.token), &with("theme", theme))
        .assert_invalid(&["theme"]);
}

#[test]
fn timestamps_read_back_exactly_as_returned() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let site = app.mapped_site(&tenant.token, "example.com");
    let t = Some(tenant.token.as_str());
    let created = app.put(&path(&site), t, &widget_body());
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        app.get(&path(&site), t).body,
        created.body,
        "GET differs from the PUT"
    );
    let published = app.post_empty(&format!("{}/publish", path(&site)), t);
    assert_eq!(published.status, 200, "{}", published.body);
    assert_eq!(
        app.get(&path(&site), t).body,
        published.body,
        "GET differs from the publish"
    );
}

#[test]
fn the_rate_limit_is_a_whole_number() {
    let app = app!();
    let t = app.tenant(Plan::Pro);
    let site = app.site_id(&t.token, "whole.example.com");
    let mut body = widget_body();
    body["rateLimitPerSession"] = serde_json::json!(25.0);
    let saved = app.put(&path(&site), Some(&t.token), &body);
    assert_eq!(saved.status, 201, "{}", saved.body);
    assert_eq!(saved.body["rateLimitPerSession"], 25);
    for bad in [serde_json::json!(2.5), serde_json::json!("20")] {
        body["rateLimitPerSession"] = bad;
        app.put(&path(&site), Some(&t.token), &body)
            .assert_invalid(&["rateLimitPerSession"]);
    }
}
