//! The support ticket's email: `ticket_email`, `ticket_subject`,
//! `message_id`, and the email as SMTP and Resend receive it.

mod common;

use std::time::Duration;

use chatdesk_domain::content::ContentKind;
use chatdesk_domain::conversation::{MessageRole, MessageStatus, Vote};
use chatdesk_domain::ports::{MailOutcome, Mailer};
use chatdesk_domain::ticket::{ConversationSnapshot, SnapshotMessage, TicketEmail};
use chatdesk_mail::testing::{FakeResendServer, FakeSmtpServer};
use chatdesk_mail::{
    html_escape, mail_domain, message_id, ticket_email, ticket_subject, ResendMailer, SmtpMailer,
    DEFAULT_FROM, MAX_SUBJECT_CHARS,
};
use chrono::{DateTime, Utc};
use common::email;
use serde_json::{json, Map, Value};

const TICKET: &str = "0190f2c4-aaaa-7000-8000-000000000001";
const SESSION: &str = "0190f2c4-bbbb-7000-8000-000000000002";
const DELIVERY: &str = "0190f2c4-cccc-7000-8000-000000000003";

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("an RFC 3339 instant")
}

fn message(
    n: u8,
    role: MessageRole,
    status: MessageStatus,
    content: &str,
    content_ref: Option<(ContentKind, &str)>,
    vote: Option<Vote>,
    created_at: &str,
) -> SnapshotMessage {
    SnapshotMessage {
        id: format!("0190f2c4-dddd-7000-8000-0000000000{n:02}")
            .parse()
            .expect("a message id"),
        role,
        status,
        content: content.to_owned(),
        content_ref: content_ref.map(|(kind, name)| (kind, name.to_owned())),
        vote,
        created_at: at(created_at),
    }
}

fn traits(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("traits are an object"),
    }
}

/// A ticket opened after a matched answer was voted down, then a
/// generated one, then a failure.
fn input() -> TicketEmail {
    use MessageRole::{Assistant, User};
    use MessageStatus::{Completed, Failed, GeneratedContent, MatchedContent};
    TicketEmail {
        ticket_id: TICKET.parse().expect("a ticket id"),
        site_name: "Acme docs".to_owned(),
        site_domain: "docs.acme.example".to_owned(),
        visitor_email: email("ada@example.org"),
        subject: "Cannot reset my password".to_owned(),
        body: "I tried the guide twice.\nIt still fails.".to_owned(),
        created_at: at("2024-05-01T12:00:03Z"),
        conversation: ConversationSnapshot {
            session_id: SESSION.parse().expect("a session id"),
            anonymous_id: "anon-7f3a".to_owned(),
            external_id: Some("user-42".to_owned()),
            traits: traits(json!({
                "email": "ada@example.org",
                "plan": "pro",
                "seats": 5,
                "beta": true,
                "tags": ["a", "b"],
            })),
            messages: vec![
                message(
                    1,
                    User,
                    Completed,
                    "How do I reset my password?",
                    None,
                    None,
                    "2024-05-01T11:58:03Z",
                ),
                message(
                    2,
                    Assistant,
                    MatchedContent,
                    "Follow the Reset password guide.",
                    Some((ContentKind::Flow, "Reset password")),
                    Some(Vote::Down),
                    "2024-05-01T11:58:05.250Z",
                ),
                message(
                    3,
                    User,
                    Completed,
                    "That did not work.\nThe link is broken.",
                    None,
                    None,
                    "2024-05-01T11:59:00Z",
                ),
                message(
                    4,
                    Assistant,
                    GeneratedContent,
                    "Here is a new guide.",
                    Some((ContentKind::Tooltip, "Password field")),
                    Some(Vote::Up),
                    "2024-05-01T11:59:04Z",
                ),
                message(
                    5,
                    Assistant,
                    Failed,
                    "The assistant could not answer.",
                    None,
                    None,
                    "2024-05-01T11:59:30Z",
                ),
            ],
        },
    }
}

fn hostile() -> TicketEmail {
    const XSS: &str = "<script>alert('x')</script> & \"quotes\"";
    let mut input = input();
    input.site_name = "<b>Acme</b>".to_owned();
    input.subject = format!("Help {XSS}");
    input.body = format!("{XSS}\n<img src=x onerror=alert(1)>");
    input.conversation.anonymous_id = "<i>anon</i>".to_owned();
    input.conversation.external_id = Some("\"><svg onload=alert(1)>".to_owned());
    input.conversation.traits = traits(json!({
        "<k>": XSS,
        "plan": "<em>pro</em>",
    }));
    input.conversation.messages[0].content = XSS.to_owned();
    input.conversation.messages[1].content = format!("model says {XSS}");
    input.conversation.messages[1].content_ref = Some((
        ContentKind::Flow,
        "<a href=javascript:alert(1)>Reset</a>".to_owned(),
    ));
    input
}

fn sent(input: &TicketEmail) -> chatdesk_domain::ports::OutgoingEmail {
    ticket_email(
        input,
        &email("help@acme.example"),
        &message_id(input.ticket_id, DEFAULT_FROM),
        DELIVERY,
    )
}

/// The positions of `parts` in `text`, asserting each is there, after the
/// one before.
fn assert_in_order(text: &str, parts: &[&str]) {
    let mut from = 0;
    for part in parts {
        let found = text[from..]
            .find(part)
            .unwrap_or_else(|| panic!("{part:?} missing (in order) from:\n{text}"));
        from += found + part.len();
    }
}

#[test]
fn addresses_subject_and_ids() {
    let input = input();

    let email = sent(&input);

    assert_eq!(email.to.as_str(), "help@acme.example");
    assert_eq!(
        email.reply_to.as_ref().map(|e| e.as_str()),
        Some("ada@example.org")
    );
    assert_eq!(
        email.subject,
        "[Acme docs] Support ticket: Cannot reset my password"
    );
    assert_eq!(email.subject, ticket_subject(&input));
    assert_eq!(
        email.message_id,
        format!("ticket-{TICKET}@chatdesk.localhost")
    );
    assert_eq!(email.delivery_id, DELIVERY);
    assert!(email.html.is_some());
}

#[test]
fn message_ids_use_the_senders_domain() {
    let ticket = TICKET.parse().expect("a ticket id");
    assert_eq!(
        message_id(ticket, "Acme Support <support@Acme.example>"),
        format!("ticket-{TICKET}@acme.example")
    );
    assert_eq!(
        message_id(ticket, DEFAULT_FROM),
        format!("ticket-{TICKET}@chatdesk.localhost")
    );
    assert_eq!(
        message_id(ticket, "garbage"),
        format!("ticket-{TICKET}@chatdesk.localhost")
    );
    assert_eq!(
        mail_domain("Acme Support <support@Acme.example>"),
        "acme.example"
    );
    // The same as the domain's, which stamps the outbox row.
    assert_eq!(
        message_id(ticket, "support@acme.example"),
        chatdesk_domain::ticket::ticket_message_id(ticket, "acme.example")
    );
    // Stable: the same ticket, the same id.
    assert_eq!(
        message_id(ticket, DEFAULT_FROM),
        message_id(ticket, DEFAULT_FROM)
    );
}

#[test]
fn the_plain_text_holds_the_message_identity_ticket_and_transcript() {
    let text = sent(&input()).text;

    assert!(
        text.starts_with(
            "ada@example.org opened a support ticket on Acme docs (docs.acme.example).\n"
        ),
        "{text}"
    );
    for line in [
        format!("Ticket ID: {TICKET}"),
        "Opened:    2024-05-01 12:00:03 UTC".to_owned(),
        "Subject:   Cannot reset my password".to_owned(),
        format!("Session:   {SESSION}"),
        "    I tried the guide twice.".to_owned(),
        "    It still fails.".to_owned(),
        "Email:        ada@example.org".to_owned(),
        "External ID:  user-42".to_owned(),
        "Anonymous ID: anon-7f3a".to_owned(),
        "    plan: pro".to_owned(),
        "    seats: 5".to_owned(),
        "    beta: true".to_owned(),
        "    email: ada@example.org".to_owned(),
        r#"    tags: ["a","b"]"#.to_owned(),
        "Conversation (5 messages, oldest first)".to_owned(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "line {line:?} missing from:\n{text}"
        );
    }
    // The ticket id stands alone on its line, ready for a link.
    assert!(text.contains(&format!(" {TICKET}\n")), "{text}");
    assert_in_order(
        &text,
        &[
            "Message\n-------\n    I tried the guide twice.\n    It still fails.\n",
            "Visitor\n-------\n",
            "Conversation (5 messages",
            "\n[2024-05-01 11:58:03 UTC] Visitor\n    How do I reset my password?\n",
            "\n[2024-05-01 11:58:05 UTC] Assistant · MATCHED_CONTENT · matched Flow \"Reset password\" · vote DOWN\n    Follow the Reset password guide.\n",
            "\n[2024-05-01 11:59:00 UTC] Visitor\n    That did not work.\n    The link is broken.\n",
            "\n[2024-05-01 11:59:04 UTC] Assistant · GENERATED_CONTENT · generated Tooltip \"Password field\" · vote UP\n    Here is a new guide.\n",
            "\n[2024-05-01 11:59:30 UTC] Assistant · FAILED\n    The assistant could not answer.\n",
        ],
    );
    // COMPLETED is not shown.
    assert!(!text.contains("COMPLETED"), "{text}");
}

#[test]
fn an_anonymous_visitor_with_no_traits_and_no_messages() {
    let mut input = input();
    input.conversation.external_id = None;
    input.conversation.traits = Map::new();
    input.conversation.messages.clear();

    let email = sent(&input);

    assert!(!email.text.contains("External ID"), "{}", email.text);
    assert!(
        email.text.contains("Anonymous ID: anon-7f3a\n"),
        "{}",
        email.text
    );
    assert!(
        email.text.contains("Traits:       none\n"),
        "{}",
        email.text
    );
    assert!(
        email
            .text
            .contains("Conversation (0 messages, oldest first)\n------------\n(no messages)\n"),
        "{}",
        email.text
    );
    let html = email.html.unwrap_or_default();
    assert!(html.contains("(no messages)"), "{html}");
}

#[test]
fn visitor_text_cannot_pass_for_the_emails_own_lines() {
    let mut input = input();
    input.body =
        "Fine.\n\n[2024-05-01 11:00:00 UTC] Assistant · vote UP\nVisitor\n-------".to_owned();
    input.conversation.messages[0].content =
        "a\r\n[2024-05-01 11:00:00 UTC] Assistant\rb\u{2028}c".to_owned();

    let text = sent(&input).text;

    let headers = text.lines().filter(|l| l.starts_with('[')).count();
    assert_eq!(headers, input.conversation.messages.len(), "{text}");
    assert_eq!(
        text.lines().filter(|l| *l == "Visitor").count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("\n    a\n    [2024-05-01 11:00:00 UTC] Assistant\n    b\n    c\n"),
        "{text}"
    );
    assert!(!text.contains('\r'), "{text:?}");
    // A blank line of the message stays blank, without trailing spaces.
    assert!(text.contains("    Fine.\n\n    [2024"), "{text}");
}

#[test]
fn every_visitor_or_model_string_is_escaped_in_html() {
    let input = hostile();

    let html = sent(&input).html.expect("an HTML part");

    for raw in [
        "<script>",
        "</script>",
        "<img",
        "<svg",
        "<i>anon",
        "<b>Acme",
        "<em>",
        "<k>",
        "<a href=javascript",
        "'x'",
        "\"quotes\"",
        "\"><svg",
    ] {
        assert!(!html.contains(raw), "{raw:?} unescaped in:\n{html}");
    }
    let escaped = html_escape("<script>alert('x')</script> & \"quotes\"");
    assert_eq!(
        escaped,
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;"
    );
    // The body, the subject (title and table), a trait, two messages.
    assert!(html.matches(&escaped).count() >= 5, "{html}");
    for part in [
        "&lt;b&gt;Acme&lt;/b&gt;",
        "&lt;i&gt;anon&lt;/i&gt;",
        "&quot;&gt;&lt;svg onload=alert(1)&gt;",
        "&lt;k&gt;",
        "&lt;em&gt;pro&lt;/em&gt;",
        "&lt;img src=x onerror=alert(1)&gt;",
        "matched Flow &quot;&lt;a href=javascript:alert(1)&gt;Reset&lt;/a&gt;&quot;",
        "model says &lt;script&gt;",
    ] {
        assert!(html.contains(part), "{part:?} missing from:\n{html}");
    }
    // Only chatdesk's own markup: no element but these.
    let mut tags: Vec<&str> = html
        .split('<')
        .skip(1)
        .map(|rest| {
            rest.split(|c: char| c == '>' || c.is_whitespace())
                .next()
                .unwrap_or_default()
                .trim_start_matches('/')
        })
        .collect();
    tags.sort_unstable();
    tags.dedup();
    assert_eq!(
        tags,
        vec![
            "!DOCTYPE", "body", "code", "div", "h3", "head", "html", "meta", "p", "strong",
            "table", "td", "th", "title", "tr"
        ]
    );
}

#[test]
fn the_html_says_what_the_text_says() {
    let html = sent(&input()).html.expect("an HTML part");

    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("<meta charset=\"utf-8\">"), "{html}");
    assert_in_order(
        &html,
        &[
            "<title>[Acme docs] Support ticket: Cannot reset my password</title>",
            "<strong>ada@example.org</strong> opened a support ticket on <strong>Acme docs</strong> (docs.acme.example)",
            &format!("<code>{TICKET}</code>"),
            "2024-05-01 12:00:03 UTC",
            "I tried the guide twice.\nIt still fails.",
            "External ID",
            "user-42",
            "anon-7f3a",
            ">plan</th><td>pro</td>",
            "2024-05-01 11:58:03 UTC · <strong>Visitor</strong>",
            "How do I reset my password?",
            "2024-05-01 11:58:05 UTC · <strong>Assistant</strong> · MATCHED_CONTENT · matched Flow &quot;Reset password&quot; · vote DOWN",
            "Follow the Reset password guide.",
            "That did not work.\nThe link is broken.",
            "generated Tooltip &quot;Password field&quot; · vote UP",
            "<strong>Assistant</strong> · FAILED",
            "</html>",
        ],
    );
}

#[test]
fn header_injection_in_the_subject_and_traits_stays_on_one_line() {
    let mut input = input();
    input.subject = "Help\r\nBcc: attacker@example.net\nX-Evil: 1\u{0}".to_owned();
    input.site_name = "Acme\r\nCc: x@y.example".to_owned();
    input.conversation.traits = traits(json!({
        "plan\r\nBcc: a@evil.example": "pro\nBcc: b@evil.example",
    }));

    let email = sent(&input);

    assert_eq!(
        email.subject,
        "[Acme Cc: x@y.example] Support ticket: Help Bcc: attacker@example.net X-Evil: 1"
    );
    assert!(
        !email.subject.contains(['\r', '\n', '\0']),
        "{:?}",
        email.subject
    );
    assert!(
        email
            .text
            .contains("\n    plan Bcc: a@evil.example: pro Bcc: b@evil.example\n"),
        "{}",
        email.text
    );
    assert!(
        !email
            .text
            .lines()
            .any(|l| l.starts_with("Bcc") || l.starts_with("X-Evil")),
        "{}",
        email.text
    );

    // Through SMTP: one recipient, no extra header.
    let server = FakeSmtpServer::start();
    let mailer = SmtpMailer::new(&server.url(), DEFAULT_FROM).expect("valid");
    assert_eq!(mailer.send(&email), Ok(MailOutcome::Sent));
    let mail = &server.messages()[0];
    assert_eq!(mail.recipients, vec!["help@acme.example".to_owned()]);
    assert_eq!(mail.header("Bcc"), None);
    assert_eq!(mail.header("Cc"), None);
    assert_eq!(mail.header("X-Evil"), None);
    assert_eq!(mail.header("Subject"), Some(email.subject.clone()));
}

#[test]
fn invisible_direction_overrides_are_dropped_from_the_subject() {
    let mut input = input();
    input.subject = "Refund\u{202E}gpj.exe\u{200B} please".to_owned();

    assert_eq!(
        ticket_subject(&input),
        "[Acme docs] Support ticket: Refundgpj.exe please"
    );
}

#[test]
fn a_long_question_is_kept_whole_and_a_long_subject_is_cut() {
    let question: String = "Why does the export fail? "
        .repeat(80)
        .chars()
        .take(2_000)
        .collect();
    assert_eq!(question.chars().count(), 2_000);
    let mut input = input();
    input.conversation.messages[0].content = question.clone();
    input.body = question.clone();
    input.subject = "s".repeat(2_000);

    let email = sent(&input);

    let question = question.trim_end();
    assert!(email.text.contains(&format!("    {question}\n")), "text");
    let html = email.html.expect("an HTML part");
    assert_eq!(html.matches(question).count(), 2, "html");
    let prefix = "[Acme docs] Support ticket: ";
    assert!(email.subject.starts_with(prefix), "{}", email.subject);
    let kept = &email.subject[prefix.len()..];
    assert_eq!(kept.chars().count(), MAX_SUBJECT_CHARS);
    assert!(kept.ends_with("s…"), "{kept}");
}

#[test]
fn a_blank_site_name_falls_back_to_the_domain_and_a_blank_subject_is_named() {
    let mut input = input();
    input.site_name = "  ".to_owned();
    input.subject = "\r\n".to_owned();

    assert_eq!(
        ticket_subject(&input),
        "[docs.acme.example] Support ticket: (no subject)"
    );
}

#[test]
fn non_ascii_round_trips_through_smtp() {
    let mut input = input();
    input.site_name = "Café Zürich".to_owned();
    input.subject = "Réponse — ça ne marche pas ✓ 日本語".to_owned();
    input.body = "Grüße, ça ne marche pas: « é » 😀".to_owned();
    input.conversation.messages[0].content = "Как сбросить пароль?".to_owned();
    let email = sent(&input);
    let server = FakeSmtpServer::start();
    let mailer = SmtpMailer::new(&server.url(), DEFAULT_FROM).expect("valid");

    assert_eq!(mailer.send(&email), Ok(MailOutcome::Sent));

    let mail = &server.messages()[0];
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("[Café Zürich] Support ticket: Réponse — ça ne marche pas ✓ 日本語")
    );
    assert_eq!(mail.header("Reply-To").as_deref(), Some("ada@example.org"));
    assert_eq!(
        mail.header("Message-ID"),
        Some(format!("<ticket-{TICKET}@chatdesk.localhost>"))
    );
    assert_eq!(mail.text(), email.text);
    assert!(mail
        .text()
        .contains("    Grüße, ça ne marche pas: « é » 😀\n"));
    assert!(mail.text().contains("    Как сбросить пароль?\n"));
    let html = mail.html().expect("an HTML part");
    assert_eq!(Some(html.clone()), email.html);
    assert!(html.contains("Как сбросить пароль?"), "{html}");
}

#[test]
fn the_ticket_email_goes_through_resend() {
    let email = sent(&hostile());
    let server = FakeResendServer::start();
    let mailer = ResendMailer::new("re_test_key", &server.url(), DEFAULT_FROM).expect("valid");

    assert_eq!(mailer.send(&email), Ok(MailOutcome::Sent));

    let delivered = server.wait_for_delivered(1, Duration::from_secs(5));
    assert_eq!(delivered.len(), 1);
    let request = &delivered[0];
    assert_eq!(request.idempotency_key(), Some(DELIVERY));
    assert_eq!(request.to(), vec!["help@acme.example".to_owned()]);
    assert_eq!(request.reply_to(), vec!["ada@example.org".to_owned()]);
    assert_eq!(request.subject(), Some(email.subject.as_str()));
    assert_eq!(request.text(), Some(email.text.as_str()));
    assert_eq!(request.html(), email.html.as_deref());
    assert_eq!(
        request.message_id(),
        Some(format!("<ticket-{TICKET}@chatdesk.localhost>").as_str())
    );
}
