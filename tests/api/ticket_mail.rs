//! Ticket email delivery end to end (issue 9), as the people on both ends
//! see it: the email a site's team receives through a real SMTP server on
//! 127.0.0.1 (or the fake Resend API), and the ticket's delivery state in
//! the dashboard.
//!
//! - who receives it: the widget's support address, else the tenant's
//!   owner, else nobody (the ticket is still stored and listed);
//! - what it says: From `MAIL_FROM`, To, Reply-To the visitor, a subject
//!   naming the site, a stable Message-ID, the visitor's message, identity,
//!   the ticket id and the whole transcript, with visitor text escaped in
//!   HTML and unable to add headers;
//! - that it is never lost: retried while the SMTP server is down, sent once
//!   it is back; sent exactly once by the next server when one stops with
//!   emails undelivered; Resend's refusals kept, its outages retried;
//! - the log-only path and the warnings tagged `[email] support_ticket_created`;
//! - that a status change emails nobody;
//! - that the widget's retry with the same `Idempotency-Key` makes one
//!   ticket and one email.
//!
//! The warnings are read from a process-wide tracing subscriber the first
//! test that needs it installs ([`Logs::capture`]); nextest runs each test
//! in its own process, so each sees its own server's warnings.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use chatdesk::config::Config;
use chatdesk_domain::ticket::EMAIL_LOG_TAG;
use chatdesk_mail::testing::{FakeResendServer, FakeSmtpServer, ReceivedMail, ResendReply};
use chatdesk_store::schema::{email_outbox, tenant_members};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::{json, Value};

use crate::conversations::{ask_matching, detail_path, new_visitor, open, publish_flow, vote};
use crate::helpers::{OpenSite, TestApp};
use crate::tickets::{open_ticket, patch_status};

/// The sender every test configures (`MAIL_FROM`).
const MAIL_FROM: &str = "Acme Help <help@notify.acme.test>";
/// Its address.
const FROM_ADDRESS: &str = "help@notify.acme.test";
/// Its domain: the right-hand side of every Message-ID.
const MAIL_DOMAIN: &str = "notify.acme.test";
/// The sites' display name, which the subject names.
const SITE_NAME: &str = "Acme Billing";
/// How long a new ticket's email may take when the mail service is up
/// (the worker looks for due emails every 500 ms).
const PROMPT: Duration = Duration::from_secs(10);
/// How long to watch for an email that must not come: three of the
/// worker's polls.
const QUIET: Duration = Duration::from_millis(1500);
/// Slack over a retry's wait: the worker's poll, a send, a slow machine.
const SLACK: Duration = Duration::from_millis(2500);

/// Starts the server with `MAIL_FROM` set and `change` applied (no mail
/// service unless `change` sets one).
fn spawn(change: impl FnOnce(&mut Config)) -> Option<TestApp> {
    TestApp::try_spawn_with(|config| {
        config.mail_from = MAIL_FROM.to_string();
        change(config);
    })
}

/// Starts the app with this config change, or returns from the test when
/// its database is skipped.
macro_rules! mail_app {
    ($change:expr) => {
        match spawn($change) {
            Some(app) => app,
            None => return,
        }
    };
}

/// A PRO tenant's open site named [`SITE_NAME`] with the Flow the
/// visitors' questions name; with `support`, the widget's support email
/// override.
fn ticket_site(app: &TestApp, domain: &str, support: Option<&str>) -> OpenSite {
    let site = app.open_site(domain);
    publish_flow(app, &site);
    let reply = app.patch(
        &format!("/api/v1/sites/{}", site.site_id),
        Some(&site.token),
        &json!({ "name": SITE_NAME }),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    if let Some(support) = support {
        let reply = app.put(
            &format!("/api/v1/sites/{}/widget", site.site_id),
            Some(&site.token),
            &json!({
                "welcomeMessage": "Hi! How can we help?",
                "position": "BOTTOM_RIGHT",
                "supportEmail": support
            }),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    site
}

/// A visitor with `identity` (`externalId`, `traits`) who asked each of
/// `questions` (each naming the Flow) and voted the last answer DOWN;
/// returns the session and the visitor's anonymous id.
fn unhappy_visitor(
    app: &TestApp,
    site: &OpenSite,
    identity: Value,
    questions: &[&str],
) -> ((String, String), String) {
    let anonymous_id = new_visitor();
    let mut body = identity;
    body["anonymousId"] = json!(anonymous_id);
    let session = open(app, &site.key, &body);
    let mut last_answer = String::new();
    for question in questions {
        let asked = ask_matching(app, &site.key, &session, question);
        last_answer = asked["assistantMessage"]["id"]
            .as_str()
            .expect("answer id")
            .to_string();
    }
    vote(app, &site.key, &session, &last_answer, "DOWN");
    (session, anonymous_id)
}

/// Opens a ticket, which must be made; returns its id.
#[track_caller]
fn new_ticket(app: &TestApp, site: &OpenSite, session: &(String, String), body: &Value) -> String {
    let reply = open_ticket(app, site, session, body);
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["id"].as_str().expect("ticket id").to_string()
}

/// The Message-ID a ticket's email carries.
fn message_id(ticket: &str) -> String {
    format!("<ticket-{ticket}@{MAIL_DOMAIN}>")
}

/// The ticket as the dashboard shows it.
#[track_caller]
fn dashboard_ticket(app: &TestApp, token: &str, site_id: &str, ticket: &str) -> Value {
    let reply = app.get(
        &format!("/api/v1/sites/{site_id}/tickets/{ticket}"),
        Some(token),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// Polls the dashboard until the ticket's `delivery` satisfies `wanted`
/// (described by `what`) or `within` has passed; returns the delivery.
#[track_caller]
fn wait_for_delivery(
    app: &TestApp,
    token: &str,
    site_id: &str,
    ticket: &str,
    what: &str,
    within: Duration,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let delivery = dashboard_ticket(app, token, site_id, ticket)["delivery"].clone();
        if wanted(&delivery) {
            return delivery;
        }
        assert!(
            Instant::now() < deadline,
            "ticket {ticket}: delivery not {what} within {within:?}: {delivery}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// The ticket's delivery once its latest attempt is recorded (an email
/// reaches the mail service a moment before the worker records it).
#[track_caller]
fn settled(app: &TestApp, token: &str, site_id: &str, ticket: &str) -> Value {
    wait_for_delivery(
        app,
        token,
        site_id,
        ticket,
        "recorded",
        Duration::from_secs(5),
        |d| delivery_status(d) != "PENDING",
    )
}

fn delivery_status(delivery: &Value) -> &str {
    delivery["status"].as_str().unwrap_or_default()
}

fn attempts(delivery: &Value) -> u64 {
    delivery["attempts"].as_u64().unwrap_or_default()
}

/// The owner's address, as the dashboard shows it.
fn owner_email(app: &TestApp, site: &OpenSite) -> String {
    let me = app.get("/api/v1/me", Some(&site.token));
    assert_eq!(me.body["member"]["role"], "OWNER", "{}", me.body);
    me.body["member"]["email"]
        .as_str()
        .expect("email")
        .to_string()
}

/// The address in a header value (`Name <a@b>` or `a@b`), lower-cased.
fn address(value: &str) -> String {
    let value = value.trim();
    let inner = match (value.rfind('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value,
    };
    inner.trim().to_ascii_lowercase()
}

/// A header of a received mail, which must be there.
#[track_caller]
fn header(mail: &ReceivedMail, name: &str) -> String {
    mail.header(name)
        .unwrap_or_else(|| panic!("no {name} header in:\n{}", mail.headers()))
}

/// The mails whose Message-ID is this ticket's.
fn mails_of(mails: &[ReceivedMail], ticket: &str) -> Vec<ReceivedMail> {
    let id = message_id(ticket);
    mails
        .iter()
        .filter(|m| m.raw_header("Message-ID").as_deref() == Some(id.as_str()))
        .cloned()
        .collect()
}

/// An address on 127.0.0.1 where nothing listens (bound, then let go).
fn dead_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address")
}

/// The outbox row id of a ticket's email (Resend's `Idempotency-Key`).
fn outbox_id(app: &TestApp, ticket: &str) -> String {
    let mut conn = chatdesk_store::connect(&app.config.database_url).expect("database");
    email_outbox::table
        .filter(email_outbox::ticket_id.eq(ticket))
        .select(email_outbox::id)
        .first(&mut conn)
        .expect("the ticket's outbox row")
}

/// An instant of the API as the email writes it.
fn email_time(api_instant: &str) -> String {
    DateTime::parse_from_rfc3339(api_instant)
        .unwrap_or_else(|e| panic!("{api_instant}: {e}"))
        .with_timezone(&Utc)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// Where each of the session's messages (as the dashboard's timeline
/// shows them) is in `text`: its time and author, then its words, oldest
/// first; returns the line that heads each message.
#[track_caller]
fn assert_transcript(text: &str, timeline: &[Value]) -> Vec<String> {
    let mut from = 0;
    let mut heads = Vec::new();
    for message in timeline {
        let role = match message["role"].as_str() {
            Some("USER") => "Visitor",
            Some("ASSISTANT") => "Assistant",
            other => panic!("unexpected role {other:?}"),
        };
        let time = email_time(message["createdAt"].as_str().expect("createdAt"));
        let head = format!("[{time}] {role}");
        let at = text[from..]
            .find(&head)
            .map(|i| from + i)
            .unwrap_or_else(|| panic!("no {head:?} after byte {from} of the text:\n{text}"));
        let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        heads.push(text[at..line_end].to_string());
        let content = message["content"].as_str().expect("content");
        let words = text[line_end..]
            .find(content)
            .map(|i| line_end + i)
            .unwrap_or_else(|| panic!("{content:?} does not follow {head:?} in:\n{text}"));
        from = words + content.len();
    }
    heads
}

/// Warnings and errors this test process logs, kept in memory.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures the warnings of every thread of the process (the server's
    /// request threads and its delivery worker) from now on, installing a
    /// global subscriber once; `None` when another one was installed first
    /// (then the log checks are skipped, which is said on stderr).
    fn capture() -> Option<Logs> {
        static LOGS: OnceLock<Option<Logs>> = OnceLock::new();
        let logs = LOGS
            .get_or_init(|| {
                let logs = Logs::default();
                let writer = logs.clone();
                let subscriber = tracing_subscriber::fmt()
                    .with_writer(move || writer.clone())
                    .with_ansi(false)
                    .with_max_level(tracing::Level::WARN)
                    .finish();
                tracing::subscriber::set_global_default(subscriber)
                    .ok()
                    .map(|()| logs)
            })
            .clone();
        if logs.is_none() {
            eprintln!("another tracing subscriber is installed: log checks skipped");
        }
        logs
    }

    /// The first line logged, within `within`, that contains every one of
    /// `needles`.
    fn wait_for_line(&self, needles: &[&str], within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            let text =
                String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
                    .into_owned();
            let found = text
                .lines()
                .find(|line| needles.iter().all(|n| line.contains(n)));
            if let Some(line) = found {
                return Some(line.to_string());
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asserts a warning tagged [`EMAIL_LOG_TAG`] with all of `needles`.
    #[track_caller]
    fn assert_warning(&self, needles: &[&str]) {
        let mut all = vec![EMAIL_LOG_TAG, "WARN"];
        all.extend_from_slice(needles);
        let line = self.wait_for_line(&all, Duration::from_secs(5));
        assert!(
            line.is_some(),
            "no warning with {all:?}; logged:\n{}",
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
        );
    }
}

#[test]
fn the_support_address_receives_the_visitors_message_identity_and_transcript() {
    let smtp = FakeSmtpServer::start();
    let app = mail_app!(|c| c.smtp_url = Some(smtp.url()));
    let site = ticket_site(
        &app,
        "mail-override.example.com",
        Some("Help@Support.Example.com"),
    );
    let support = "help@support.example.com";
    let (session, anonymous_id) = unhappy_visitor(
        &app,
        &site,
        json!({
            "externalId": "cust-4242",
            "traits": {
                "email": "Ada.Lovelace@Example.com",
                "plan": "pro",
                "seats": 12,
                "note": "first line\r\nBcc: evil@attacker.test"
            }
        }),
        &[
            "How do I export invoices?",
            "Export invoices <script>alert('q')</script> gives an empty file",
        ],
    );

    // A subject or an address with a line break could add a header: both
    // are refused, and nothing is made or sent.
    open_ticket(
        &app,
        &site,
        &session,
        &json!({"subject": "Help\r\nBcc: evil@attacker.test", "body": "b"}),
    )
    .assert_invalid(&["subject"]);
    open_ticket(
        &app,
        &site,
        &session,
        &json!({
            "email": "ada@example.com\r\nBcc: evil@attacker.test",
            "subject": "Help",
            "body": "b"
        }),
    )
    .assert_invalid(&["email"]);
    let tickets_path = format!("/api/v1/sites/{}/tickets", site.site_id);
    let listed = app.get(&tickets_path, Some(&site.token));
    assert_eq!(listed.body["items"], json!([]), "{}", listed.body);

    let subject = "Invoices export: empty CSV (café)";
    let ticket = new_ticket(
        &app,
        &site,
        &session,
        &json!({
            "subject": subject,
            "body": "The CSV has no rows.\n<script>alert('x')</script>\nThanks, Ada"
        }),
    );

    let mails = smtp.wait_for(1, PROMPT);
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let mail = &mails[0];

    // The envelope and the headers: from MAIL_FROM to the support address,
    // replies to the visitor, the ticket's own Message-ID.
    assert_eq!(mail.from, FROM_ADDRESS);
    assert_eq!(mail.recipients, vec![support.to_string()]);
    assert_eq!(address(&header(mail, "To")), support);
    let from = header(mail, "From");
    assert_eq!(address(&from), FROM_ADDRESS);
    assert!(from.contains("Acme Help"), "From: {from}");
    assert_eq!(
        address(&header(mail, "Reply-To")),
        "ada.lovelace@example.com"
    );
    let mail_subject = header(mail, "Subject");
    assert!(
        mail_subject.contains(SITE_NAME) && mail_subject.contains(subject),
        "Subject: {mail_subject}"
    );
    assert_eq!(
        mail.raw_header("Message-ID").as_deref(),
        Some(message_id(&ticket).as_str())
    );
    // No header came from the visitor's text.
    for line in mail.headers().lines() {
        assert!(
            !line.to_ascii_lowercase().starts_with("bcc") && !line.contains("attacker"),
            "header line {line:?} in:\n{}",
            mail.headers()
        );
    }

    // The plain text: the message, who the visitor is, the ticket id, and
    // the whole conversation with authors and times, oldest first.
    let types = mail.part_types();
    assert!(
        types.len() == 2 && types[0].starts_with("text/plain") && types[1].starts_with("text/html"),
        "{types:?}"
    );
    let text = mail.text();
    for expected in [
        "The CSV has no rows.",
        "<script>alert('x')</script>",
        "Thanks, Ada",
        "ada.lovelace@example.com",
        "cust-4242",
        anonymous_id.as_str(),
        "plan: pro",
        "seats: 12",
        ticket.as_str(),
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    // A trait with a line break stays on one line.
    assert!(
        text.lines()
            .any(|l| l.contains("first line") && l.contains("evil@attacker.test")),
        "{text}"
    );
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with("Bcc:")),
        "{text}"
    );
    let detail = app.get(&detail_path(&site.site_id, &session.0), Some(&site.token));
    assert_eq!(detail.status, 200, "{}", detail.body);
    let timeline = detail.body["messages"]
        .as_array()
        .expect("messages")
        .clone();
    assert_eq!(timeline.len(), 4, "{}", detail.body);
    let heads = assert_transcript(&text, &timeline);
    assert!(
        heads[3].contains("DOWN") && !heads[1].contains("DOWN"),
        "the down-voted answer is marked: {heads:#?}"
    );

    // The HTML part says the same, with everything the visitor typed
    // escaped.
    let html = mail.html().expect("an HTML part");
    assert!(!html.to_ascii_lowercase().contains("<script"), "{html}");
    assert!(html.contains("&lt;script&gt;alert("), "{html}");
    for expected in [ticket.as_str(), "cust-4242", anonymous_id.as_str()] {
        assert!(html.contains(expected), "{expected:?} not in:\n{html}");
    }

    // The dashboard shows it sent, at the first attempt, to the address.
    let delivery = settled(&app, &site.token, &site.site_id, &ticket);
    assert_eq!(
        delivery,
        json!({"status": "SENT", "recipient": support, "attempts": 1, "lastError": null})
    );

    // Working the ticket emails nobody: not the visitor, not the team.
    for status in ["IN_PROGRESS", "RESOLVED", "OPEN", "RESOLVED"] {
        let reply = patch_status(&app, &site, &site.token, &ticket, status);
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    thread::sleep(QUIET);
    assert_eq!(smtp.messages().len(), 1, "{:#?}", smtp.messages());
    assert_eq!(
        smtp.connections(),
        1,
        "no SMTP connection after the ticket's email"
    );
    let after = dashboard_ticket(&app, &site.token, &site.site_id, &ticket);
    assert_eq!(after["status"], "RESOLVED");
    assert_eq!(after["delivery"], delivery);
}

#[test]
fn without_an_override_the_owner_receives_it_and_without_an_owner_nobody_does() {
    let logs = Logs::capture();
    let smtp = FakeSmtpServer::start();
    let app = mail_app!(|c| c.smtp_url = Some(smtp.url()));
    let owned = ticket_site(&app, "mail-owner.example.com", None);
    let owner = owner_email(&app, &owned);

    // A tenant without an owner: the API never removes the last one, so
    // the row goes behind its back; an ADMIN still reads the Tickets tab.
    let ownerless = ticket_site(&app, "mail-ownerless.example.com", None);
    let admin = app.member(&ownerless.token, "ADMIN");
    let mut conn = chatdesk_store::connect(&app.config.database_url).expect("database");
    let removed = diesel::delete(
        tenant_members::table.filter(tenant_members::id.eq(&ownerless.tenant.owner_id)),
    )
    .execute(&mut conn)
    .expect("remove the owner");
    assert_eq!(removed, 1);
    assert_eq!(app.get("/api/v1/me", Some(&ownerless.token)).status, 401);

    let (session, _) = unhappy_visitor(
        &app,
        &ownerless,
        json!({"traits": {"email": "grace@example.org"}}),
        &["Export invoices, please"],
    );
    let orphan = new_ticket(
        &app,
        &ownerless,
        &session,
        &json!({"subject": "Nobody home?", "body": "Is anyone there?"}),
    );

    // The owned site's visitor opens one, typing their address.
    let (session, _) = unhappy_visitor(&app, &owned, json!({}), &["How do I export invoices?"]);
    let ticket = new_ticket(
        &app,
        &owned,
        &session,
        &json!({"email": "Linus@Example.net", "subject": "Export", "body": "Empty."}),
    );

    smtp.wait_for(1, PROMPT);
    thread::sleep(QUIET);
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "only the owned site's email: {mails:#?}");
    let mail = &mails[0];
    assert_eq!(mail.recipients, vec![owner.clone()]);
    assert_eq!(address(&header(mail, "To")), owner);
    assert_eq!(address(&header(mail, "Reply-To")), "linus@example.net");
    assert_eq!(mails_of(&mails, &ticket).len(), 1);
    let delivery = settled(&app, &owned.token, &owned.site_id, &ticket);
    assert_eq!(
        delivery,
        json!({"status": "SENT", "recipient": owner, "attempts": 1, "lastError": null})
    );

    // Nobody to send to: stored, listed, marked NO_RECIPIENT, never sent.
    let list = app.get(
        &format!("/api/v1/sites/{}/tickets", ownerless.site_id),
        Some(&admin),
    );
    assert_eq!(list.status, 200, "{}", list.body);
    let items = list.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{}", list.body);
    assert_eq!(items[0]["id"], orphan.as_str());
    assert_eq!(items[0]["subject"], "Nobody home?");
    let no_recipient =
        json!({"status": "NO_RECIPIENT", "recipient": null, "attempts": 0, "lastError": null});
    assert_eq!(items[0]["delivery"], no_recipient);
    let read = dashboard_ticket(&app, &admin, &ownerless.site_id, &orphan);
    assert_eq!(read["delivery"], no_recipient);
    assert!(mails_of(&mails, &orphan).is_empty());

    if let Some(logs) = logs {
        logs.assert_warning(&["no recipient", &orphan]);
    }
}

#[test]
fn an_email_queued_while_the_smtp_server_is_down_goes_out_when_it_comes_back() {
    let logs = Logs::capture();
    let addr = dead_address();
    let app = mail_app!(|c| c.smtp_url = Some(format!("smtp://{addr}")));
    let site = ticket_site(&app, "mail-outage.example.com", None);
    let owner = owner_email(&app, &site);
    let (session, _) = unhappy_visitor(
        &app,
        &site,
        json!({"traits": {"email": "ada@example.com"}}),
        &["How do I export invoices?"],
    );
    let opened = Instant::now();
    let ticket = new_ticket(
        &app,
        &site,
        &session,
        &json!({"subject": "Export", "body": "Empty."}),
    );

    // Nothing listens: the dashboard shows the email waiting, tried, and why.
    let waiting = wait_for_delivery(
        &app,
        &site.token,
        &site.site_id,
        &ticket,
        "PENDING after a failed attempt",
        Duration::from_secs(5),
        |d| delivery_status(d) == "PENDING" && attempts(d) >= 1 && d["lastError"].is_string(),
    );
    assert_eq!(waiting["recipient"], owner.as_str());
    assert!(
        !waiting["lastError"].as_str().unwrap_or_default().is_empty(),
        "{waiting}"
    );
    if let Some(logs) = &logs {
        logs.assert_warning(&["send error", &ticket]);
    }

    // A short outage (about 3 s), then the server is back on the same port.
    thread::sleep(Duration::from_secs(3).saturating_sub(opened.elapsed()));
    let before = dashboard_ticket(&app, &site.token, &site.site_id, &ticket)["delivery"].clone();
    assert_eq!(delivery_status(&before), "PENDING", "{before}");
    let smtp = FakeSmtpServer::start_at(addr).expect("the SMTP server back on its port");
    let back = Instant::now();
    // The next attempt comes within the current wait (2, 4, 8 s …; one
    // more failure may have slipped in while the server started).
    let failed = u32::try_from(attempts(&before)).unwrap_or(u32::MAX).min(5);
    let wait = Duration::from_secs((2u64 << failed).min(60)) + SLACK;
    let mails = smtp.wait_for(1, wait);
    assert_eq!(
        mails.len(),
        1,
        "no email within {wait:?} of the server's return (delivery before: {before})"
    );
    let took = back.elapsed();
    assert_eq!(mails_of(&mails, &ticket).len(), 1, "{mails:#?}");
    assert_eq!(mails[0].recipients, vec![owner.clone()]);

    let sent = wait_for_delivery(
        &app,
        &site.token,
        &site.site_id,
        &ticket,
        "SENT",
        Duration::from_secs(5),
        |d| delivery_status(d) == "SENT",
    );
    assert!(attempts(&sent) > attempts(&before), "{before} then {sent}");
    assert_eq!(sent["lastError"], Value::Null, "{sent}");
    assert_eq!(sent["recipient"], owner.as_str());
    thread::sleep(QUIET);
    assert_eq!(smtp.messages().len(), 1, "sent once");
    eprintln!(
        "outage: {} failed attempt(s) before the server came back ({}); delivered {took:?} after",
        attempts(&before),
        before["lastError"]
    );
}

#[test]
fn emails_left_undelivered_by_a_stopped_server_are_sent_once_by_the_next() {
    let dead = dead_address();
    let mut app = mail_app!(|c| c.smtp_url = Some(format!("smtp://{dead}")));
    let site = ticket_site(&app, "mail-restart.example.com", None);
    let owner = owner_email(&app, &site);
    let (session, _) = unhappy_visitor(
        &app,
        &site,
        json!({"traits": {"email": "ada@example.com"}}),
        &["How do I export invoices?"],
    );
    let tickets: Vec<String> = (0..5)
        .map(|i| {
            new_ticket(
                &app,
                &site,
                &session,
                &json!({"subject": format!("Ticket {i}"), "body": "Help."}),
            )
        })
        .collect();
    // Each has been tried and is still waiting when the server stops.
    for ticket in &tickets {
        wait_for_delivery(
            &app,
            &site.token,
            &site.site_id,
            ticket,
            "PENDING after a failed attempt",
            Duration::from_secs(5),
            |d| delivery_status(d) == "PENDING" && attempts(d) >= 1,
        );
    }

    // A new server on the same database, with a working SMTP server.
    let smtp = FakeSmtpServer::start();
    app.restart_with(|c| c.smtp_url = Some(smtp.url()));
    let arrived = smtp.wait_for(tickets.len(), Duration::from_secs(20));
    assert_eq!(arrived.len(), tickets.len(), "{arrived:#?}");
    thread::sleep(QUIET);
    let mails = smtp.messages();
    assert_eq!(mails.len(), tickets.len(), "each exactly once: {mails:#?}");
    let ids: BTreeSet<String> = mails
        .iter()
        .filter_map(|m| m.raw_header("Message-ID"))
        .collect();
    let expected: BTreeSet<String> = tickets.iter().map(|t| message_id(t)).collect();
    assert_eq!(ids, expected);
    for mail in &mails {
        assert_eq!(mail.recipients, vec![owner.clone()]);
    }
    for ticket in &tickets {
        let delivery =
            dashboard_ticket(&app, &site.token, &site.site_id, ticket)["delivery"].clone();
        assert_eq!(delivery_status(&delivery), "SENT", "{delivery}");
        assert_eq!(delivery["lastError"], Value::Null, "{delivery}");
    }
}

#[test]
fn resend_gets_the_email_with_its_idempotency_key_and_its_refusals_and_outages_show() {
    let resend = FakeResendServer::start();
    let key = "re_test_5f3c1a9d";
    let app = mail_app!(|c| {
        c.resend_api_key = Some(key.to_string());
        c.resend_base_url = Some(resend.url());
    });
    let site = ticket_site(&app, "mail-resend.example.com", None);
    let owner = owner_email(&app, &site);
    let (session, anonymous_id) = unhappy_visitor(
        &app,
        &site,
        json!({"externalId": "cust-7", "traits": {"email": "ada@example.com"}}),
        &["Export invoices <b>now</b>"],
    );
    let body = |subject: &str| json!({"subject": subject, "body": "It is <i>empty</i>."});

    // Accepted: one request with the key, the outbox row as the
    // idempotency key, and the whole email.
    let ticket = new_ticket(&app, &site, &session, &body("Export is empty"));
    let delivered = resend.wait_for_delivered(1, PROMPT);
    assert_eq!(delivered.len(), 1, "{:#?}", resend.requests());
    let request = &delivered[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/emails");
    assert_eq!(request.bearer(), Some(key));
    let delivery_id = outbox_id(&app, &ticket);
    assert_eq!(request.idempotency_key(), Some(delivery_id.as_str()));
    let from = request.from().expect("from");
    assert_eq!(address(from), FROM_ADDRESS);
    assert!(from.contains("Acme Help"), "{from}");
    assert_eq!(request.to(), vec![owner.clone()]);
    assert_eq!(request.reply_to(), vec!["ada@example.com".to_string()]);
    let subject = request.subject().expect("subject");
    assert!(
        subject.contains(SITE_NAME) && subject.contains("Export is empty"),
        "{subject}"
    );
    assert_eq!(request.message_id(), Some(message_id(&ticket).as_str()));
    let text = request.text().expect("text");
    for expected in [
        "It is <i>empty</i>.",
        "Export invoices <b>now</b>",
        "cust-7",
        anonymous_id.as_str(),
        ticket.as_str(),
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    let html = request.html().expect("html");
    assert!(
        html.contains("&lt;i&gt;empty&lt;/i&gt;") && !html.contains("<i>empty"),
        "{html}"
    );
    assert!(html.contains("&lt;b&gt;now&lt;/b&gt;"), "{html}");
    let sent = settled(&app, &site.token, &site.site_id, &ticket);
    assert_eq!(
        sent,
        json!({"status": "SENT", "recipient": owner, "attempts": 1, "lastError": null})
    );

    // Refused (422): FAILED at once with Resend's reason, never retried.
    let refusal = "The `to` field must be a valid email address.";
    resend.reply_next(ResendReply::error(422, "validation_error", refusal));
    let refused = new_ticket(&app, &site, &session, &body("Refused"));
    let failed = wait_for_delivery(
        &app,
        &site.token,
        &site.site_id,
        &refused,
        "FAILED",
        PROMPT,
        |d| delivery_status(d) != "PENDING",
    );
    let failed_at = Instant::now();
    assert_eq!(delivery_status(&failed), "FAILED", "{failed}");
    assert_eq!(attempts(&failed), 1, "{failed}");
    let error = failed["lastError"].as_str().unwrap_or_default();
    assert!(error.contains(refusal), "{failed}");
    assert!(!error.contains(key), "the API key never shows: {failed}");

    // Unavailable (503): PENDING with the cause, then SENT once Resend
    // recovers, with the same idempotency key each time.
    resend.set_reply(ResendReply::error(
        503,
        "service_unavailable",
        "Resend is down for maintenance",
    ));
    let delayed = new_ticket(&app, &site, &session, &body("Delayed"));
    let waiting = wait_for_delivery(
        &app,
        &site.token,
        &site.site_id,
        &delayed,
        "PENDING after a 503",
        PROMPT,
        |d| delivery_status(d) == "PENDING" && attempts(d) >= 1 && d["lastError"].is_string(),
    );
    assert!(
        waiting["lastError"]
            .as_str()
            .unwrap_or_default()
            .contains("Resend is down for maintenance"),
        "{waiting}"
    );
    resend.reset();
    let failed_before = u32::try_from(attempts(&waiting)).unwrap_or(u32::MAX).min(5);
    let recovered = wait_for_delivery(
        &app,
        &site.token,
        &site.site_id,
        &delayed,
        "SENT after Resend recovered",
        Duration::from_secs((2u64 << failed_before).min(60)) + SLACK,
        |d| delivery_status(d) == "SENT",
    );
    assert!(attempts(&recovered) >= 2, "{recovered}");
    assert_eq!(recovered["lastError"], Value::Null, "{recovered}");

    // Past the first retry's wait since the refusal: still one request.
    thread::sleep((Duration::from_secs(2) + SLACK).saturating_sub(failed_at.elapsed()));
    let requests = resend.requests();
    let refused_key = outbox_id(&app, &refused);
    let delayed_key = outbox_id(&app, &delayed);
    let with_key = |key: &str| {
        requests
            .iter()
            .filter(|r| r.idempotency_key() == Some(key))
            .count()
    };
    assert_eq!(with_key(&refused_key), 1, "a refusal is not retried");
    assert_eq!(
        u64::try_from(with_key(&delayed_key)).unwrap_or_default(),
        attempts(&recovered),
        "every attempt with the same idempotency key"
    );
    let delivered: Vec<Option<String>> = resend
        .delivered()
        .iter()
        .map(|r| r.message_id().map(str::to_string))
        .collect();
    assert_eq!(
        delivered,
        vec![Some(message_id(&ticket)), Some(message_id(&delayed))]
    );
    assert_eq!(
        dashboard_ticket(&app, &site.token, &site.site_id, &refused)["delivery"],
        failed,
        "FAILED stays"
    );
}

#[test]
fn without_a_mail_service_the_email_is_logged_with_its_warning() {
    let logs = Logs::capture();
    let app = mail_app!(|_| {});
    let site = ticket_site(&app, "mail-log-only.example.com", None);
    let owner = owner_email(&app, &site);
    let (session, _) = unhappy_visitor(
        &app,
        &site,
        json!({"traits": {"email": "ada@example.com"}}),
        &["How do I export invoices?"],
    );
    let ticket = new_ticket(
        &app,
        &site,
        &session,
        &json!({"subject": "Export", "body": "Empty."}),
    );
    let delivery = wait_for_delivery(
        &app,
        &site.token,
        &site.site_id,
        &ticket,
        "LOG_ONLY",
        PROMPT,
        |d| delivery_status(d) != "PENDING",
    );
    assert_eq!(delivery_status(&delivery), "LOG_ONLY", "{delivery}");
    assert_eq!(delivery["recipient"], owner.as_str());
    assert_eq!(delivery["lastError"], Value::Null);
    if let Some(logs) = logs {
        logs.assert_warning(&["no API key", &format!("ticket-{ticket}@{MAIL_DOMAIN}")]);
    }
}

#[test]
fn a_widget_retry_with_the_same_idempotency_key_opens_one_ticket_and_sends_one_email() {
    let smtp = FakeSmtpServer::start();
    let app = mail_app!(|c| c.smtp_url = Some(smtp.url()));
    let site = ticket_site(&app, "mail-retry-key.example.com", None);
    let (session, _) = unhappy_visitor(
        &app,
        &site,
        json!({"traits": {"email": "ada@example.com"}}),
        &["How do I export invoices?"],
    );
    // The widget sends the same request twice (its first answer was lost
    // on a flaky network).
    let body = json!({"subject": "Export", "body": "Empty."}).to_string();
    let path = format!("/api/v1/sdk/chat/sessions/{}/tickets", session.0);
    let headers = [
        ("X-Chatdesk-Site-Key", site.key.as_str()),
        ("X-Chatdesk-Session", session.1.as_str()),
        ("Idempotency-Key", "widget-retry-1"),
    ];
    let first = app.send("POST", &path, None, Some(&body), &headers);
    assert_eq!(first.status, 201, "{}", first.body);
    let again = app.send("POST", &path, None, Some(&body), &headers);
    assert_eq!(again.status, 201, "{}", again.body);
    let ticket = first.body["id"].as_str().expect("id").to_string();

    smtp.wait_for(1, PROMPT);
    thread::sleep(QUIET);
    let mails = smtp.messages();
    let listed = app.get(
        &format!("/api/v1/sites/{}/tickets", site.site_id),
        Some(&site.token),
    );
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(1),
        "one ticket listed: {}",
        listed.body
    );
    assert_eq!(
        again.body["id"], first.body["id"],
        "the retry answers the same ticket"
    );
    assert_eq!(mails.len(), 1, "one email: {mails:#?}");
    assert_eq!(mails_of(&mails, &ticket).len(), 1);
}
