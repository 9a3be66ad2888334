//! Hostile input on the widget SDK: control characters in every text
//! field and query parameter, oversized bodies and fields. Each is refused
//! with the field's name, and nothing is stored.

use serde_json::{json, Value};

use crate::app;
use crate::helpers::{OpenSite, TestApp, Visitor};

/// Characters refused in every text field: NUL, BEL, ESC (C0), NEL (C1).
const CONTROLS: [(&str, char); 4] = [
    ("NUL", '\u{0}'),
    ("BEL", '\u{7}'),
    ("ESC", '\u{1b}'),
    ("NEL", '\u{85}'),
];

/// A session with one matched question, and what the site's visitors
/// have stored so far.
struct Visit {
    site: OpenSite,
    session: (String, String),
    answer: String,
}

fn visit(app: &TestApp) -> Visit {
    let site = app.open_site("input.example.com");
    app.content(
        &site.token,
        &site.site_id,
        &json!({"kind": "FLOW", "name": "Export invoices", "status": "PUBLISHED", "audiences": []}),
    );
    let session = app.visit(&site.key, "anon-input");
    let reply = app.ask(&site.key, &session, "How do I export invoices?");
    assert_eq!(reply.status, 201, "{}", reply.body);
    let answer = reply.body["assistantMessage"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    Visit {
        site,
        session,
        answer,
    }
}

impl Visit {
    /// The session's messages with their votes: must not change.
    fn stored(&self, app: &TestApp) -> Value {
        let reply = app.sdk(
            "GET",
            &format!("/api/v1/sdk/chat/sessions/{}/messages", self.session.0),
            Visitor::key(&self.site.key).session(&self.session.1),
            None,
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }

    /// (method, path, body with `{}` where the hostile text goes, field)
    fn cases(&self) -> Vec<(&'static str, String, String, &'static str)> {
        let sessions = "/api/v1/sdk/chat/sessions".to_string();
        let messages = format!("/api/v1/sdk/chat/sessions/{}/messages", self.session.0);
        let feedback = format!("/api/v1/sdk/chat/messages/{}/feedback", self.answer);
        vec![
            (
                "POST",
                sessions.clone(),
                r#"{"anonymousId": "a{}b"}"#.into(),
                "anonymousId",
            ),
            (
                "POST",
                sessions.clone(),
                r#"{"anonymousId": "anon-input", "externalId": "u{}1"}"#.into(),
                "externalId",
            ),
            (
                "POST",
                sessions.clone(),
                r#"{"anonymousId": "anon-input", "traits": {"email": "a{}b@example.com"}}"#.into(),
                "traits.email",
            ),
            (
                "POST",
                sessions.clone(),
                r#"{"anonymousId": "anon-input", "traits": {"plan": {"name": "go{}ld"}}}"#.into(),
                "traits.plan.name",
            ),
            (
                "POST",
                sessions,
                r#"{"anonymousId": "anon-input", "externalId": "u1", "userHash": "ab{}cd"}"#.into(),
                "userHash",
            ),
            (
                "POST",
                messages,
                r#"{"content": "How do I{}export?"}"#.into(),
                "content",
            ),
            ("PUT", feedback, r#"{"vote": "UP{}"}"#.into(), "vote"),
        ]
    }
}

#[test]
fn control_characters_are_refused_in_every_sdk_text_field() {
    let app = app!();
    let v = visit(&app);
    let before = v.stored(&app);
    let visitor = Visitor::key(&v.site.key).session(&v.session.1);
    for (method, path, template, field) in v.cases() {
        for (label, c) in CONTROLS {
            // JSON escapes, so the body itself stays valid JSON.
            let escaped = format!("\\u{:04x}", c as u32);
            let body = template.replace("{}", &escaped);
            let headers = visitor.headers();
            let reply = app.send(method, &path, None, Some(&body), &headers);
            assert_eq!(reply.status, 422, "{label} in {field}: {}", reply.body);
            reply.assert_invalid(&[field]);
        }
    }
    assert_eq!(v.stored(&app), before, "nothing was stored or changed");
}

#[test]
fn sdk_query_parameters_with_control_characters_are_refused() {
    let app = app!();
    let v = visit(&app);
    let path = format!("/api/v1/sdk/chat/sessions/{}/messages", v.session.0);
    // (query, parameter named)
    for (query, field) in [
        ("?cursor=%00", "cursor"),
        ("?cursor=ab%07", "cursor"),
        ("?limit=1%1B", "limit"),
        ("?cursor=%C2%85", "cursor"),
    ] {
        let reply = app.sdk(
            "GET",
            &format!("{path}{query}"),
            Visitor::key(&v.site.key).session(&v.session.1),
            None,
        );
        assert_eq!(reply.status, 422, "{query}: {}", reply.body);
        reply.assert_invalid(&[field]);
    }
}

/// 100 KB anywhere is over the SDK's 64 KiB body limit (413); a field
/// over its own limit inside a smaller body is a 422 naming it. Nothing
/// is stored either way.
#[test]
fn oversized_sdk_input_is_refused() {
    let app = app!();
    let v = visit(&app);
    let before = v.stored(&app);
    let visitor = Visitor::key(&v.site.key).session(&v.session.1);
    let big = "x".repeat(100 * 1024);
    let messages = format!("/api/v1/sdk/chat/sessions/{}/messages", v.session.0);
    let feedback = format!("/api/v1/sdk/chat/messages/{}/feedback", v.answer);
    let too_large = [
        (
            "POST",
            "/api/v1/sdk/chat/sessions".to_string(),
            json!({ "anonymousId": big }),
        ),
        (
            "POST",
            "/api/v1/sdk/chat/sessions".to_string(),
            json!({ "anonymousId": "anon-input", "traits": { "bio": big } }),
        ),
        ("POST", messages.clone(), json!({ "content": big })),
        ("PUT", feedback.clone(), json!({ "vote": big })),
    ];
    for (method, path, body) in too_large {
        let reply = app.sdk(method, &path, visitor, Some(&body));
        reply.assert_problem(413, "PAYLOAD_TOO_LARGE");
    }
    let mid = "x".repeat(20 * 1024);
    let too_long = [
        (
            "POST",
            "/api/v1/sdk/chat/sessions".to_string(),
            json!({ "anonymousId": mid }),
            "anonymousId",
        ),
        (
            "POST",
            "/api/v1/sdk/chat/sessions".to_string(),
            json!({ "anonymousId": "anon-input", "traits": { "bio": mid } }),
            "traits",
        ),
        ("POST", messages, json!({ "content": mid }), "content"),
        ("PUT", feedback, json!({ "vote": mid }), "vote"),
    ];
    for (method, path, body, field) in too_long {
        let reply = app.sdk(method, &path, visitor, Some(&body));
        assert_eq!(reply.status, 422, "{field}: {}", reply.body);
        reply.assert_invalid(&[field]);
    }
    assert_eq!(v.stored(&app), before, "nothing was stored or changed");
}
