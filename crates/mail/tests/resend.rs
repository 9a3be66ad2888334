//! `ResendMailer` against the fake Resend server.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use chatdesk_domain::ports::{MailError, MailErrorKind, MailOutcome, Mailer, OutgoingEmail};
use chatdesk_mail::testing::{FakeResendServer, ResendReply};
use chatdesk_mail::{ResendMailer, DEFAULT_FROM, DEFAULT_RESEND_BASE_URL};
use common::{capture_logs, ticket_email};
use serde_json::json;

const KEY: &str = "re_test_4f9c2b7e1a";

fn mailer(base_url: &str) -> ResendMailer {
    ResendMailer::new(KEY, base_url, DEFAULT_FROM).expect("valid Resend settings")
}

fn with_timeout(base_url: &str, timeout: Duration) -> ResendMailer {
    ResendMailer::with_timeout(KEY, base_url, DEFAULT_FROM, timeout).expect("valid")
}

/// A local port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

fn assert_no_key(error: &MailError) {
    assert!(!error.message.contains(KEY), "{error}");
    assert!(!format!("{error:?}").contains(KEY), "{error:?}");
}

#[test]
fn sends_every_field() {
    let server = FakeResendServer::start();
    let sent = OutgoingEmail {
        html: Some("<p>A visitor opened a support ticket.</p>".to_owned()),
        ..ticket_email()
    };

    let outcome = mailer(&server.url()).send(&sent);

    assert_eq!(outcome, Ok(MailOutcome::Sent));
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/emails");
    assert_eq!(
        request.authorization(),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(request.bearer(), Some(KEY));
    assert_eq!(
        request.idempotency_key(),
        Some("0190f2c4-0000-7000-8000-000000000001")
    );
    assert!(
        request
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        request.headers
    );
    assert!(request
        .header("User-Agent")
        .is_some_and(|agent| agent.starts_with("chatdesk/")));
    assert_eq!(
        request.body,
        json!({
            "from": "chatdesk <no-reply@chatdesk.localhost>",
            "to": ["help@example.com"],
            "reply_to": "visitor@example.org",
            "subject": "[chatdesk] Ticket: cannot log in",
            "text": sent.text,
            "html": "<p>A visitor opened a support ticket.</p>",
            "headers": {"Message-ID": "<ticket-0190f2c4@chatdesk.localhost>"},
        })
    );
    assert_eq!(request.to(), vec!["help@example.com".to_owned()]);
    assert_eq!(request.reply_to(), vec!["visitor@example.org".to_owned()]);
    assert_eq!(
        request.message_id(),
        Some("<ticket-0190f2c4@chatdesk.localhost>")
    );
    assert_eq!(server.delivered().len(), 1);
}

#[test]
fn optional_fields_are_left_out() {
    let server = FakeResendServer::start();
    let sent = OutgoingEmail {
        reply_to: None,
        html: None,
        message_id: "<already@bracketed>".to_owned(),
        ..ticket_email()
    };

    assert_eq!(mailer(&server.url()).send(&sent), Ok(MailOutcome::Sent));

    let request = &server.requests()[0];
    let body = request.body.as_object().expect("a JSON object");
    assert!(!body.contains_key("reply_to"), "{body:?}");
    assert!(!body.contains_key("html"), "{body:?}");
    assert_eq!(request.message_id(), Some("<already@bracketed>"));
}

#[test]
fn a_custom_sender_and_a_base_url_with_a_path() {
    let server = FakeResendServer::start();
    let base_url = format!("{}/proxy/resend/", server.url());
    let mailer =
        ResendMailer::new(KEY, &base_url, "  \"Chat Desk\" <support@example.com> ").expect("valid");

    assert_eq!(
        mailer.endpoint(),
        format!("{}/proxy/resend/emails", server.url())
    );
    assert_eq!(mailer.send(&ticket_email()), Ok(MailOutcome::Sent));

    let request = &server.requests()[0];
    assert_eq!(request.path, "/proxy/resend/emails");
    assert_eq!(request.from(), Some("Chat Desk <support@example.com>"));
}

#[test]
fn a_subject_cannot_add_headers() {
    let server = FakeResendServer::start();
    let sent = OutgoingEmail {
        subject: "Help\r\nBcc: attacker@example.net".to_owned(),
        message_id: "id@x\r\nBcc: attacker@example.net".to_owned(),
        ..ticket_email()
    };

    assert_eq!(mailer(&server.url()).send(&sent), Ok(MailOutcome::Sent));

    let request = &server.requests()[0];
    assert_eq!(request.subject(), Some("Help  Bcc: attacker@example.net"));
    let message_id = request.message_id().unwrap_or_default();
    assert!(!message_id.contains(['\r', '\n']), "{message_id:?}");
    let headers = request.body["headers"].as_object().expect("headers");
    assert_eq!(headers.len(), 1, "{headers:?}");
    assert!(!request
        .body
        .as_object()
        .expect("object")
        .contains_key("bcc"));
}

#[test]
fn non_ascii_round_trips() {
    let server = FakeResendServer::start();
    let sent = OutgoingEmail {
        subject: "Réponse — ça ne marche pas ✓".to_owned(),
        text: format!(
            "Bonjour,\nça ne marche pas: « {} » 日本語\n",
            "é".repeat(120)
        ),
        html: Some("<p>ça ✓ 日本語</p>".to_owned()),
        ..ticket_email()
    };

    assert_eq!(mailer(&server.url()).send(&sent), Ok(MailOutcome::Sent));

    let request = &server.requests()[0];
    assert_eq!(request.subject(), Some(sent.subject.as_str()));
    assert_eq!(request.text(), Some(sent.text.as_str()));
    assert_eq!(request.html(), sent.html.as_deref());
}

#[test]
fn a_retry_carries_the_same_idempotency_key_and_is_delivered_once() {
    let server = FakeResendServer::start();
    let mailer = mailer(&server.url());
    // The first answer is lost: the client gives up before it comes.
    server.reply_next(ResendReply::delayed_ms(1_500, ResendReply::accept()));
    let impatient = with_timeout(&server.url(), Duration::from_millis(300));

    let first = impatient.send(&ticket_email()).expect_err("timed out");
    assert!(first.is_transient(), "{first}");
    // Resend still delivers it.
    assert_eq!(
        server.wait_for_delivered(1, Duration::from_secs(5)).len(),
        1
    );

    assert_eq!(mailer.send(&ticket_email()), Ok(MailOutcome::Sent));
    assert_eq!(mailer.send(&ticket_email()), Ok(MailOutcome::Sent));

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(
            request.idempotency_key(),
            Some("0190f2c4-0000-7000-8000-000000000001")
        );
    }
    assert_eq!(server.delivered().len(), 1);

    // Another email (another delivery id) is delivered.
    let other = OutgoingEmail {
        delivery_id: "0190f2c4-0000-7000-8000-000000000002".to_owned(),
        ..ticket_email()
    };
    assert_eq!(mailer.send(&other), Ok(MailOutcome::Sent));
    assert_eq!(server.delivered().len(), 2);
}

#[test]
fn the_same_key_with_another_body_is_a_permanent_error() {
    let server = FakeResendServer::start();
    let mailer = mailer(&server.url());
    assert_eq!(mailer.send(&ticket_email()), Ok(MailOutcome::Sent));
    let changed = OutgoingEmail {
        subject: "Another subject".to_owned(),
        ..ticket_email()
    };

    let error = mailer.send(&changed).expect_err("conflict");

    assert_eq!(error.kind, MailErrorKind::Permanent, "{error}");
    assert!(
        error
            .message
            .starts_with("Resend answered HTTP 409 invalid_idempotent_request: "),
        "{error}"
    );
}

#[test]
fn a_request_still_in_progress_is_a_transient_error() {
    let server = FakeResendServer::start();
    server.reply_next(ResendReply::delayed_ms(800, ResendReply::accept()));
    let url = server.url();
    let slow = std::thread::spawn(move || mailer(&url).send(&ticket_email()));
    server.wait_for(1, Duration::from_secs(5));

    let error = mailer(&server.url())
        .send(&ticket_email())
        .expect_err("in progress");

    assert_eq!(error.kind, MailErrorKind::Transient, "{error}");
    assert!(
        error.message.contains("409 concurrent_idempotent_requests"),
        "{error}"
    );
    assert_eq!(slow.join().expect("thread"), Ok(MailOutcome::Sent));
    assert_eq!(server.delivered().len(), 1);
}

#[test]
fn client_errors_are_permanent_with_resends_reason() {
    let cases = [
        (400, "validation_error", "Invalid `to` field."),
        (
            401,
            "missing_api_key",
            "Missing API key in the authorization header.",
        ),
        (
            403,
            "validation_error",
            "The example.com domain is not verified.",
        ),
        (404, "not_found", "The requested endpoint does not exist."),
        (422, "missing_required_field", "Missing `to` field."),
        (
            409,
            "invalid_idempotent_request",
            "Same key, another payload.",
        ),
    ];
    for (status, name, message) in cases {
        let server = FakeResendServer::start();
        server.set_reply(ResendReply::error(status, name, message));

        let error = mailer(&server.url())
            .send(&ticket_email())
            .expect_err("refused");

        assert_eq!(error.kind, MailErrorKind::Permanent, "{status}: {error}");
        assert_eq!(
            error.message,
            format!("Resend answered HTTP {status} {name}: {message}")
        );
        assert!(server.delivered().is_empty());
    }
}

#[test]
fn the_api_key_never_reaches_the_error() {
    let server = FakeResendServer::start();
    // A service that echoes the key back.
    server.set_reply(ResendReply::error(
        403,
        "invalid_api_key",
        &format!("API key {KEY} is invalid"),
    ));

    let error = mailer(&server.url())
        .send(&ticket_email())
        .expect_err("refused");

    assert_eq!(error.kind, MailErrorKind::Permanent);
    assert_eq!(
        error.message,
        "Resend answered HTTP 403 invalid_api_key: API key *** is invalid"
    );
    assert_no_key(&error);

    server.set_reply(ResendReply::raw(500, &format!("<html>key={KEY}</html>")));
    let error = mailer(&server.url())
        .send(&ticket_email())
        .expect_err("failed");
    assert!(error.is_transient());
    assert_no_key(&error);
}

#[test]
fn rate_limits_and_server_errors_are_transient() {
    let cases = [
        (
            ResendReply::error(429, "rate_limit_exceeded", "Too many requests."),
            "Resend answered HTTP 429 rate_limit_exceeded: Too many requests.",
        ),
        (
            ResendReply::error(
                429,
                "daily_quota_exceeded",
                "You have reached your daily quota.",
            ),
            "Resend answered HTTP 429 daily_quota_exceeded: You have reached your daily quota.",
        ),
        (
            ResendReply::error(409, "concurrent_idempotent_requests", "In progress."),
            "Resend answered HTTP 409 concurrent_idempotent_requests: In progress.",
        ),
        (
            ResendReply::error(500, "internal_server_error", "Something went wrong."),
            "Resend answered HTTP 500 internal_server_error: Something went wrong.",
        ),
        (
            ResendReply::error(503, "service_unavailable", "Try again later."),
            "Resend answered HTTP 503 service_unavailable: Try again later.",
        ),
        (
            ResendReply::raw(502, "<html><body>Bad gateway</body></html>"),
            "Resend answered HTTP 502: <html><body>Bad gateway</body></html>",
        ),
        (ResendReply::raw(504, ""), "Resend answered HTTP 504"),
    ];
    for (reply, want) in cases {
        let server = FakeResendServer::start();
        server.set_reply(reply);

        let error = mailer(&server.url())
            .send(&ticket_email())
            .expect_err("failed");

        assert_eq!(error.kind, MailErrorKind::Transient, "{error}");
        assert_eq!(error.message, want);
        assert_no_key(&error);
    }
}

#[test]
fn the_next_attempt_after_a_transient_error_succeeds() {
    let server = FakeResendServer::start();
    server.reply_next(ResendReply::error(503, "service_unavailable", "Later."));
    let mailer = mailer(&server.url());

    assert!(mailer
        .send(&ticket_email())
        .expect_err("503")
        .is_transient());
    assert_eq!(mailer.send(&ticket_email()), Ok(MailOutcome::Sent));
    assert_eq!(server.requests().len(), 2);
    assert_eq!(server.delivered().len(), 1);
}

#[test]
fn a_slow_api_times_out() {
    let server = FakeResendServer::start();
    server.set_reply(ResendReply::delayed_ms(3_000, ResendReply::accept()));
    let mailer = with_timeout(&server.url(), Duration::from_millis(500));
    let started = Instant::now();

    let error = mailer.send(&ticket_email()).expect_err("timed out");

    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(error.kind, MailErrorKind::Transient, "{error}");
    assert_eq!(
        error.message,
        format!(
            "Resend (http://{}/emails) did not answer within 500ms",
            server.addr()
        )
    );
}

#[test]
fn a_silent_server_times_out() {
    // Accepts connections (the kernel does) but never answers.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let started = Instant::now();

    let error = with_timeout(&url, Duration::from_millis(500))
        .send(&ticket_email())
        .expect_err("timed out");

    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(error.kind, MailErrorKind::Transient, "{error}");
    assert!(
        error.message.contains("did not answer within 500ms"),
        "{error}"
    );
    drop(listener);
}

#[test]
fn an_unreachable_api_is_a_transient_error() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let started = Instant::now();

    let error = mailer(&url).send(&ticket_email()).expect_err("unreachable");

    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(error.kind, MailErrorKind::Transient, "{error}");
    assert!(error.message.contains("could not connect"), "{error}");
    assert!(error.message.contains(&url), "{error}");
    assert_no_key(&error);
}

#[test]
fn a_hang_up_is_a_transient_error() {
    let server = FakeResendServer::start();
    server.set_reply(ResendReply::hangup());

    let error = mailer(&server.url())
        .send(&ticket_email())
        .expect_err("hung up");

    assert_eq!(error.kind, MailErrorKind::Transient, "{error}");
    assert_eq!(server.requests().len(), 1);
    assert_no_key(&error);
}

#[test]
fn a_redirect_is_not_followed() {
    let server = FakeResendServer::start();
    server.set_reply(ResendReply::raw(301, "{}"));

    let error = mailer(&server.url())
        .send(&ticket_email())
        .expect_err("redirect");

    assert_eq!(error.kind, MailErrorKind::Permanent, "{error}");
    assert!(error.message.contains("RESEND_BASE_URL"), "{error}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn an_unusable_delivery_id_is_a_permanent_error_and_nothing_is_sent() {
    let server = FakeResendServer::start();
    for delivery_id in ["", "   ", "a b", "id\r\nX-Injected: 1", &"k".repeat(257)] {
        let sent = OutgoingEmail {
            delivery_id: delivery_id.to_owned(),
            ..ticket_email()
        };

        let error = mailer(&server.url()).send(&sent).expect_err("refused");

        assert_eq!(error.kind, MailErrorKind::Permanent, "{delivery_id:?}");
        assert!(error.message.contains("Idempotency-Key"), "{error}");
    }
    assert!(server.requests().is_empty());
}

#[test]
fn an_unreadable_success_still_counts_as_sent() {
    let server = FakeResendServer::start();
    server.set_reply(ResendReply::raw(200, "not json"));

    assert_eq!(
        mailer(&server.url()).send(&ticket_email()),
        Ok(MailOutcome::Sent)
    );
}

#[test]
fn success_is_logged_without_the_key() {
    let server = FakeResendServer::start();
    let mailer = mailer(&server.url());

    let (outcome, logs) = capture_logs(|| mailer.send(&ticket_email()));

    assert_eq!(outcome, Ok(MailOutcome::Sent));
    assert!(logs.contains("email accepted by Resend"), "{logs}");
    assert!(
        logs.contains("00000000-0000-4000-8000-000000000001"),
        "{logs}"
    );
    assert!(!logs.contains(KEY), "{logs}");
}

#[test]
fn settings_are_checked() {
    assert!(ResendMailer::new(KEY, DEFAULT_RESEND_BASE_URL, DEFAULT_FROM).is_ok());
    assert_eq!(DEFAULT_RESEND_BASE_URL, "https://api.resend.com");
    for bad_key in ["", "  ", "re_has space", "re_\u{e9}"] {
        let error =
            ResendMailer::new(bad_key, DEFAULT_RESEND_BASE_URL, DEFAULT_FROM).expect_err("bad key");
        assert!(
            error.to_string().starts_with("invalid RESEND_API_KEY"),
            "{error}"
        );
    }
    for bad_url in [
        "api.resend.com",
        "ftp://api.resend.com",
        "https://u:p@h",
        "http://",
    ] {
        let error = ResendMailer::new(KEY, bad_url, DEFAULT_FROM).expect_err("bad URL");
        assert!(
            error.to_string().starts_with("invalid RESEND_BASE_URL"),
            "{error}"
        );
        assert!(!error.to_string().contains(KEY), "{error}");
    }
    let error = ResendMailer::new(KEY, DEFAULT_RESEND_BASE_URL, "nobody").expect_err("bad from");
    assert!(
        error.to_string().starts_with("invalid MAIL_FROM"),
        "{error}"
    );
}

#[test]
fn a_remote_api_without_tls_warns() {
    for (base_url, warns) in [
        ("http://resend-proxy.example.com", true),
        ("https://api.resend.com", false),
        ("http://127.0.0.1:8025", false),
        ("http://localhost:8025/", false),
    ] {
        let (built, logs) = capture_logs(|| mailer(base_url));
        assert_eq!(logs.contains("is not https"), warns, "{base_url}: {logs}");
        assert!(!logs.contains(KEY), "{logs}");
        drop(built);
    }
}

#[test]
fn debug_and_description_hide_the_key() {
    let mailer = mailer("https://api.resend.com/");
    let debug = format!("{mailer:?}");
    assert!(!debug.contains(KEY), "{debug}");
    assert_eq!(mailer.description(), "resend (https://api.resend.com)");
    assert_eq!(mailer.endpoint(), "https://api.resend.com/emails");
}

#[test]
fn the_fake_answers_like_resend() {
    let server = FakeResendServer::start();
    let anonymous = raw_post(&server, "/emails", None, "{}");
    assert_eq!(anonymous.0, 401, "{}", anonymous.1);
    let missing = raw_post(&server, "/emails", Some(KEY), r#"{"from":"a@b.example"}"#);
    assert_eq!(missing.0, 422, "{}", missing.1);
    assert!(
        missing.1.contains("missing_required_field"),
        "{}",
        missing.1
    );
    let elsewhere = raw_post(&server, "/domains", Some(KEY), "{}");
    assert_eq!(elsewhere.0, 404, "{}", elsewhere.1);
    assert!(server.delivered().is_empty());
    assert_eq!(server.requests().len(), 3);
}

/// Posts `body` to the fake with plain std I/O; answers (status, body).
fn raw_post(server: &FakeResendServer, path: &str, key: Option<&str>, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server.addr()).expect("connect");
    let auth = key.map_or_else(String::new, |k| format!("Authorization: Bearer {k}\r\n"));
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}
