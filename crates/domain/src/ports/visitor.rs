//! The store's side of the widget SDK: the gate of a site key, visitors and
//! their sessions, questions and answers, votes. Each write is one short
//! transaction; none is held while a model answers (a generated answer is
//! recorded in two: the question with an ANALYZING reply, then the
//! outcome).

use chrono::{DateTime, Utc};

use crate::content::ContentItem;
use crate::conversation::{ChatMessage, ChatSession, TimelineEntry, Vote};
use crate::error::Error;
use crate::ids::{
    EndUserId, FeedbackId, MessageId, SessionId, SiteId, TenantId, TicketId, WidgetId,
};
use crate::ports::{Page, PageRequest};
use crate::secret::SecretHash;
use crate::ticket::{SupportTicket, TicketText};
use crate::visitor::{SiteGate, VisitorIdentity};

#[cfg(feature = "testing")]
use mockall::automock;

/// A request to open (or resume) a visitor's session with a widget.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenSession {
    /// The site.
    pub site_id: SiteId,
    /// Its widget.
    pub widget_id: WidgetId,
    /// The hash of the API key the request carried; checked again in the
    /// transaction, so a key regenerated meanwhile opens nothing.
    pub key: SecretHash,
    /// Who the visitor is.
    pub identity: VisitorIdentity,
    /// The id a new visitor gets (an existing one keeps theirs).
    pub new_visitor_id: EndUserId,
    /// The id a new session gets.
    pub new_session_id: SessionId,
    /// The hash of the session token issued to this caller.
    pub token: SecretHash,
    /// A current session last active before this instant has idled out:
    /// it is ended and a new one starts.
    pub idle_cutoff: DateTime<Utc>,
    /// A current session started before this instant has lasted its
    /// maximum: it is ended too and a new one starts.
    pub start_cutoff: DateTime<Utc>,
    /// Now.
    pub now: DateTime<Utc>,
}

/// The session a caller got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedSession {
    /// The session.
    pub session: ChatSession,
    /// Whether this call made it (else it was the visitor's current one).
    pub created: bool,
}

/// A session found by its token, with what answering a question in it
/// needs to know about its site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AskContext {
    /// The session.
    pub session: ChatSession,
    /// Its site's tenant.
    pub tenant_id: TenantId,
    /// Bumped by every change to the site's content library, so an
    /// in-process index of it knows when it is stale.
    pub content_version: i64,
}

/// A question and its reply, recorded in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The hash of the API key the request carried (checked again).
    pub key: SecretHash,
    /// The site's tenant, whose credits a generated answer spends.
    pub tenant_id: TenantId,
    /// The widget's questions-per-session limit: the session's question
    /// counter goes up only while it is below it.
    pub limit: u32,
    /// A session last active before this has idled out: the exchange is
    /// refused as for an ended session (not found).
    pub idle_cutoff: DateTime<Utc>,
    /// A session started before this has lasted its maximum: refused as
    /// for an ended session too.
    pub start_cutoff: DateTime<Utc>,
    /// The visitor's message.
    pub question: ChatMessage,
    /// The reply to store.
    pub reply: ChatMessage,
    /// Credits the reply costs (a reply that will be generated); 0 for a
    /// matched answer.
    pub cost: u32,
    /// The reply stored instead of `reply` when the tenant cannot pay
    /// `cost` (INSUFFICIENT_CREDITS, with the widget's message).
    pub unpaid_reply: Option<ChatMessage>,
}

/// What recording an exchange did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeOutcome {
    /// Both messages are stored; `reply` is the one stored, and `paid`
    /// says whether `cost` was spent (false: the unpaid reply was stored).
    Recorded {
        /// The stored reply.
        reply: ChatMessage,
        /// Whether the credits were spent.
        paid: bool,
    },
    /// The session had asked its limit; nothing was stored.
    RateLimited {
        /// The session's last activity (the limit lasts until it idles out).
        last_active_at: DateTime<Utc>,
    },
}

/// How a generation that was paid for ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenerationOutcome {
    /// The model drafted a Flow: store `item` and finish the ANALYZING
    /// reply as `reply` (GENERATED_CONTENT, pointing at it).
    Generated {
        /// The new Flow (published under "No users").
        item: ContentItem,
        /// The reply's final state.
        reply: ChatMessage,
    },
    /// It failed: finish the reply as `reply` (FAILED) and give the
    /// tenant back `refund` credits.
    Failed {
        /// The reply's final state.
        reply: ChatMessage,
        /// The tenant to refund.
        tenant_id: TenantId,
        /// Credits to give back.
        refund: u32,
    },
}

/// Something that changed what `GET /sdk/chat/config` answers, as the
/// store reports it to the replicas' config caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigChange {
    /// A site, its key or its widget changed, or it was deleted.
    Site(SiteId),
    /// A tenant's plan changed.
    Tenant(TenantId),
    /// Changes may have been missed (e.g. the listener reconnected):
    /// everything cached is suspect.
    Everything,
}

/// What a vote replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteOutcome {
    /// The message's vote before this one, if any.
    pub previous: Option<Vote>,
}

/// A visitor's request for a support ticket, checked, with the ids it
/// will be stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenTicket {
    /// The hash of the API key the request carried (checked again).
    pub key: SecretHash,
    /// The session it is opened from.
    pub session_id: SessionId,
    /// The new ticket's id.
    pub ticket_id: TicketId,
    /// The id of its email's outbox row (also the mail API's idempotency
    /// key).
    pub delivery_id: uuid::Uuid,
    /// The email's Message-ID, the same on every attempt.
    pub message_id: String,
    /// The subject, message and typed-in address.
    pub text: TicketText,
    /// Now.
    pub now: DateTime<Utc>,
}

/// The widget SDK's storage.
#[cfg_attr(feature = "testing", automock)]
pub trait VisitorRepository: Send + Sync {
    /// The site whose API key has this hash, its tenant's plan and its
    /// widget, read together; `None` for an unknown key.
    fn load_gate(&self, key: &SecretHash) -> Result<Option<SiteGate>, Error>;

    /// Opens or resumes the visitor's session, in one transaction that:
    /// checks the key still belongs to the site ([`Error::InvalidCredentials`]);
    /// finds the visitor by (site, anonymousId) or adds them
    /// (`new_visitor_id`); refuses a visitor identified as someone else
    /// ([`crate::visitor::check_identity`], on the row locked); writes
    /// `externalId`/`verified` when an `externalId` is given, traits when
    /// given, and last seen = now;
    /// ends the visitor's current session with the widget if it idled out
    /// (`idle_cutoff`); inserts session `new_session_id` unless the visitor
    /// has a current one (concurrent callers all get the one that won);
    /// and records `token` as a token of the session.
    fn open_session(&self, request: &OpenSession) -> Result<OpenedSession, Error>;

    /// The session holding the token with this hash, when the site of the
    /// key with hash `key` is the session's; `None` otherwise.
    fn find_session(
        &self,
        key: &SecretHash,
        token: &SecretHash,
    ) -> Result<Option<AskContext>, Error>;

    /// Whether a browser on `host` may call the SDK at all: some site's
    /// domain is `host`, or is a parent domain of it on a site that allows
    /// subdomains ([`crate::host::SiteDomain::matches_host`]). The CORS
    /// preflight, which carries no site key, is answered on this.
    fn admits_origin_host(&self, host: &str) -> Result<bool, Error>;

    /// The site's PUBLISHED content items.
    fn published_content(&self, site: SiteId) -> Result<Vec<ContentItem>, Error>;

    /// A session's messages, oldest first, each with its vote.
    fn list_messages(
        &self,
        session: SessionId,
        page: &PageRequest<MessageId>,
    ) -> Result<Page<TimelineEntry, MessageId>, Error>;

    /// Records a question and its reply in one transaction that: checks
    /// the key; counts the question only while the session is current (not
    /// ended, active since `idle_cutoff`; else [`Error::NotFound`]) and
    /// below `limit` (else `RateLimited`, nothing stored); spends `cost`
    /// credits only if the balance covers them (never below zero), else
    /// stores `unpaid_reply`; inserts both messages; and moves the
    /// session's message count, preview and last activity on.
    fn record_exchange(&self, exchange: &Exchange) -> Result<ExchangeOutcome, Error>;

    /// Finishes a generated answer in one transaction: the new Flow and the
    /// reply's final state (only while the reply is still ANALYZING), or
    /// the failure and the refund.
    fn finish_generation(&self, outcome: &GenerationOutcome) -> Result<(), Error>;

    /// Records a vote on a message of the session in one transaction that
    /// locks the session's row: [`Error::NotFound`] for a message of
    /// another session, [`Error::NotAnAssistantMessage`] unless it is an
    /// assistant's; one vote per message (a new vote replaces the old); the
    /// session's up/down counters change by the difference and its last
    /// activity moves to `now`.
    fn vote(
        &self,
        session: SessionId,
        message: MessageId,
        vote: Vote,
        new_feedback_id: FeedbackId,
        now: DateTime<Utc>,
    ) -> Result<VoteOutcome, Error>;

    /// Opens a support ticket from the session, in one transaction: the
    /// session (locked) must have a DOWN vote ([`Error::NoDownvote`]); the
    /// reply address is the typed one or the visitor's `email` trait (else
    /// a validation error on `email`); the ticket stores a snapshot of the
    /// whole conversation; the session's `ticket_id` is set if it has none
    /// (its first ticket); and the email's outbox row is written: PENDING
    /// to the recipient [`crate::ticket::resolve_recipient`] picks from the
    /// widget's support email and the tenant's first OWNER, or
    /// NO_RECIPIENT. The session's activity does not move.
    fn open_ticket(&self, request: &OpenTicket) -> Result<SupportTicket, Error>;
}
