//! The support ticket's email: subject, Reply-To, a plain-text body and
//! an HTML alternative, written from the domain's [`TicketEmail`].
//!
//! Everything a visitor, a team member or the model wrote is treated as
//! untrusted: one-line fields (subject, site name, ids, trait keys and
//! values) lose their line breaks, control characters and invisible
//! direction overrides; multi-line texts (the visitor's message, each
//! message of the transcript) keep their line breaks but lose other
//! control characters, and are indented in the plain text so no line of
//! theirs can pass for one of the email's own; and every one of them is
//! HTML-escaped ([`html_escape`]) in the HTML part.

use std::fmt::Write as _;

use chatdesk_domain::content::ContentKind;
use chatdesk_domain::conversation::{MessageRole, MessageStatus};
use chatdesk_domain::email::Email;
use chatdesk_domain::ids::TicketId;
use chatdesk_domain::ports::OutgoingEmail;
use chatdesk_domain::ticket::{
    ticket_message_id, SnapshotMessage, TicketEmail, DEFAULT_MAIL_DOMAIN,
};
use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use serde_json::Value;

/// The most characters of the ticket's own subject kept in the email's
/// subject (longer ones are cut and end with `…`).
pub const MAX_SUBJECT_CHARS: usize = 150;

/// The most characters of the site's name kept in the subject.
const MAX_SITE_NAME_CHARS: usize = 40;

/// The most characters of one trait (key or value) shown.
const MAX_TRAIT_CHARS: usize = 500;

/// The indentation of visitor- and model-written text in the plain body.
const INDENT: &str = "    ";

/// The domain of `MAIL_FROM`'s address, lower-cased (`example.com` for
/// `Support <help@Example.COM>`), or the domain's
/// [`DEFAULT_MAIL_DOMAIN`] (`chatdesk.localhost`) when `mail_from` is not
/// a mailbox with a plain host name: the right-hand side of every ticket
/// email's Message-ID. The binary hands it to the visitor service
/// (`with_mail_domain`), which stamps each outbox row's Message-ID with
/// [`ticket_message_id`].
pub fn mail_domain(mail_from: &str) -> String {
    mail_from
        .trim()
        .parse::<Mailbox>()
        .ok()
        .map(|mailbox| mailbox.email.domain().to_ascii_lowercase())
        .filter(|domain| {
            !domain.is_empty()
                && !domain.starts_with(['.', '-'])
                && domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        })
        .unwrap_or_else(|| DEFAULT_MAIL_DOMAIN.to_owned())
}

/// A stable Message-ID (without angle brackets) for a ticket's email:
/// `ticket-<ticket id>@<domain of MAIL_FROM>` (see [`mail_domain`]), e.g.
/// `ticket-0190f2c4-…@example.com`; the domain's [`ticket_message_id`]
/// with that domain, so the two never differ.
///
/// A ticket has exactly one email, so its id names the email: every
/// attempt to deliver it, after a retry or a restart, carries the same
/// Message-ID (a mail client shows duplicates as one message), and the id
/// found in a mail client leads to the ticket. The domain is the sender's,
/// as RFC 5322 advises, so ids stay unique across installations.
pub fn message_id(ticket: TicketId, mail_from: &str) -> String {
    ticket_message_id(ticket, &mail_domain(mail_from))
}

/// The email's subject: `[<site name>] Support ticket: <ticket subject>`,
/// on one line, the ticket's subject cut at [`MAX_SUBJECT_CHARS`] and the
/// site's name at 40 (the site's domain when it has no name).
pub fn ticket_subject(input: &TicketEmail) -> String {
    let subject = one_line(&input.subject, MAX_SUBJECT_CHARS);
    let subject = if subject.is_empty() {
        "(no subject)".to_owned()
    } else {
        subject
    };
    format!("[{}] Support ticket: {subject}", site_name(input))
}

/// The email for a support ticket, to `to`, with `message_id` (see
/// [`message_id`]) and `delivery_id` (the outbox row's id).
///
/// - Reply-To is the visitor's address, so a reply reaches them.
/// - The subject is [`ticket_subject`].
/// - The plain-text body holds the visitor's message; their identity
///   (email, external id, anonymous id, traits as `key: value` lines); the
///   ticket's id on a line of its own (to paste into the dashboard or a
///   link); and the whole transcript, oldest first: each message's time
///   (UTC), author, status (unless COMPLETED), the kind and name of the
///   Flow or Tooltip it matched or generated, the visitor's vote, and its
///   text.
/// - The HTML alternative says the same, every string escaped.
pub fn ticket_email(
    input: &TicketEmail,
    to: &Email,
    message_id: &str,
    delivery_id: &str,
) -> OutgoingEmail {
    OutgoingEmail {
        to: to.clone(),
        reply_to: Some(input.visitor_email.clone()),
        subject: ticket_subject(input),
        text: plain_text(input),
        html: Some(html(input)),
        message_id: message_id.to_owned(),
        delivery_id: delivery_id.to_owned(),
    }
}

/// Escapes text for HTML content and quoted attribute values: `&`, `<`,
/// `>`, `"` and `'`.
pub fn html_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The site's name, or its domain when the name is blank, on one line.
fn site_name(input: &TicketEmail) -> String {
    let name = one_line(&input.site_name, MAX_SITE_NAME_CHARS);
    if name.is_empty() {
        one_line(&input.site_domain, MAX_SITE_NAME_CHARS)
    } else {
        name
    }
}

/// Whether a character is invisible formatting that can reorder or hide
/// text (bidirectional overrides and isolates, zero-width characters, the
/// byte order mark).
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}'
        | '\u{FEFF}')
}

/// One line: control characters and every kind of white space become one
/// space, invisible formatting goes, ends are trimmed, and the text is cut
/// at `max` characters (ending with `…` when cut).
fn one_line(text: &str, max: usize) -> String {
    let mut line = String::with_capacity(text.len().min(max * 4));
    let mut space = false;
    for c in text.chars() {
        if is_invisible(c) {
            continue;
        }
        if c.is_control() || c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !line.is_empty() {
            line.push(' ');
        }
        space = false;
        line.push(c);
    }
    cut(line, max)
}

fn cut(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// Several lines: `\r\n`, `\r` and the Unicode line and paragraph
/// separators become `\n`; tabs stay; other control characters and
/// invisible formatting go; trailing white space of each line and blank
/// lines at both ends go.
fn multi_line(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let cleaned: String = text
        .chars()
        .filter_map(|c| match c {
            '\r' | '\u{2028}' | '\u{2029}' | '\u{0085}' => Some('\n'),
            '\n' | '\t' => Some(c),
            c if c.is_control() || is_invisible(c) => None,
            c => Some(c),
        })
        .collect();
    let lines: Vec<&str> = cleaned.lines().map(str::trim_end).collect();
    let first = lines.iter().position(|l| !l.is_empty());
    let last = lines.iter().rposition(|l| !l.is_empty());
    match (first, last) {
        (Some(first), Some(last)) => lines[first..=last].join("\n"),
        _ => String::new(),
    }
}

/// Each line of `text` indented (blank lines left empty).
fn indented(text: &str) -> String {
    if text.is_empty() {
        return format!("{INDENT}(empty)");
    }
    text.lines()
        .map(|line| {
            if line.is_empty() {
                String::new()
            } else {
                format!("{INDENT}{line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn role_name(role: MessageRole) -> &'static str {
    match role {
        MessageRole::User => "Visitor",
        MessageRole::Assistant => "Assistant",
        MessageRole::System => "System",
    }
}

fn kind_name(kind: ContentKind) -> &'static str {
    match kind {
        ContentKind::Flow => "Flow",
        ContentKind::Tooltip => "Tooltip",
    }
}

/// A trait's value as one line: a string as itself, anything else as
/// compact JSON.
fn trait_value(value: &Value) -> String {
    match value {
        Value::String(text) => one_line(text, MAX_TRAIT_CHARS),
        other => one_line(&other.to_string(), MAX_TRAIT_CHARS),
    }
}

/// The visitor's identity as (label, value) rows, values on one line.
fn identity(input: &TicketEmail) -> Vec<(&'static str, String)> {
    let conversation = &input.conversation;
    let mut rows = vec![("Email", input.visitor_email.to_string())];
    if let Some(external) = &conversation.external_id {
        rows.push(("External ID", one_line(external, MAX_TRAIT_CHARS)));
    }
    rows.push((
        "Anonymous ID",
        one_line(&conversation.anonymous_id, MAX_TRAIT_CHARS),
    ));
    rows
}

/// The traits as (key, value) pairs, on one line each.
fn traits(input: &TicketEmail) -> Vec<(String, String)> {
    input
        .conversation
        .traits
        .iter()
        .map(|(key, value)| (one_line(key, MAX_TRAIT_CHARS), trait_value(value)))
        .collect()
}

/// What is said about a message besides its time and author: its status
/// unless COMPLETED, the guide it points at, the vote.
fn message_facts(message: &SnapshotMessage) -> Vec<String> {
    let mut facts = Vec::new();
    if message.status != MessageStatus::Completed {
        facts.push(message.status.to_string());
    }
    if let Some((kind, name)) = &message.content_ref {
        let verb = match message.status {
            MessageStatus::MatchedContent => "matched ",
            MessageStatus::GeneratedContent => "generated ",
            _ => "",
        };
        facts.push(format!(
            "{verb}{} \"{}\"",
            kind_name(*kind),
            one_line(name, MAX_TRAIT_CHARS)
        ));
    }
    if let Some(vote) = message.vote {
        facts.push(format!("vote {vote}"));
    }
    facts
}

fn plain_text(input: &TicketEmail) -> String {
    let site = site_name(input);
    let domain = one_line(&input.site_domain, MAX_TRAIT_CHARS);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} opened a support ticket on {site} ({domain}).",
        input.visitor_email
    );
    let _ = writeln!(
        text,
        "Reply to this email to answer them: replies go to {}.",
        input.visitor_email
    );
    text.push('\n');
    let _ = writeln!(text, "Ticket ID: {}", input.ticket_id);
    let _ = writeln!(text, "Opened:    {}", utc(input.created_at));
    let _ = writeln!(
        text,
        "Subject:   {}",
        one_line(&input.subject, MAX_SUBJECT_CHARS)
    );
    let _ = writeln!(text, "Session:   {}", input.conversation.session_id);

    text.push_str("\nMessage\n-------\n");
    let _ = writeln!(text, "{}", indented(&multi_line(&input.body)));

    text.push_str("\nVisitor\n-------\n");
    for (label, value) in identity(input) {
        let _ = writeln!(text, "{:<13} {value}", format!("{label}:"));
    }
    let traits = traits(input);
    if traits.is_empty() {
        text.push_str("Traits:       none\n");
    } else {
        text.push_str("Traits:\n");
        for (key, value) in traits {
            let _ = writeln!(text, "{INDENT}{key}: {value}");
        }
    }

    let messages = &input.conversation.messages;
    let _ = writeln!(
        text,
        "\nConversation ({} message{}, oldest first)\n------------",
        messages.len(),
        if messages.len() == 1 { "" } else { "s" }
    );
    if messages.is_empty() {
        text.push_str("(no messages)\n");
    }
    for message in messages {
        let mut head = format!("[{}] {}", utc(message.created_at), role_name(message.role));
        for fact in message_facts(message) {
            head.push_str(" · ");
            head.push_str(&fact);
        }
        let _ = writeln!(text, "\n{head}");
        let _ = writeln!(text, "{}", indented(&multi_line(&message.content)));
    }
    text
}

/// Inline styles, as mail clients ignore style sheets.
const BODY_STYLE: &str = "font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;\
                          font-size:14px;line-height:1.5;color:#1f2328;max-width:720px";
const LABEL_STYLE: &str = "text-align:left;vertical-align:top;padding:2px 16px 2px 0;\
                           color:#57606a;font-weight:600;white-space:nowrap";
const TEXT_STYLE: &str = "white-space:pre-wrap;word-wrap:break-word;margin:0";
const MESSAGE_STYLE: &str = "margin:0 0 12px;padding:8px 12px;border-left:3px solid #d0d7de";
const VISITOR_MESSAGE_STYLE: &str =
    "margin:0 0 12px;padding:8px 12px;border-left:3px solid #0969da";
const META_STYLE: &str = "color:#57606a;font-size:12px;margin:0 0 4px";

fn html(input: &TicketEmail) -> String {
    let e = html_escape;
    let site = site_name(input);
    let domain = one_line(&input.site_domain, MAX_TRAIT_CHARS);
    let visitor = input.visitor_email.as_str();
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n</head>\n\
         <body style=\"{BODY_STYLE}\">\n",
        e(&ticket_subject(input))
    );
    let _ = writeln!(
        html,
        "<p><strong>{}</strong> opened a support ticket on <strong>{}</strong> ({}). \
         Reply to this email to answer them: replies go to {}.</p>",
        e(visitor),
        e(&site),
        e(&domain),
        e(visitor)
    );
    html.push_str("<table style=\"border-collapse:collapse\">\n");
    let row = |html: &mut String, label: &str, value: &str| {
        let _ = writeln!(
            html,
            "<tr><th style=\"{LABEL_STYLE}\">{}</th><td>{value}</td></tr>",
            e(label)
        );
    };
    row(
        &mut html,
        "Ticket ID",
        &format!("<code>{}</code>", e(&input.ticket_id.to_string())),
    );
    row(&mut html, "Opened", &e(&utc(input.created_at)));
    row(
        &mut html,
        "Subject",
        &e(&one_line(&input.subject, MAX_SUBJECT_CHARS)),
    );
    row(
        &mut html,
        "Session",
        &format!(
            "<code>{}</code>",
            e(&input.conversation.session_id.to_string())
        ),
    );
    html.push_str("</table>\n");

    html.push_str("<h3>Message</h3>\n");
    let _ = writeln!(
        html,
        "<div style=\"{VISITOR_MESSAGE_STYLE}\"><p style=\"{TEXT_STYLE}\">{}</p></div>",
        e(&multi_line(&input.body))
    );

    html.push_str("<h3>Visitor</h3>\n<table style=\"border-collapse:collapse\">\n");
    for (label, value) in identity(input) {
        row(&mut html, label, &e(&value));
    }
    let traits = traits(input);
    if traits.is_empty() {
        row(&mut html, "Traits", "none");
    } else {
        for (key, value) in traits {
            row(&mut html, &key, &e(&value));
        }
    }
    html.push_str("</table>\n");

    let messages = &input.conversation.messages;
    let _ = writeln!(
        html,
        "<h3>Conversation ({} message{}, oldest first)</h3>",
        messages.len(),
        if messages.len() == 1 { "" } else { "s" }
    );
    if messages.is_empty() {
        html.push_str("<p>(no messages)</p>\n");
    }
    for message in messages {
        let style = if message.role == MessageRole::User {
            VISITOR_MESSAGE_STYLE
        } else {
            MESSAGE_STYLE
        };
        let mut meta = format!(
            "{} · <strong>{}</strong>",
            e(&utc(message.created_at)),
            e(role_name(message.role))
        );
        for fact in message_facts(message) {
            meta.push_str(" · ");
            meta.push_str(&e(&fact));
        }
        let _ = writeln!(
            html,
            "<div style=\"{style}\"><p style=\"{META_STYLE}\">{meta}</p>\
             <p style=\"{TEXT_STYLE}\">{}</p></div>",
            e(&multi_line(&message.content))
        );
    }
    html.push_str("</body>\n</html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(
            html_escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(html_escape("café ✓"), "café ✓");
    }

    #[test]
    fn one_lines() {
        assert_eq!(one_line("  a\r\nBcc: x\t\u{0}y  ", 100), "a Bcc: x y");
        assert_eq!(one_line("a\u{202E}b\u{200B}c", 100), "abc");
        assert_eq!(one_line("a\u{2028}b", 100), "a b");
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(one_line("ab   cdef", 4), "ab…");
        assert_eq!(one_line("éééé", 4), "éééé");
    }

    #[test]
    fn multi_lines() {
        assert_eq!(
            multi_line("\n\na\r\nb\rc\u{2028}d\u{0}\u{1b}[31m \n\n"),
            "a\nb\nc\nd[31m"
        );
        assert_eq!(multi_line(" \n \t"), "");
        assert_eq!(indented("a\n\nb"), "    a\n\n    b");
        assert_eq!(indented(""), "    (empty)");
    }

    #[test]
    fn message_ids() {
        let ticket: TicketId = "0190f2c4-1111-7000-8000-000000000001"
            .parse()
            .unwrap_or_else(|_| panic!("a valid id"));
        let want = |domain: &str| format!("ticket-{ticket}@{domain}");
        assert_eq!(
            message_id(ticket, "Support <help@Example.COM>"),
            want("example.com")
        );
        assert_eq!(
            message_id(ticket, "help@mail.example.com"),
            want("mail.example.com")
        );
        for unusable in ["", "not a mailbox", "a@[127.0.0.1]"] {
            assert_eq!(
                message_id(ticket, unusable),
                want("chatdesk.localhost"),
                "{unusable}"
            );
            assert_eq!(mail_domain(unusable), "chatdesk.localhost");
        }
        assert_eq!(mail_domain(" Support <help@Example.COM> "), "example.com");
    }
}
