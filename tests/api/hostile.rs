//! Hostile input: control characters in bodies and queries, bidi overrides
//! in display names, and bodies that stall.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use chatdesk_domain::tenant::Plan;
use serde_json::{json, Value};

use crate::helpers::{widget_body, TestApp};

/// Characters refused in every text field: NUL, BEL, ESC (C0), NEL (C1).
const CONTROLS: [(&str, char); 4] = [
    ("NUL", '\u{0}'),
    ("BEL", '\u{7}'),
    ("ESC", '\u{1b}'),
    ("NEL", '\u{85}'),
];

/// Characters refused in display names only.
const HIDDEN: [(&str, char); 4] = [
    ("RLO", '\u{202E}'),
    ("LRI", '\u{2066}'),
    ("ZWSP", '\u{200B}'),
    ("BOM", '\u{FEFF}'),
];

fn theme(font: &str) -> Value {
    json!({
        "primaryColor": "#4f46e5",
        "backgroundColor": "#ffffff",
        "textColor": "#111827",
        "fontFamily": font,
    })
}

/// `body` with `pointer` (a JSON pointer) set to `value`.
fn with(body: &Value, pointer: &str, value: &str) -> Value {
    let mut body = body.clone();
    *body.pointer_mut(pointer).expect("pointer into the body") = Value::String(value.into());
    body
}

/// A request that must be refused naming `field`, and the read that must
/// answer the same before and after it.
struct Case {
    method: &'static str,
    path: String,
    body: Value,
    /// Where in `body` the hostile text goes, e.g. `/theme/fontFamily`.
    pointer: &'static str,
    /// How the answer names the field, e.g. `theme.fontFamily`.
    field: &'static str,
    /// Read before and after; must not change.
    check: String,
}

struct Fixture {
    app: TestApp,
    token: String,
    site: String,
}

fn fixture() -> Option<Fixture> {
    let app = TestApp::try_spawn()?;
    let token = app.tenant(Plan::Pro).token;
    let site = app.site_id(&token, "example.com");
    app.widget(&token, &site);
    Some(Fixture { app, token, site })
}

impl Fixture {
    /// Every text field of a representative set of routes.
    fn cases(&self) -> Vec<Case> {
        let site = &self.site;
        let sites = "/api/v1/sites".to_string();
        let one_site = format!("/api/v1/sites/{site}");
        let content = format!("/api/v1/sites/{site}/content");
        let widget = format!("/api/v1/sites/{site}/widget");
        let members = "/api/v1/members".to_string();
        let new_site = json!({"domain": "new.example.com", "name": "New", "theme": theme("Inter")});
        let new_content = json!({
            "kind": "FLOW",
            "name": "Invite a teammate",
            "description": "Where the button is",
            "audiences": ["Admins"],
        });
        let widget_settings = json!({
            "welcomeMessage": "Hello",
            "position": "BOTTOM_LEFT",
            "disclaimer": "Small print",
            "persona": "Be brief",
            "supportEmail": "help@example.com",
            "insufficientCreditsMessage": "Out of credits",
        });
        let case = |method, path: &String, body: &Value, pointer, field, check: &String| Case {
            method,
            path: path.clone(),
            body: body.clone(),
            pointer,
            field,
            check: check.clone(),
        };
        vec![
            case("POST", &sites, &new_site, "/name", "name", &sites),
            case("POST", &sites, &new_site, "/domain", "domain", &sites),
            case(
                "POST",
                &sites,
                &new_site,
                "/theme/fontFamily",
                "theme.fontFamily",
                &sites,
            ),
            case(
                "PATCH",
                &one_site,
                &json!({"name": ""}),
                "/name",
                "name",
                &one_site,
            ),
            case(
                "PATCH",
                &one_site,
                &json!({"domain": ""}),
                "/domain",
                "domain",
                &one_site,
            ),
            case(
                "PATCH",
                &one_site,
                &json!({"theme": theme("")}),
                "/theme/fontFamily",
                "theme.fontFamily",
                &one_site,
            ),
            case("POST", &content, &new_content, "/name", "name", &content),
            case(
                "POST",
                &content,
                &new_content,
                "/description",
                "description",
                &content,
            ),
            case(
                "POST",
                &content,
                &new_content,
                "/audiences/0",
                "audiences[0]",
                &content,
            ),
            case(
                "PUT",
                &widget,
                &widget_settings,
                "/welcomeMessage",
                "welcomeMessage",
                &widget,
            ),
            case(
                "PUT",
                &widget,
                &widget_settings,
                "/disclaimer",
                "disclaimer",
                &widget,
            ),
            case(
                "PUT",
                &widget,
                &widget_settings,
                "/persona",
                "persona",
                &widget,
            ),
            case(
                "PUT",
                &widget,
                &widget_settings,
                "/supportEmail",
                "supportEmail",
                &widget,
            ),
            case(
                "PUT",
                &widget,
                &widget_settings,
                "/insufficientCreditsMessage",
                "insufficientCreditsMessage",
                &widget,
            ),
            case(
                "POST",
                &members,
                &json!({"email": "", "role": "MEMBER"}),
                "/email",
                "email",
                &members,
            ),
        ]
    }

    /// Sends `text` in the case's field; asserts a 422 naming it and that
    /// the read answers as before.
    #[track_caller]
    fn assert_refused(&self, case: &Case, text: &str, label: &str) {
        let app = &self.app;
        let before = app.get(&case.check, Some(&self.token));
        assert_eq!(before.status, 200, "{}", before.body);
        let body = with(&case.body, case.pointer, text);
        let reply = app.send(
            case.method,
            &case.path,
            Some(&self.token),
            Some(&body.to_string()),
            &[],
        );
        assert_eq!(
            reply.status, 422,
            "{label} in {} {} {}: {}",
            case.method, case.path, case.field, reply.body
        );
        reply.assert_invalid(&[case.field]);
        let after = app.get(&case.check, Some(&self.token));
        assert_eq!(
            after.body, before.body,
            "{label} in {} {} {} changed what is stored",
            case.method, case.path, case.field
        );
    }
}

/// A valid value for the case's field with `c` inside it.
fn hostile(case: &Case, c: char) -> String {
    match case.field {
        "domain" => format!("evil{c}.example.com"),
        "email" | "supportEmail" => format!("sam{c}@example.com"),
        _ => format!("Hello{c}there"),
    }
}

#[test]
fn control_characters_are_refused_in_every_text_field() {
    let Some(fx) = fixture() else { return };
    for case in fx.cases() {
        for (label, c) in CONTROLS {
            fx.assert_refused(&case, &hostile(&case, c), label);
        }
        // At either end too, where trimming would otherwise drop them.
        fx.assert_refused(
            &case,
            &format!("{}\u{85}", hostile(&case, 'x')),
            "NEL at the end",
        );
    }
}

#[test]
fn display_names_are_single_lines_of_visible_text() {
    let Some(fx) = fixture() else { return };
    let names: Vec<Case> = fx
        .cases()
        .into_iter()
        .filter(|c| {
            [
                "name",
                "domain",
                "theme.fontFamily",
                "audiences[0]",
                "email",
                "supportEmail",
            ]
            .contains(&c.field)
        })
        .collect();
    assert_eq!(names.len(), 10);
    for case in &names {
        for (label, c) in HIDDEN {
            fx.assert_refused(case, &hostile(case, c), label);
        }
        for (label, c) in [("LF", '\n'), ("CR", '\r'), ("TAB", '\t')] {
            fx.assert_refused(case, &hostile(case, c), label);
        }
    }
}

#[test]
fn query_parameters_with_control_characters_are_refused() {
    let Some(fx) = fixture() else { return };
    let app = &fx.app;
    let content = format!("/api/v1/sites/{}/content", fx.site);
    app.content(
        &fx.token,
        &fx.site,
        &json!({"kind": "FLOW", "name": "Guide", "audiences": ["Admins"]}),
    );
    // (query, parameters named)
    let table: [(&str, &[&str]); 10] = [
        ("?audience=%00", &["audience"]),
        ("?audience=Admins%00", &["audience"]),
        ("?audience=Ad%07mins", &["audience"]),
        ("?audience=%1B%5B2J", &["audience"]),
        ("?audience=Admins%C2%85", &["audience"]),
        ("?audience=Admins%0A", &["audience"]),
        ("?audience=Admins%09", &["audience"]),
        ("?kind=FLOW%00", &["kind"]),
        ("?kind=%00&audience=%00", &["kind", "audience"]),
        // A bidi override is no control character: the audience rule
        // refuses it.
        ("?audience=%E2%80%AEsnimdA", &["audience"]),
    ];
    for (query, fields) in table {
        let reply = app.get(&format!("{content}{query}"), Some(&fx.token));
        assert_eq!(reply.status, 422, "{query}: {}", reply.body);
        reply.assert_invalid(fields);
    }
    let reply = app.get("/api/v1/sites?cursor=%00", Some(&fx.token));
    reply.assert_invalid(&["cursor"]);
    // Near misses: accents, emoji and encoded spaces still filter.
    for query in [
        "?audience=Admins",
        "?audience=Caf%C3%A9+%F0%9F%9A%80",
        "?kind=FLOW",
    ] {
        let reply = app.get(&format!("{content}{query}"), Some(&fx.token));
        assert_eq!(reply.status, 200, "{query}: {}", reply.body);
    }
}

#[test]
fn multi_line_text_and_other_scripts_are_kept_as_sent() {
    let Some(fx) = fixture() else { return };
    let app = &fx.app;
    let content = app.content(
        &fx.token,
        &fx.site,
        &json!({
            "kind": "TOOLTIP",
            "name": "Exporter les données 📤",
            "description": "Step 1: open Settings.\nStep 2:\tclick Export.\r\nDone — 完了",
            "audiences": ["Équipe 🇫🇷", "管理者"],
        }),
    );
    assert_eq!(content["name"], "Exporter les données 📤");
    assert_eq!(
        content["description"],
        "Step 1: open Settings.\nStep 2:\tclick Export.\r\nDone — 完了"
    );
    assert_eq!(content["audiences"], json!(["Équipe 🇫🇷", "管理者"]));
    let listed = app.get(
        &format!(
            "/api/v1/sites/{}/content?audience=%E7%AE%A1%E7%90%86%E8%80%85",
            fx.site
        ),
        Some(&fx.token),
    );
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["items"][0]["id"], content["id"]);

    let mut settings = widget_body();
    settings["welcomeMessage"] = json!("Hi! 👋\nAsk me anything.");
    settings["persona"] = json!("You are helpful.\n- Be brief.\n\t- Be kind.");
    settings["disclaimer"] = json!("عربى\nמידע");
    let path = format!("/api/v1/sites/{}/widget", fx.site);
    let reply = app.put(&path, Some(&fx.token), &settings);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let widget = app.get(&path, Some(&fx.token)).body;
    assert_eq!(widget["welcomeMessage"], "Hi! 👋\nAsk me anything.");
    assert_eq!(
        widget["persona"],
        "You are helpful.\n- Be brief.\n\t- Be kind."
    );
    assert_eq!(widget["disclaimer"], "عربى\nמידע");

    let reply = app.patch(
        &format!("/api/v1/sites/{}", fx.site),
        Some(&fx.token),
        &json!({"name": "Docs ドキュメント", "theme": theme("\"Noto Sans JP\", sans-serif")}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["name"], "Docs ドキュメント");
}

/// Reads what the server sends until it closes the connection or
/// `deadline` passes; returns the bytes and whether it closed.
fn read_until_closed(stream: &mut TcpStream, deadline: Duration) -> (Vec<u8>, bool) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return (received, true),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (received, true),
            Err(e) => panic!("reading the answer: {e}"),
        }
    }
    (received, false)
}

#[test]
fn a_stalled_body_is_answered_408_and_the_connection_closed() {
    let timeout = Duration::from_secs(1);
    let Some(app) = TestApp::try_spawn_with(|config| config.body_timeout = timeout) else {
        return;
    };
    let token = app.tenant(Plan::Pro).token;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    let head = format!(
        "POST /api/v1/sites HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    );
    // Taken before the first byte goes out, so the server's timer cannot
    // have started earlier even if this thread is descheduled while writing.
    let sent_at = Instant::now();
    stream.write_all(head.as_bytes()).expect("send headers");
    // 10 of the 100 bytes promised, then nothing.
    stream.write_all(b"{\"domain\":").expect("send 10 bytes");
    let (received, closed) = read_until_closed(&mut stream, Duration::from_secs(8));
    let elapsed = sent_at.elapsed();
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "after {elapsed:?}: {text:?}"
    );
    // Not before the timeout (the timer starts no earlier than `sent_at`),
    // and well before the 8 s read deadline: the 408 came from the timeout.
    assert!(
        elapsed >= timeout && elapsed < timeout + Duration::from_secs(4),
        "answered after {elapsed:?}"
    );
    let lower = text.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/problem+json"),
        "{text}"
    );
    assert!(text.contains("\"code\":\"REQUEST_TIMEOUT\""), "{text}");
    assert!(text.contains("\"status\":408"), "{text}");
    assert!(closed, "the connection stayed open: {text}");
    // Nothing was made, and the server still answers.
    let sites = app.get("/api/v1/sites", Some(&token));
    assert_eq!(sites.status, 200, "{}", sites.body);
    assert_eq!(sites.body["items"], json!([]));
}

#[test]
fn a_body_that_arrives_in_pieces_within_the_timeout_is_read() {
    let Some(app) = TestApp::try_spawn_with(|config| config.body_timeout = Duration::from_secs(2))
    else {
        return;
    };
    let token = app.tenant(Plan::Pro).token;
    let addr = app.base.trim_start_matches("http://").to_string();
    let body = br#"{"domain":"slow.example.com","name":"Slow"}"#;
    let mut stream = TcpStream::connect(&addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    let head = format!(
        "POST /api/v1/sites HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send headers");
    for piece in body.chunks(15) {
        std::thread::sleep(Duration::from_millis(200));
        stream.write_all(piece).expect("send a piece");
    }
    let (received, _) = read_until_closed(&mut stream, Duration::from_secs(8));
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 201"), "{text:?}");
}
