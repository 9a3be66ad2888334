//! Support tickets: who receives them, their status transitions, and the
//! state of their email delivery.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::closed_enum::closed_enum;
use crate::content::ContentKind;
use crate::conversation::{ChatSession, EndUser, MessageRole, MessageStatus, TimelineEntry, Vote};
use crate::email::Email;
use crate::error::{Error, Validator};
use crate::ids::{MemberId, MessageId, SessionId, SiteId, TenantId, TicketId};

closed_enum!(
    /// Where a ticket is in the team's work.
    TicketStatus {
        /// New.
        Open => "OPEN",
        /// Someone is on it.
        InProgress => "IN_PROGRESS",
        /// Done.
        Resolved => "RESOLVED",
    }
);

closed_enum!(
    /// Where the ticket's email is.
    DeliveryStatus {
        /// Waiting for the delivery worker.
        Pending => "PENDING",
        /// Accepted by the mail service.
        Sent => "SENT",
        /// Every attempt failed.
        Failed => "FAILED",
        /// Nobody to send it to; the ticket is only shown in the dashboard.
        NoRecipient => "NO_RECIPIENT",
        /// No mail service is configured; the payload was logged.
        LogOnly => "LOG_ONLY",
    }
);

/// Who receives a ticket's email, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// The widget's support email override.
    WidgetOverride(Email),
    /// The tenant's OWNER member.
    TenantOwner(Email),
    /// Nobody; the ticket is still stored and shown.
    Nobody,
}

impl Recipient {
    /// The address, unless nobody.
    pub fn email(&self) -> Option<&Email> {
        match self {
            Recipient::WidgetOverride(e) | Recipient::TenantOwner(e) => Some(e),
            Recipient::Nobody => None,
        }
    }
}

/// Resolves a ticket's recipient: the widget's support email override, else
/// the tenant's owner, else nobody.
pub fn resolve_recipient(widget_override: Option<&Email>, owner: Option<&Email>) -> Recipient {
    match (widget_override, owner) {
        (Some(e), _) => Recipient::WidgetOverride(e.clone()),
        (None, Some(e)) => Recipient::TenantOwner(e.clone()),
        (None, None) => Recipient::Nobody,
    }
}

/// The state of a ticket's email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Where it is.
    pub status: DeliveryStatus,
    /// Who it goes to.
    pub recipient: Option<Email>,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// A visitor's support ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct SupportTicket {
    /// Its id.
    pub id: TicketId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its site.
    pub site_id: SiteId,
    /// The session it was opened from.
    pub session_id: SessionId,
    /// The visitor's address (the email's Reply-To).
    pub email: Email,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: String,
    /// The whole conversation when the ticket was opened.
    pub conversation: serde_json::Value,
    /// Status.
    pub status: TicketStatus,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// Latest change.
    pub updated_at: DateTime<Utc>,
    /// When it was resolved (only while RESOLVED).
    pub resolved_at: Option<DateTime<Utc>>,
    /// Who resolved it (only while RESOLVED).
    pub resolved_by: Option<MemberId>,
    /// Its email's delivery.
    pub delivery: Delivery,
}

impl SupportTicket {
    /// The entity tag of what members change on the ticket (its status and
    /// stamps): every change moves `updated_at` on.
    pub fn entity_tag(&self) -> String {
        crate::version::entity_tag(&[crate::version::Version(self.updated_at.timestamp_micros())])
    }

    /// Sets the status. Any status may follow any other; moving to RESOLVED
    /// stamps `resolvedAt`/`resolvedBy`, moving away clears them, and setting
    /// the current status changes nothing. Returns whether anything changed.
    pub fn set_status(&mut self, status: TicketStatus, by: MemberId, now: DateTime<Utc>) -> bool {
        if self.status == status {
            return false;
        }
        self.status = status;
        if status == TicketStatus::Resolved {
            self.resolved_at = Some(now);
            self.resolved_by = Some(by);
        } else {
            self.resolved_at = None;
            self.resolved_by = None;
        }
        self.updated_at = now;
        true
    }
}

/// The tag of every log line about a ticket's email, so an operator finds
/// them all with one search.
pub const EMAIL_LOG_TAG: &str = "[email] support_ticket_created";

/// The Message-ID domain when the sender's is not known.
pub const DEFAULT_MAIL_DOMAIN: &str = "chatdesk.localhost";

/// A ticket's email's Message-ID (without angle brackets): the same on
/// every attempt, and unique, since it names the ticket.
pub fn ticket_message_id(ticket: TicketId, domain: &str) -> String {
    format!("ticket-{ticket}@{domain}")
}

/// How long an email waits after its first failed attempt; each further
/// failure doubles the wait up to [`RETRY_DELAY_MAX`].
pub const RETRY_DELAY_FIRST: chrono::Duration = chrono::Duration::seconds(2);

/// The longest wait between attempts, so mail flows again within about a
/// minute of an outage ending.
pub const RETRY_DELAY_MAX: chrono::Duration = chrono::Duration::seconds(60);

/// The most attempts an email gets: after six doubling waits the rest are
/// a minute apart, so they span about four hours of outage before it is
/// FAILED.
pub const MAX_ATTEMPTS: u32 = 240;

/// How long a delivery worker's claim on an email lasts: longer than a
/// send may take (the transports time out well before), so a claim runs
/// out only when its worker died, and another then takes the email over.
pub const DELIVERY_LEASE: chrono::Duration = chrono::Duration::minutes(2);

/// The longest one send may take: the transports give up well before
/// (SMTP and Resend after 10 s). A round sends an email only while
/// its claim has at least this long left, so no email is sent after its
/// claim ran out (when another worker may have taken it over).
pub const SEND_BUDGET: chrono::Duration = chrono::Duration::seconds(30);

/// What to do after attempt number `attempt` (1 for the first) failed:
/// wait and retry while attempts remain and the failure is transient, else
/// give up. `now` is when it failed.
pub fn after_failure(
    attempt: u32,
    transient: bool,
    error: String,
    now: DateTime<Utc>,
) -> crate::ports::AttemptOutcome {
    if !transient || attempt >= MAX_ATTEMPTS {
        return crate::ports::AttemptOutcome::Failed { error };
    }
    let doublings = attempt.saturating_sub(1).min(16);
    let delay = RETRY_DELAY_FIRST
        .checked_mul(1 << doublings)
        .map_or(RETRY_DELAY_MAX, |d| d.min(RETRY_DELAY_MAX));
    crate::ports::AttemptOutcome::RetryAt {
        at: now + delay,
        error,
    }
}

/// The position of a ticket in the Tickets tab, newest first: the keyset
/// a page continues after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketCursor {
    /// The ticket's `created_at`.
    pub created_at: DateTime<Utc>,
    /// The ticket.
    pub id: TicketId,
}

impl TicketCursor {
    /// The position of `ticket`.
    pub fn of(ticket: &SupportTicket) -> TicketCursor {
        TicketCursor {
            created_at: ticket.created_at,
            id: ticket.id,
        }
    }
}

impl std::fmt::Display for TicketCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::conversation::keyset_position(
            self.created_at,
            self.id.as_uuid(),
        ))
    }
}

impl std::str::FromStr for TicketCursor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (created_at, id) = crate::conversation::parse_keyset_position(s)?;
        Ok(TicketCursor {
            created_at,
            id: TicketId(id),
        })
    }
}

/// The most characters a ticket's subject may have.
pub const SUBJECT_MAX: usize = 200;
/// The most characters a ticket's message may have.
pub const BODY_MAX: usize = 5000;

/// A visitor's ticket as the widget sends it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TicketRequest {
    /// The visitor's address, if typed in (else the `email` trait).
    pub email: Option<String>,
    /// Subject.
    pub subject: String,
    /// The visitor's message.
    pub body: String,
}

/// A ticket's text, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketText {
    /// The address typed in, if any.
    pub email: Option<Email>,
    /// Subject: one line, 1–200 characters.
    pub subject: String,
    /// Message: 1–5000 characters, several lines allowed.
    pub body: String,
}

impl TicketRequest {
    /// Checks the fields, naming each that is wrong.
    pub fn parse(&self) -> Result<TicketText, Error> {
        let mut v = Validator::new();
        let email = self
            .email
            .as_deref()
            .filter(|e| !e.trim().is_empty())
            .and_then(|e| v.check("email", Email::parse(e)));
        let subject = v.check(
            "subject",
            crate::text::single_line(&self.subject, 1, SUBJECT_MAX),
        );
        let body = v.check(
            "body",
            crate::text::check_multi_line(&self.body)
                .and_then(|()| crate::text::bounded(&self.body, 1, BODY_MAX)),
        );
        v.finish()?;
        match (subject, body) {
            (Some(subject), Some(body)) => Ok(TicketText {
                email,
                subject,
                body,
            }),
            _ => Err(Error::Internal("a checked ticket lost a field".into())),
        }
    }
}

/// The address a ticket answers to: the one typed in, else the visitor's
/// `email` trait when it is a valid address; with neither, a 422 on
/// `email`.
pub fn reply_address(typed: Option<&Email>, visitor: &EndUser) -> Result<Email, Error> {
    if let Some(email) = typed {
        return Ok(email.clone());
    }
    visitor
        .email_trait()
        .and_then(|e| Email::parse(e).ok())
        .ok_or_else(|| {
            Error::invalid(
                "email",
                "is required: give the visitor's address (the visitor has no valid email trait)",
            )
        })
}

/// Checks that a ticket may be opened from the session: it follows a
/// thumbs-down, so the session must have a DOWN vote now.
pub fn check_ticket_allowed(session: &ChatSession) -> Result<(), Error> {
    if session.down_votes > 0 {
        Ok(())
    } else {
        Err(Error::NoDownvote)
    }
}

/// The conversation as it was when a ticket was opened: what the ticket
/// stores, and what its email's transcript shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSnapshot {
    /// The session.
    pub session_id: SessionId,
    /// The visitor's anonymous id.
    pub anonymous_id: String,
    /// The visitor's external id, once identified.
    pub external_id: Option<String>,
    /// The visitor's traits.
    pub traits: serde_json::Map<String, serde_json::Value>,
    /// Every message, oldest first.
    pub messages: Vec<SnapshotMessage>,
}

/// One message of a [`ConversationSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotMessage {
    /// The message.
    pub id: MessageId,
    /// Who wrote it.
    pub role: MessageRole,
    /// Its status.
    pub status: MessageStatus,
    /// The text.
    pub content: String,
    /// The kind and name of the Flow or Tooltip it points at.
    pub content_ref: Option<(ContentKind, String)>,
    /// The visitor's vote on it.
    pub vote: Option<Vote>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

impl ConversationSnapshot {
    /// The snapshot of a session's timeline, with its visitor.
    pub fn new(session: &ChatSession, visitor: &EndUser, timeline: &[TimelineEntry]) -> Self {
        ConversationSnapshot {
            session_id: session.id,
            anonymous_id: visitor.anonymous_id.clone(),
            external_id: visitor.external_id.clone(),
            traits: visitor.traits.clone(),
            messages: timeline
                .iter()
                .map(|e| SnapshotMessage {
                    id: e.message.id,
                    role: e.message.role,
                    status: e.message.status,
                    content: e.message.content.clone(),
                    content_ref: e
                        .message
                        .content_ref
                        .as_ref()
                        .map(|r| (r.kind, r.name.clone())),
                    vote: e.vote,
                    created_at: e.message.created_at,
                })
                .collect(),
        }
    }
}

/// What a ticket's email says, gathered by the delivery worker from the
/// stored ticket and its site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketEmail {
    /// The ticket (its id is the link-ready reference the email shows).
    pub ticket_id: TicketId,
    /// The site's display name.
    pub site_name: String,
    /// The site's domain.
    pub site_domain: String,
    /// The visitor's address: the email's Reply-To.
    pub visitor_email: Email,
    /// The ticket's subject, as the visitor wrote it.
    pub subject: String,
    /// The visitor's message.
    pub body: String,
    /// When the ticket was opened.
    pub created_at: DateTime<Utc>,
    /// The conversation when it was opened.
    pub conversation: ConversationSnapshot,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::builders::a_ticket;

    fn email(s: &str) -> Email {
        Email::parse(s).expect("valid email")
    }

    #[test]
    fn recipient_resolution() {
        let widget = email("help@example.com");
        let owner = email("owner@example.com");
        let table = [
            (
                Some(&widget),
                Some(&owner),
                Recipient::WidgetOverride(widget.clone()),
            ),
            (
                Some(&widget),
                None,
                Recipient::WidgetOverride(widget.clone()),
            ),
            (None, Some(&owner), Recipient::TenantOwner(owner.clone())),
            (None, None, Recipient::Nobody),
        ];
        for (w, o, expected) in table {
            assert_eq!(resolve_recipient(w, o), expected);
        }
        assert_eq!(Recipient::Nobody.email(), None);
    }

    #[test]
    fn status_transitions_stamp_and_clear() {
        use TicketStatus::*;
        let by = MemberId(uuid::Uuid::now_v7());
        let now = Utc::now();
        // (from, to, changed, stamped afterwards)
        let table = [
            (Open, InProgress, true, false),
            (Open, Resolved, true, true),
            (InProgress, Resolved, true, true),
            (Resolved, Open, true, false),
            (Resolved, InProgress, true, false),
            (InProgress, Open, true, false),
            (Open, Open, false, false),
            (InProgress, InProgress, false, false),
            (Resolved, Resolved, false, true),
        ];
        for (from, to, changed, stamped) in table {
            let mut ticket = a_ticket().build();
            ticket.set_status(from, by, now - chrono::Duration::hours(1));
            let before = ticket.clone();
            assert_eq!(ticket.set_status(to, by, now), changed, "{from}->{to}");
            assert_eq!(ticket.status, to);
            assert_eq!(ticket.resolved_at.is_some(), stamped, "{from}->{to}");
            assert_eq!(ticket.resolved_by.is_some(), stamped, "{from}->{to}");
            if changed {
                assert_eq!(ticket.updated_at, now);
                if to == Resolved {
                    assert_eq!(ticket.resolved_at, Some(now));
                    assert_eq!(ticket.resolved_by, Some(by));
                }
            } else {
                assert_eq!(ticket, before, "a no-op changes nothing");
            }
        }
    }

    fn request(email: Option<&str>, subject: &str, body: &str) -> TicketRequest {
        TicketRequest {
            email: email.map(str::to_string),
            subject: subject.into(),
            body: body.into(),
        }
    }

    #[test]
    fn ticket_fields_are_checked_and_named() {
        let ok = request(
            Some(" Ada@Example.COM "),
            " Cannot log in ",
            "Line one\nline two\tend",
        );
        let text = ok.parse().expect("valid");
        assert_eq!(
            text.email.map(|e| e.to_string()),
            Some("ada@example.com".into())
        );
        assert_eq!(text.subject, "Cannot log in");
        assert_eq!(text.body, "Line one\nline two\tend");
        assert_eq!(request(None, "s", "b").parse().expect("valid").email, None);
        assert_eq!(
            request(Some("  "), "s", "b").parse().expect("valid").email,
            None
        );
        // (request, fields named)
        let long_subject = "s".repeat(SUBJECT_MAX + 1);
        let long_body = "b".repeat(BODY_MAX + 1);
        let table: Vec<(TicketRequest, Vec<&str>)> = vec![
            (request(Some("not an address"), "s", "b"), vec!["email"]),
            (request(None, "", "b"), vec!["subject"]),
            (request(None, "two\nlines", "b"), vec!["subject"]),
            (request(None, "nul\u{0}", "b"), vec!["subject"]),
            (request(None, "bidi \u{202e}", "b"), vec!["subject"]),
            (request(None, &long_subject, "b"), vec!["subject"]),
            (request(None, "s", "  "), vec!["body"]),
            (request(None, "s", "bell\u{7}"), vec!["body"]),
            (request(None, "s", &long_body), vec!["body"]),
            (request(Some("x"), "", ""), vec!["email", "subject", "body"]),
        ];
        for (req, fields) in table {
            let err = req.parse().expect_err("invalid");
            let named: Vec<&str> = err
                .field_errors()
                .iter()
                .map(|e| e.field.as_str())
                .collect();
            assert_eq!(named, fields, "{req:?}");
        }
        assert!(
            request(None, &"s".repeat(SUBJECT_MAX), &"b".repeat(BODY_MAX))
                .parse()
                .is_ok()
        );
    }

    #[test]
    fn the_reply_address_is_typed_or_the_email_trait() {
        use crate::testing::builders::an_end_user;
        let typed = email("typed@example.com");
        let mut visitor = an_end_user().build();
        visitor
            .traits
            .insert("email".into(), serde_json::json!("Trait@Example.com"));
        assert_eq!(reply_address(Some(&typed), &visitor), Ok(typed.clone()));
        assert_eq!(
            reply_address(None, &visitor),
            Ok(email("trait@example.com"))
        );
        for bad in [
            serde_json::json!("not an address"),
            serde_json::json!(42),
            serde_json::Value::Null,
        ] {
            visitor.traits.insert("email".into(), bad);
            let err = reply_address(None, &visitor).expect_err("no address");
            assert_eq!(err.field_errors()[0].field, "email");
        }
        visitor.traits.clear();
        assert!(reply_address(None, &visitor).is_err());
        assert_eq!(reply_address(Some(&typed), &visitor), Ok(typed));
    }

    #[test]
    fn a_ticket_follows_a_down_vote() {
        use crate::testing::builders::a_session;
        let mut session = a_session().build();
        assert_eq!(check_ticket_allowed(&session), Err(Error::NoDownvote));
        session.up_votes = 3;
        assert_eq!(check_ticket_allowed(&session), Err(Error::NoDownvote));
        session.down_votes = 1;
        assert_eq!(check_ticket_allowed(&session), Ok(()));
        assert_eq!(Error::NoDownvote.code(), "NO_DOWNVOTE");
        assert_eq!(Error::NoDownvote.kind(), crate::error::ErrorKind::Conflict);
    }

    #[test]
    fn a_snapshot_keeps_the_timeline_and_round_trips_as_json() {
        use crate::conversation::{ContentRef, TimelineEntry};
        use crate::testing::builders::{a_message, a_session, an_end_user};
        let session = a_session().build();
        let mut visitor = an_end_user().build();
        visitor.external_id = Some("user-7".into());
        let question = a_message()
            .role(MessageRole::User)
            .content("How?".into())
            .build();
        let mut answer = a_message().status(MessageStatus::MatchedContent).build();
        answer.content_ref = Some(ContentRef {
            kind: ContentKind::Flow,
            id: crate::ids::ContentId(uuid::Uuid::now_v7()),
            name: "Invite a teammate".into(),
        });
        let timeline = [
            TimelineEntry {
                message: question,
                vote: None,
            },
            TimelineEntry {
                message: answer,
                vote: Some(Vote::Down),
            },
        ];
        let snapshot = ConversationSnapshot::new(&session, &visitor, &timeline);
        assert_eq!(snapshot.external_id.as_deref(), Some("user-7"));
        assert_eq!(snapshot.messages.len(), 2);
        assert_eq!(
            snapshot.messages[1].content_ref,
            Some((ContentKind::Flow, "Invite a teammate".into()))
        );
        assert_eq!(snapshot.messages[1].vote, Some(Vote::Down));
        let json = serde_json::to_value(&snapshot).expect("serialises");
        assert_eq!(json["messages"][1]["role"], "ASSISTANT");
        assert_eq!(
            serde_json::from_value::<ConversationSnapshot>(json).ok(),
            Some(snapshot)
        );
    }

    #[test]
    fn failed_attempts_back_off_to_a_minute_and_give_up_after_hours() {
        use crate::ports::AttemptOutcome;
        let now = Utc::now();
        let wait = |attempt: u32| match after_failure(attempt, true, "down".into(), now) {
            AttemptOutcome::RetryAt { at, error } => {
                assert_eq!(error, "down");
                Some((at - now).num_seconds())
            }
            _ => None,
        };
        // (attempt that failed, seconds until the next)
        let table = [
            (1, 2),
            (2, 4),
            (3, 8),
            (4, 16),
            (5, 32),
            (6, 60),
            (7, 60),
            (100, 60),
            (239, 60),
        ];
        for (attempt, seconds) in table {
            assert_eq!(wait(attempt), Some(seconds), "attempt {attempt}");
        }
        assert_eq!(wait(MAX_ATTEMPTS), None, "the last attempt fails for good");
        // The attempts span hours, not seconds.
        let total: i64 = (1..MAX_ATTEMPTS).filter_map(wait).sum();
        assert!(total > 3 * 3600 && total < 5 * 3600, "{total} s");
        // A permanent refusal is not retried.
        assert_eq!(
            after_failure(1, false, "550 no such user".into(), now),
            AttemptOutcome::Failed {
                error: "550 no such user".into()
            }
        );
        assert!(DELIVERY_LEASE > chrono::Duration::seconds(60));
    }
}
