//! Support tickets: who receives them, their status transitions, and the
//! state of their email delivery.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::closed_enum::closed_enum;
use crate::content::ContentKind;
use crate::conversation::{MessageRole, MessageStatus, Vote};
use crate::email::Email;
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
}
