//! JSON shapes of the widget SDK API.

use actix_web::web::Bytes;
use chatdesk_domain::conversation::{
    ChatMessage, FollowUp, MessageRole, MessageStatus, TimelineEntry, Vote,
};
use chatdesk_domain::visitor::SiteGate;
use chatdesk_domain::widget::GateClosed;
use serde_json::{Map, Value};

use super::*;

enum_schema!(
    GateReasonSchema,
    GateClosed,
    "Why the chat may not open, checked in this order: SITE_NOT_MAPPED, FEATURE_LOCKED, WIDGET_DISABLED, then WIDGET_PAUSED (published, then paused) or WIDGET_NOT_PUBLISHED (a draft never published)."
);
enum_schema!(MessageRoleSchema, MessageRole, "Who wrote a message.");
enum_schema!(
    MessageStatusSchema,
    MessageStatus,
    "Where a message is in its life. An assistant reply is ANALYZING while its answer is worked out, then MATCHED_CONTENT (it points at an existing Flow or Tooltip) or GENERATED_CONTENT (at a Flow drafted for this question); it is FAILED when the model could not answer and INSUFFICIENT_CREDITS (with the widget's message) when the tenant has no credits left. A SYSTEM notice and a visitor's question are COMPLETED."
);
enum_schema!(VoteSchema, Vote, "A visitor's vote.");
enum_schema!(
    FollowUpSchema,
    FollowUp,
    "What the widget offers after a vote: REPHRASE (ask another way) or OPEN_TICKET (open a support ticket)."
);

/// The widget as visitors see it (no support address, no persona).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicWidget {
    /// The site's display name.
    pub site_name: String,
    /// Greeting shown when the chat opens.
    pub welcome_message: String,
    /// Small print under the chat.
    pub disclaimer: Option<String>,
    /// Where the launcher sits.
    #[schema(value_type = WidgetPositionSchema)]
    pub position: WidgetPosition,
    /// The site's theme.
    pub theme: ThemeView,
    /// Questions a session may ask.
    pub rate_limit_per_session: u32,
    /// Whether the site signs signed-in visitors' ids (`userHash`).
    pub identity_verification: bool,
}

/// `GET /sdk/chat/config`: whether the chat may open, and how it looks.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigView {
    /// Whether the chat may open.
    pub enabled: bool,
    /// The widget, when enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub widget: Option<PublicWidget>,
    /// Why not, when not enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<GateReasonSchema>)]
    pub reason: Option<GateClosed>,
}

impl ConfigView {
    /// The config of a site's gate.
    pub fn new(gate: &SiteGate) -> Self {
        match gate.open_widget() {
            Ok(w) => ConfigView {
                enabled: true,
                widget: Some(PublicWidget {
                    site_name: gate.site.name.clone(),
                    welcome_message: w.settings.welcome_message.clone(),
                    disclaimer: w.settings.disclaimer.clone(),
                    position: w.settings.position,
                    theme: ThemeView::from(&gate.site.theme),
                    rate_limit_per_session: w.settings.rate_limit_per_session,
                    identity_verification: gate.site.identity_verification(),
                }),
                reason: None,
            },
            Err(reason) => ConfigView {
                enabled: false,
                widget: None,
                reason: Some(reason),
            },
        }
    }

    /// The config as the JSON body sent, serialized once per cached gate.
    pub fn body(gate: &SiteGate) -> Bytes {
        // Serializing plain strings, numbers and booleans cannot fail.
        Bytes::from(serde_json::to_vec(&ConfigView::new(gate)).unwrap_or_default())
    }
}

/// `POST /sdk/chat/sessions` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenSessionBody {
    /// The id the widget made up for this browser (1–200 characters, not
    /// blank, no control characters).
    #[schema(min_length = 1, max_length = 200)]
    #[schema(
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub anonymous_id: String,
    /// The site's id for a signed-in visitor (1–200 characters, not blank,
    /// no control characters).
    #[schema(min_length = 1, max_length = 200)]
    #[schema(
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub external_id: Option<String>,
    /// Free-form traits (at most 50 keys, 8 KiB); `email` prefills tickets.
    #[schema(value_type = Option<Object>)]
    pub traits: Option<Map<String, Value>>,
    /// `hex(HMAC-SHA256(identitySecret, externalId))`, required with an
    /// `externalId` when the site verifies identities.
    #[schema(max_length = 128)]
    pub user_hash: Option<String>,
}

/// A session the widget may now use.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// The session.
    pub session_id: Uuid,
    /// The token for `X-Chatdesk-Session` on the session's calls; each
    /// call of `POST /sessions` issues a new one, and all stay valid.
    pub session_token: String,
    /// Greeting.
    pub welcome_message: String,
    /// Small print.
    pub disclaimer: Option<String>,
}

/// `POST /sdk/chat/sessions/{sessionId}/messages` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AskBody {
    /// The question, 1–2000 characters, not blank (no control characters
    /// but tabs and line breaks).
    #[schema(min_length = 1, max_length = 2000)]
    #[schema(
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub content: String,
}

/// What a message points at.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContentRefView {
    /// FLOW or TOOLTIP.
    #[schema(value_type = ContentKindSchema)]
    pub kind: ContentKind,
    /// The item.
    pub id: Uuid,
    /// Its name when the message was written.
    pub name: String,
}

/// One message of a conversation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    /// Message id.
    pub id: Uuid,
    /// USER, ASSISTANT or SYSTEM.
    #[schema(value_type = MessageRoleSchema)]
    pub role: MessageRole,
    /// Its status.
    #[schema(value_type = MessageStatusSchema)]
    pub status: MessageStatus,
    /// The text.
    pub content: String,
    /// The Flow or Tooltip it points at (MATCHED_CONTENT, GENERATED_CONTENT).
    pub content_ref: Option<ContentRefView>,
    /// The model that wrote it, if one did.
    pub model: Option<String>,
    /// Tokens the model spent on it (0 when no model was called).
    pub tokens_used: Option<u32>,
    /// The visitor's vote on it.
    #[schema(value_type = Option<VoteSchema>)]
    pub feedback: Option<Vote>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

impl MessageView {
    /// A message with its vote.
    pub fn new(m: &ChatMessage, vote: Option<Vote>) -> Self {
        MessageView {
            id: m.id.as_uuid(),
            role: m.role,
            status: m.status,
            content: m.content.clone(),
            content_ref: m.content_ref.as_ref().map(|r| ContentRefView {
                kind: r.kind,
                id: r.id.as_uuid(),
                name: r.name.clone(),
            }),
            model: m.model.clone(),
            tokens_used: m.tokens_used,
            feedback: vote,
            created_at: m.created_at,
        }
    }
}

impl From<&TimelineEntry> for MessageView {
    fn from(e: &TimelineEntry) -> Self {
        MessageView::new(&e.message, e.vote)
    }
}

/// A page of a session's messages, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    /// The messages.
    pub items: Vec<MessageView>,
    /// The cursor of the next page, or null on the last one.
    pub next_cursor: Option<String>,
}

/// A question and its reply.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AskedView {
    /// The visitor's question as stored.
    pub user_message: MessageView,
    /// The reply: an assistant message, or a SYSTEM notice when no guide
    /// matched and answer generation is not set up.
    pub assistant_message: MessageView,
}

/// `PUT /sdk/chat/messages/{messageId}/feedback` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeedbackBody {
    /// UP or DOWN.
    #[schema(value_type = VoteSchema)]
    pub vote: String,
}

/// A recorded vote.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackView {
    /// The vote now on the message.
    #[schema(value_type = VoteSchema)]
    pub vote: Vote,
    /// What the widget may offer next; a DOWN vote's includes OPEN_TICKET.
    #[schema(value_type = Vec<FollowUpSchema>)]
    pub follow_up: Vec<FollowUp>,
}

/// `POST /sdk/chat/sessions/{sessionId}/tickets` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenTicketBody {
    /// The visitor's address for the team's reply; without it, the
    /// visitor's `email` trait (422 on `email` when there is neither).
    #[schema(max_length = 254, format = Email)]
    pub email: Option<String>,
    /// One line, 1–200 characters, not blank (no control, line-breaking or
    /// invisible formatting characters).
    #[schema(min_length = 1, max_length = 200)]
    #[schema(
        pattern = r"^[^\u0000-\u001F\u007F-\u009F\u2028\u2029\u061C\u180E\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF\uFFF9-\uFFFB]*[^\s\u0000-\u001F\u007F-\u009F\u2028\u2029\u061C\u180E\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF\uFFF9-\uFFFB][^\u0000-\u001F\u007F-\u009F\u2028\u2029\u061C\u180E\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF\uFFF9-\uFFFB]*$"
    )]
    pub subject: String,
    /// The visitor's message, 1–5000 characters, not blank (no control
    /// characters but tabs and line breaks).
    #[schema(min_length = 1, max_length = 5000)]
    #[schema(
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub body: String,
}

/// A ticket as the visitor who opened it sees it: what they sent and its
/// status. Who receives it and how its email fares are the team's
/// business (the dashboard's ticket view shows them).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VisitorTicketView {
    /// Ticket id.
    pub id: Uuid,
    /// The session it was opened from.
    pub session_id: Uuid,
    /// The address the team replies to.
    pub email: String,
    /// Subject.
    pub subject: String,
    /// Message.
    pub body: String,
    /// OPEN for a new ticket.
    #[schema(value_type = super::TicketStatusSchema)]
    pub status: chatdesk_domain::ticket::TicketStatus,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
}

impl From<&chatdesk_domain::ticket::SupportTicket> for VisitorTicketView {
    fn from(t: &chatdesk_domain::ticket::SupportTicket) -> Self {
        VisitorTicketView {
            id: t.id.as_uuid(),
            session_id: t.session_id.as_uuid(),
            email: t.email.to_string(),
            subject: t.subject.clone(),
            body: t.body.clone(),
            status: t.status,
            created_at: t.created_at,
        }
    }
}
