//! The Tickets tab's shapes.

use chatdesk_domain::ticket::{Delivery, DeliveryStatus, SupportTicket, TicketStatus};

use super::*;

enum_schema!(
    DeliveryStatusSchema,
    DeliveryStatus,
    "Where a ticket's email is: PENDING (queued or being retried), SENT, FAILED (every attempt failed; see lastError), NO_RECIPIENT (nobody to send it to), LOG_ONLY (no mail service configured: the payload was logged)."
);

/// A ticket's email.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    /// Where it is.
    #[schema(value_type = DeliveryStatusSchema)]
    pub status: DeliveryStatus,
    /// Who it goes to: the widget's support address, else the tenant's
    /// owner; null when nobody.
    pub recipient: Option<String>,
    /// Attempts made so far.
    pub attempts: u32,
    /// Why the latest attempt failed, if it did.
    pub last_error: Option<String>,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        DeliveryView {
            status: d.status,
            recipient: d.recipient.as_ref().map(ToString::to_string),
            attempts: d.attempts,
            last_error: d.last_error.clone(),
        }
    }
}

/// A support ticket.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketView {
    /// Ticket id.
    pub id: Uuid,
    /// Its site.
    pub site_id: Uuid,
    /// The session it was opened from.
    pub session_id: Uuid,
    /// The visitor's address (the email's Reply-To).
    pub email: String,
    /// Subject.
    pub subject: String,
    /// The visitor's message.
    pub body: String,
    /// OPEN, IN_PROGRESS or RESOLVED.
    #[schema(value_type = TicketStatusSchema)]
    pub status: TicketStatus,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// Its latest status change (or its opening).
    pub updated_at: DateTime<Utc>,
    /// When it was resolved; set only while RESOLVED.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The member who resolved it; set only while RESOLVED.
    pub resolved_by: Option<Uuid>,
    /// Its email to the site's team.
    pub delivery: DeliveryView,
}

impl From<&SupportTicket> for TicketView {
    fn from(t: &SupportTicket) -> Self {
        TicketView {
            id: t.id.as_uuid(),
            site_id: t.site_id.as_uuid(),
            session_id: t.session_id.as_uuid(),
            email: t.email.to_string(),
            subject: t.subject.clone(),
            body: t.body.clone(),
            status: t.status,
            created_at: t.created_at,
            updated_at: t.updated_at,
            resolved_at: t.resolved_at,
            resolved_by: t.resolved_by.map(|m| m.as_uuid()),
            delivery: DeliveryView::from(&t.delivery),
        }
    }
}

/// A page of tickets.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketList {
    /// Tickets, newest first.
    pub items: Vec<TicketView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// `PATCH /sites/{siteId}/tickets/{ticketId}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTicket {
    /// The new status: any of the three, at any time.
    #[schema(value_type = TicketStatusSchema)]
    pub status: String,
}
