//! `SmtpMailer` against the fake SMTP server.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use chatdesk_domain::ports::{MailErrorKind, MailOutcome, Mailer, OutgoingEmail};
use chatdesk_mail::testing::FakeSmtpServer;
use chatdesk_mail::{SmtpMailer, DEFAULT_FROM};
use common::{email, ticket_email};

fn mailer(url: &str) -> SmtpMailer {
    SmtpMailer::new(url, DEFAULT_FROM).expect("valid SMTP settings")
}

/// A local port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[test]
fn delivers_with_every_header() {
    let server = FakeSmtpServer::start();
    let sent = ticket_email();

    let outcome = mailer(&server.url()).send(&sent);

    assert_eq!(outcome, Ok(MailOutcome::Sent));
    let mails = server.messages();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.from, "no-reply@chatdesk.localhost");
    assert_eq!(mail.recipients, vec!["help@example.com".to_owned()]);
    assert_eq!(mail.header("To").as_deref(), Some("help@example.com"));
    assert_eq!(
        mail.header("From").as_deref(),
        Some("chatdesk <no-reply@chatdesk.localhost>")
    );
    assert_eq!(
        mail.header("Reply-To").as_deref(),
        Some("visitor@example.org")
    );
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("[chatdesk] Ticket: cannot log in")
    );
    assert_eq!(
        mail.header("Message-ID").as_deref(),
        Some("<ticket-0190f2c4@chatdesk.localhost>")
    );
    assert!(mail.header("Date").is_some());
    let content_type = mail.header("Content-Type").unwrap_or_default();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    // The line holding only "." survives dot-stuffing.
    assert_eq!(mail.text(), sent.text);
    assert_eq!(mail.credentials, None);
}

#[test]
fn the_html_alternative_arrives_beside_the_plain_text() {
    let server = FakeSmtpServer::start();
    let sent = OutgoingEmail {
        text: "Plain: café & <b>not bold</b>\n.\nend\n".to_owned(),
        html: Some(
            "<!DOCTYPE html>\n<p>HTML: caf\u{e9} &amp; <b>bold</b> \u{2713}</p>\n".to_owned(),
        ),
        ..ticket_email()
    };

    assert_eq!(mailer(&server.url()).send(&sent), Ok(MailOutcome::Sent));

    let mail = &server.messages()[0];
    let content_type = mail.header("Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("multipart/alternative"),
        "{content_type}"
    );
    assert!(mail.is_multipart());
    let types = mail.part_types();
    assert_eq!(types.len(), 2, "{types:?}");
    assert!(types[0].starts_with("text/plain"), "{types:?}");
    assert!(types[1].starts_with("text/html"), "{types:?}");
    assert_eq!(mail.text(), sent.text);
    assert_eq!(mail.part("text/plain"), Some(sent.text.clone()));
    assert_eq!(mail.html(), sent.html);
    // The headers are the same as for a plain email.
    assert_eq!(
        mail.header("Reply-To").as_deref(),
        Some("visitor@example.org")
    );
    assert_eq!(
        mail.header("Message-ID").as_deref(),
        Some("<ticket-0190f2c4@chatdesk.localhost>")
    );
}

#[test]
fn without_html_the_email_stays_plain_text() {
    let server = FakeSmtpServer::start();

    assert_eq!(
        mailer(&server.url()).send(&ticket_email()),
        Ok(MailOutcome::Sent)
    );

    let mail = &server.messages()[0];
    assert!(!mail.is_multipart());
    assert_eq!(mail.html(), None);
    assert_eq!(mail.part_types().len(), 1);
}

#[test]
fn reply_to_is_optional() {
    let server = FakeSmtpServer::start();
    let mut sent = ticket_email();
    sent.reply_to = None;

    assert_eq!(mailer(&server.url()).send(&sent), Ok(MailOutcome::Sent));

    let mail = &server.messages()[0];
    assert_eq!(mail.header("Reply-To"), None);
}

#[test]
fn non_ascii_subject_and_body_round_trip() {
    let server = FakeSmtpServer::start();
    let sent = OutgoingEmail {
        subject: "Réponse — ça ne marche pas ✓".to_owned(),
        text: format!("Bonjour,\nça ne marche pas: « {} »\n", "é".repeat(120)),
        ..ticket_email()
    };

    assert_eq!(mailer(&server.url()).send(&sent), Ok(MailOutcome::Sent));

    let mail = &server.messages()[0];
    assert_eq!(mail.header("Subject"), Some(sent.subject.clone()));
    assert_eq!(mail.text(), sent.text);
}

#[test]
fn a_subject_cannot_add_headers() {
    let server = FakeSmtpServer::start();
    let sent = OutgoingEmail {
        subject: "Help\r\nBcc: attacker@example.net".to_owned(),
        ..ticket_email()
    };

    assert_eq!(mailer(&server.url()).send(&sent), Ok(MailOutcome::Sent));

    let mail = &server.messages()[0];
    assert_eq!(mail.recipients, vec!["help@example.com".to_owned()]);
    assert_eq!(mail.header("Bcc"), None);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Help  Bcc: attacker@example.net")
    );
}

#[test]
fn message_id_gets_one_pair_of_brackets() {
    let server = FakeSmtpServer::start();
    let sent = OutgoingEmail {
        message_id: "<already@bracketed>".to_owned(),
        ..ticket_email()
    };

    assert_eq!(mailer(&server.url()).send(&sent), Ok(MailOutcome::Sent));

    let mail = &server.messages()[0];
    assert_eq!(
        mail.header("Message-ID").as_deref(),
        Some("<already@bracketed>")
    );
}

#[test]
fn custom_sender_and_repeated_sends() {
    let server = FakeSmtpServer::start();
    let mailer = SmtpMailer::new(&server.url(), "Support <support@example.com>").expect("valid");
    let first = ticket_email();
    let second = OutgoingEmail {
        to: email("owner@example.com"),
        message_id: "ticket-2@chatdesk.localhost".to_owned(),
        ..ticket_email()
    };

    assert_eq!(mailer.send(&first), Ok(MailOutcome::Sent));
    assert_eq!(mailer.send(&second), Ok(MailOutcome::Sent));

    let mails = server.wait_for(2, Duration::from_secs(5));
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[0].from, "support@example.com");
    assert_eq!(
        mails[0].header("From").as_deref(),
        Some("Support <support@example.com>")
    );
    assert_eq!(mails[1].recipients, vec!["owner@example.com".to_owned()]);
    assert_eq!(
        mails[1].header("Message-ID").as_deref(),
        Some("<ticket-2@chatdesk.localhost>")
    );
}

#[test]
fn logs_in_with_the_url_credentials() {
    let server = FakeSmtpServer::start();
    let url = format!("smtp://ada:p%40ss%20word@{}", server.addr());

    assert_eq!(mailer(&url).send(&ticket_email()), Ok(MailOutcome::Sent));

    let mail = &server.messages()[0];
    assert_eq!(
        mail.credentials,
        Some(("ada".to_owned(), "p@ss word".to_owned()))
    );
}

#[test]
fn a_rejected_recipient_is_an_error_with_the_server_reason() {
    let server = FakeSmtpServer::start_rejecting_recipients();

    let error = mailer(&server.url())
        .send(&ticket_email())
        .expect_err("recipient rejected");

    assert_eq!(error.kind, MailErrorKind::Permanent, "{error}");
    assert!(error.message.contains("550"), "{error}");
    assert!(
        error
            .message
            .contains("Recipient address rejected: User unknown"),
        "{error}"
    );
    assert!(server.messages().is_empty());
}

#[test]
fn a_temporary_refusal_is_a_transient_error() {
    let server = FakeSmtpServer::start_deferring_recipients();

    let error = mailer(&server.url())
        .send(&ticket_email())
        .expect_err("recipient deferred");

    assert_eq!(error.kind, MailErrorKind::Transient, "{error}");
    assert!(error.is_transient());
    assert!(error.message.contains("450"), "{error}");
    assert!(server.messages().is_empty());
}

#[test]
fn an_unreachable_server_is_an_error() {
    let url = format!("smtp://ada:hunter2@127.0.0.1:{}", closed_port());
    let started = Instant::now();

    let error = mailer(&url).send(&ticket_email()).expect_err("unreachable");

    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.kind, MailErrorKind::Transient, "{error}");
    assert!(
        error.message.to_lowercase().contains("connection"),
        "{error}"
    );
    assert!(!error.message.contains("hunter2"), "{error}");
}

#[test]
fn a_silent_server_times_out() {
    // Accepts connections (the kernel does) but never greets.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("smtp://{}", listener.local_addr().expect("address"));
    let mailer =
        SmtpMailer::with_timeout(&url, DEFAULT_FROM, Duration::from_millis(500)).expect("valid");
    let started = Instant::now();

    let error = mailer.send(&ticket_email()).expect_err("timed out");

    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(error.kind, MailErrorKind::Transient, "{error}");
    assert!(
        error.message.starts_with("timed out after 500ms"),
        "{error}"
    );
    drop(listener);
}

#[test]
fn the_fake_server_stops_when_dropped() {
    let server = FakeSmtpServer::start();
    let url = server.url();
    assert_eq!(mailer(&url).send(&ticket_email()), Ok(MailOutcome::Sent));
    assert_eq!(server.connections(), 1);
    drop(server);

    assert!(mailer(&url).send(&ticket_email()).is_err());
}

#[test]
fn wait_for_returns_what_arrived_when_time_runs_out() {
    let server = FakeSmtpServer::start();
    let started = Instant::now();

    let mails = server.wait_for(1, Duration::from_millis(200));

    assert!(mails.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[test]
fn debug_output_hides_the_password() {
    let mailer = mailer("smtp://ada:hunter2@127.0.0.1:2525");
    let debug = format!("{mailer:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert_eq!(mailer.description(), "smtp://ada:***@127.0.0.1:2525");
}

#[test]
fn starttls_required_is_not_downgraded() {
    // The fake server refuses STARTTLS: the mail must not go out in clear.
    let server = FakeSmtpServer::start();
    let url = format!("{}?tls=required", server.url());

    let error = mailer(&url).send(&ticket_email()).expect_err("no TLS");

    assert!(error.message.contains("STARTTLS"), "{error}");
    assert!(server.messages().is_empty(), "{error}");
}

#[test]
fn implicit_tls_fails_against_a_plain_server() {
    // Exercises the rustls set-up (aws-lc-rs provider, webpki roots).
    let server = FakeSmtpServer::start();
    let url = format!("smtps://{}", server.addr());
    let mailer =
        SmtpMailer::with_timeout(&url, DEFAULT_FROM, Duration::from_secs(2)).expect("valid");

    let error = mailer.send(&ticket_email()).expect_err("no TLS");

    assert!(server.messages().is_empty(), "{error}");
}

#[test]
fn a_slow_server_accepts_each_message_after_its_delay() {
    let addr = "127.0.0.1:0".parse().expect("an address");
    let server =
        FakeSmtpServer::start_slow_at(addr, Duration::from_millis(400)).expect("a free port");

    for _ in 0..2 {
        let started = Instant::now();
        assert_eq!(
            mailer(&server.url()).send(&ticket_email()),
            Ok(MailOutcome::Sent)
        );
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(400), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
    assert_eq!(server.messages().len(), 2);
}

#[test]
fn a_slow_server_dropped_while_waiting_accepts_nothing() {
    let addr = "127.0.0.1:0".parse().expect("an address");
    let server = FakeSmtpServer::start_slow_at(addr, Duration::from_secs(30)).expect("a free port");
    let url = server.url();
    let sending = std::thread::spawn(move || mailer(&url).send(&ticket_email()));
    while server.connections() == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    drop(server);

    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(sending.join().expect("the sender").is_err());
}
