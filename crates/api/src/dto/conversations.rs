//! The Conversations tab's shapes: list items, and a session's detail
//! (which the export downloads as it is).

use chatdesk_domain::conversation::{
    ChatSession, ConversationHead, ConversationSummary, EndUser, TicketLink,
};
use chatdesk_domain::ticket::TicketStatus;

use super::sdk::MessageView;
use super::*;

enum_schema!(
    TicketStatusSchema,
    TicketStatus,
    "Where a ticket is in the team's work."
);

enum_schema!(
    FeedbackKindSchema,
    chatdesk_domain::conversation::FeedbackKind,
    "The Conversations list's feedback filter: UP_ONLY (ups, no downs), DOWN_ONLY (downs, no ups), EITHER (at least one vote), NEITHER (no votes)."
);

/// A session in the Conversations list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationItem {
    /// Session id.
    pub id: Uuid,
    /// The visitor's anonymous id (made up by the widget).
    pub anonymous_id: String,
    /// The site's own id for the visitor, once identified.
    pub external_id: Option<String>,
    /// When the session started.
    pub started_at: DateTime<Utc>,
    /// The session's latest question or vote while it was current; the
    /// list is ordered by it.
    pub last_active_at: DateTime<Utc>,
    /// Messages of every role.
    pub message_count: u32,
    /// UP votes on its answers.
    pub up_votes: u32,
    /// DOWN votes on its answers.
    pub down_votes: u32,
    /// Whether a support ticket was opened from it.
    pub escalated: bool,
    /// The first ticket opened from it.
    pub ticket_id: Option<Uuid>,
    /// The start of its first question.
    pub preview: Option<String>,
}

impl ConversationItem {
    fn new(session: &ChatSession, anonymous_id: &str, external_id: Option<&str>) -> Self {
        ConversationItem {
            id: session.id.as_uuid(),
            anonymous_id: anonymous_id.to_string(),
            external_id: external_id.map(str::to_string),
            started_at: session.started_at,
            last_active_at: session.last_active_at,
            message_count: session.message_count,
            up_votes: session.up_votes,
            down_votes: session.down_votes,
            escalated: session.escalated(),
            ticket_id: session.ticket_id.map(|t| t.as_uuid()),
            preview: session.preview.clone(),
        }
    }
}

impl From<&ConversationSummary> for ConversationItem {
    fn from(s: &ConversationSummary) -> Self {
        ConversationItem::new(&s.session, &s.anonymous_id, s.external_id.as_deref())
    }
}

/// A page of the Conversations list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationList {
    /// Sessions, newest `lastActiveAt` first (then by id, descending).
    pub items: Vec<ConversationItem>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// The session of a detail: the list's fields and when it ended.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSessionView {
    /// The list's fields.
    #[serde(flatten)]
    pub item: ConversationItem,
    /// When it stopped being the visitor's current session; null while it
    /// is (or until the visitor comes back after it idled out).
    pub ended_at: Option<DateTime<Utc>>,
}

/// The visitor's identity card.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndUserView {
    /// The id the widget made up.
    pub anonymous_id: String,
    /// The site's own id for the visitor, once identified.
    pub external_id: Option<String>,
    /// Free-form traits the site sent (email, plan, …).
    #[schema(value_type = Object)]
    pub traits: serde_json::Map<String, serde_json::Value>,
    /// Whether `externalId` was signed with the site's identity secret.
    pub verified: bool,
    /// The visitor's first request.
    pub first_seen_at: DateTime<Utc>,
    /// The visitor's latest request.
    pub last_seen_at: DateTime<Utc>,
}

impl From<&EndUser> for EndUserView {
    fn from(u: &EndUser) -> Self {
        EndUserView {
            anonymous_id: u.anonymous_id.clone(),
            external_id: u.external_id.clone(),
            traits: u.traits.clone(),
            verified: u.verified,
            first_seen_at: u.first_seen_at,
            last_seen_at: u.last_seen_at,
        }
    }
}

/// The session's ticket, to jump to.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketLinkView {
    /// Ticket id.
    pub id: Uuid,
    /// Its status.
    #[schema(value_type = TicketStatusSchema)]
    pub status: TicketStatus,
}

impl From<&TicketLink> for TicketLinkView {
    fn from(t: &TicketLink) -> Self {
        TicketLinkView {
            id: t.id.as_uuid(),
            status: t.status,
        }
    }
}

/// A session's detail: the session, the visitor's identity card, the
/// ticket link and the whole timeline. `messages` comes last: the body is
/// written out as the timeline is read.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationDetail {
    /// The session.
    pub session: ConversationSessionView,
    /// The visitor.
    pub end_user: EndUserView,
    /// The session's ticket (the first opened from it), if any.
    pub ticket: Option<TicketLinkView>,
    /// Every message, oldest first, each with the visitor's vote.
    pub messages: Vec<MessageView>,
}

impl ConversationDetail {
    /// The detail of `head` with no messages yet.
    pub fn head(head: &ConversationHead) -> Self {
        ConversationDetail {
            session: ConversationSessionView {
                item: ConversationItem::new(
                    &head.session,
                    &head.end_user.anonymous_id,
                    head.end_user.external_id.as_deref(),
                ),
                ended_at: head.session.ended_at,
            },
            end_user: EndUserView::from(&head.end_user),
            ticket: head.ticket.as_ref().map(TicketLinkView::from),
            messages: Vec::new(),
        }
    }
}
