//! Ports: what the use cases need from the outside world. The store, mail
//! and other adapters implement them; the binary picks which.
//!
//! Every method that must be atomic is documented as one transaction.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::content::{ContentFilter, ContentItem, ContentPatch};
use crate::error::Error;
use crate::ids::{ContentId, MemberId, SiteId, TenantId};
use crate::secret::{SecretHash, SECRET_BYTES};
use crate::site::{Site, SiteChanges};
use crate::tenant::{Actor, Plan, Tenant, TenantMember};
use crate::version::Precondition;
#[cfg(doc)]
use crate::widget::WidgetSettings;
use crate::widget::{ChatWidget, NamedSettings, WidgetTransition};

#[cfg(feature = "testing")]
use mockall::automock;

/// The current time.
#[cfg_attr(feature = "testing", automock)]
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// New ids and random bytes for secrets.
#[cfg_attr(feature = "testing", automock)]
pub trait IdGenerator: Send + Sync {
    /// A new, time-ordered (v7) UUID.
    fn new_id(&self) -> Uuid;
    /// Random bytes from a cryptographically secure source.
    fn random_bytes(&self) -> [u8; SECRET_BYTES];
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Now, truncated to microseconds: the precision both databases keep,
    /// so what a use case returns reads back identically.
    fn now(&self) -> DateTime<Utc> {
        use chrono::SubsecRound;
        Utc::now().trunc_subsecs(6)
    }
}

/// UUID v7 ids and operating-system randomness.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }

    fn random_bytes(&self) -> [u8; SECRET_BYTES] {
        use rand::RngCore;
        let mut bytes = [0u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        bytes
    }
}

/// A page request of a keyset-paginated list: up to `limit` items after
/// the cursor `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest<C> {
    /// How many items (1–100).
    pub limit: u32,
    /// The last item of the previous page.
    pub after: Option<C>,
}

/// One page of a list and the cursor of its last item when more follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, C> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// Set when another page follows.
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// Builds a page from up to `limit + 1` fetched rows: the extra row, if
    /// present, only says another page follows.
    pub fn from_overfetch(mut rows: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> C) -> Self {
        let limit = limit as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            rows.last().map(cursor_of)
        } else {
            None
        };
        Page { items: rows, next }
    }
}

/// Whether the service can reach what it needs (for `/readyz`).
#[cfg_attr(feature = "testing", automock)]
pub trait Readiness: Send + Sync {
    /// `Ok` when the database answers.
    fn check(&self) -> Result<(), Error>;
}

/// Tenants and their plan and credits.
#[cfg_attr(feature = "testing", automock)]
pub trait TenantRepository: Send + Sync {
    /// Stores a new tenant and its first OWNER with the owner's token hash,
    /// in one transaction.
    fn create_tenant(
        &self,
        tenant: &Tenant,
        owner: &TenantMember,
        owner_token: &SecretHash,
    ) -> Result<(), Error>;
    /// A tenant by id.
    fn get_tenant(&self, id: TenantId) -> Result<Tenant, Error>;
    /// Changes the plan.
    fn set_plan(&self, id: TenantId, plan: Plan) -> Result<Tenant, Error>;
    /// Adds (or, negative, removes) credits atomically, keeping the balance
    /// at or above zero (see [`crate::tenant::add_credits`]).
    fn add_credits(&self, id: TenantId, delta: i64) -> Result<Tenant, Error>;
}

/// Team members and their tokens.
#[cfg_attr(feature = "testing", automock)]
pub trait MemberRepository: Send + Sync {
    /// The member holding the token with this hash, with its tenant.
    fn find_by_token(&self, token: &SecretHash) -> Result<Option<Actor>, Error>;
    /// The tenant's members, oldest first.
    fn list_members(
        &self,
        tenant: TenantId,
        page: &PageRequest<MemberId>,
    ) -> Result<Page<TenantMember, MemberId>, Error>;
    /// A member of the tenant.
    fn get_member(&self, tenant: TenantId, id: MemberId) -> Result<TenantMember, Error>;
    /// Adds a member with its token hash; [`Error::MemberExists`] when the
    /// email is taken in the tenant.
    fn insert_member(&self, member: &TenantMember, token: &SecretHash) -> Result<(), Error>;
    /// The tenant's first OWNER, the fallback ticket recipient.
    fn first_owner(&self, tenant: TenantId) -> Result<Option<TenantMember>, Error>;
    /// Removes a member in one transaction that fails with
    /// [`Error::LastOwner`] when it is the tenant's last OWNER.
    fn remove_member_keeping_an_owner(&self, tenant: TenantId, id: MemberId) -> Result<(), Error>;
}

/// Sites.
#[cfg_attr(feature = "testing", automock)]
pub trait SiteRepository: Send + Sync {
    /// Stores a new site in one transaction that locks its tenant's row,
    /// counts the tenant's sites and applies the plan on that locked row
    /// ([`Plan::check_site_cap`]), so a concurrent plan change or create
    /// cannot slip past the cap; [`Error::SiteExists`] when the tenant has
    /// the domain.
    fn insert_site(&self, site: &Site) -> Result<(), Error>;
    /// The tenant's sites, oldest first.
    fn list_sites(
        &self,
        tenant: TenantId,
        page: &PageRequest<SiteId>,
    ) -> Result<Page<Site, SiteId>, Error>;
    /// A site of the tenant; [`Error::NotFound`] for another tenant's.
    fn get_site(&self, tenant: TenantId, id: SiteId) -> Result<Site, Error>;
    /// The site whose API key has this hash.
    fn find_by_api_key(&self, key: &SecretHash) -> Result<Option<Site>, Error>;
    /// Writes `changes` to a site of the tenant in one transaction that
    /// locks the row, checks `precondition` against its entity tag, and
    /// updates only the columns `changes` names whose value differs (one
    /// version on, `updated_at` = `now`); returns the site as stored.
    /// [`Error::SiteExists`] when the new domain is taken.
    fn update_site(
        &self,
        tenant: TenantId,
        id: SiteId,
        changes: &SiteChanges,
        precondition: &Precondition,
        now: DateTime<Utc>,
    ) -> Result<Site, Error>;
    /// Deletes a site of the tenant and everything under it.
    fn delete_site(&self, tenant: TenantId, id: SiteId) -> Result<(), Error>;
}

/// A site with its widget, as read in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteWidget {
    /// The site.
    pub site: Site,
    /// Its widget.
    pub widget: ChatWidget,
}

/// Chat widgets (one per site).
#[cfg_attr(feature = "testing", automock)]
pub trait WidgetRepository: Send + Sync {
    /// The site's widget, if it has one.
    fn get_widget(&self, site: SiteId) -> Result<Option<ChatWidget>, Error>;
    /// Saves the Builder's settings of the site's widget in one transaction
    /// that locks the site's row: inserts `draft` when the site has no
    /// widget (then `Ok((…, true))`), else checks `precondition` against
    /// the widget's entity tag and writes the draft's settings, keeping
    /// the current value of each optional field not `named`
    /// ([`WidgetSettings::keeping`]), to the settings columns only (never
    /// the status). [`Error::NotFound`] when the site is not the tenant's.
    fn save_widget_settings(
        &self,
        tenant: TenantId,
        draft: &ChatWidget,
        named: &NamedSettings,
        precondition: &Precondition,
    ) -> Result<(SiteWidget, bool), Error>;
    /// Publishes or pauses the site's widget in one transaction that locks
    /// the site's row, applies the transition's rule to that row
    /// ([`WidgetTransition::apply`]: the mapping it checks is the current
    /// one) and writes the status conditionally on the version it read.
    fn transition_widget(
        &self,
        tenant: TenantId,
        site: SiteId,
        transition: WidgetTransition,
        now: DateTime<Utc>,
    ) -> Result<SiteWidget, Error>;
}

/// The content library.
#[cfg_attr(feature = "testing", automock)]
pub trait ContentRepository: Send + Sync {
    /// Stores a new item.
    fn insert_content(&self, item: &ContentItem) -> Result<(), Error>;
    /// The site's items passing `filter`, oldest first.
    fn list_content(
        &self,
        site: SiteId,
        filter: &ContentFilter,
        page: &PageRequest<ContentId>,
    ) -> Result<Page<ContentItem, ContentId>, Error>;
    /// An item of the site.
    fn get_content(&self, site: SiteId, id: ContentId) -> Result<ContentItem, Error>;
    /// Applies `patch` ([`ContentItem::apply`]) to an item of the site in
    /// one transaction that reads the row, checks `precondition` against
    /// its entity tag, and writes only the status and audiences,
    /// conditionally on the version it read; returns the item as stored.
    fn update_content(
        &self,
        site: SiteId,
        id: ContentId,
        patch: &ContentPatch,
        precondition: &Precondition,
        now: DateTime<Utc>,
    ) -> Result<ContentItem, Error>;
}

/// An email to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// Recipient.
    pub to: crate::email::Email,
    /// Where replies go.
    pub reply_to: Option<crate::email::Email>,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body (an alternative to `text`), if any.
    pub html: Option<String>,
    /// A stable Message-ID (without angle brackets), so a retried delivery
    /// is recognisably the same message.
    pub message_id: String,
    /// The same on every attempt to deliver this email (the outbox row's
    /// id): a mail API that deduplicates requests (Resend's
    /// `Idempotency-Key`) delivers a resend after a crash only once.
    pub delivery_id: String,
}

/// How a mail was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailOutcome {
    /// Accepted by the mail service.
    Sent,
    /// No mail service is configured; the payload was logged.
    LoggedOnly,
}

/// Whether a failed send may succeed if tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailErrorKind {
    /// Worth retrying later: the mail service could not be reached, timed
    /// out, or answered with a temporary failure (SMTP 4xx).
    Transient,
    /// Retrying the same email will fail the same way: the service refused
    /// it (SMTP 5xx) or the email cannot be built (e.g. an invalid address).
    Permanent,
}

/// Why an email was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MailError {
    /// Whether to retry.
    pub kind: MailErrorKind,
    /// The mail service's or transport's reason, to record; never holds a
    /// password.
    pub message: String,
}

impl MailError {
    /// A failure worth retrying later.
    pub fn transient(message: impl Into<String>) -> MailError {
        MailError {
            kind: MailErrorKind::Transient,
            message: message.into(),
        }
    }

    /// A failure that retrying will not cure.
    pub fn permanent(message: impl Into<String>) -> MailError {
        MailError {
            kind: MailErrorKind::Permanent,
            message: message.into(),
        }
    }

    /// Whether a later attempt may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind == MailErrorKind::Transient
    }
}

/// Sends email.
#[cfg_attr(feature = "testing", automock)]
pub trait Mailer: Send + Sync {
    /// Sends one email; an `Err` says why and whether to retry.
    fn send(&self, email: &OutgoingEmail) -> Result<MailOutcome, MailError>;
}

/// Runs several repository calls as one unit (one database transaction,
/// which the calls `work` makes on this thread join): what they write is
/// kept together or not at all, and a process that dies midway leaves
/// nothing. Not mocked: `testing::WithoutTransaction` (behind the
/// `testing` feature) runs the work as it is, for tests over mocked
/// repositories.
pub trait UnitOfWork: Send + Sync {
    /// Runs `work`; keeps what it wrote only when it returns `Ok`.
    fn atomically(&self, work: &mut dyn FnMut() -> Result<(), Error>) -> Result<(), Error>;
}

/// Remembers idempotency keys and their first answers (see
/// [`crate::idempotency`]).
#[cfg_attr(feature = "testing", automock)]
pub trait IdempotencyRepository: Send + Sync {
    /// Forgets the keys reserved before `before` (their lifetime is over).
    fn forget_keys_before(&self, before: DateTime<Utc>) -> Result<(), Error>;

    /// Reserves the key (a unique row) for this request, or says what its
    /// first request left.
    fn reserve_key(
        &self,
        record: &crate::idempotency::KeyRecord,
    ) -> Result<crate::idempotency::Reservation, Error>;

    /// Records the answer to a reserved key's request.
    fn record_answer(
        &self,
        digest: &str,
        status: u16,
        sealed: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), Error>;
}

mod conversation;
mod directory;
mod model;
mod outbox;
mod tickets;
mod visitor;

#[cfg(feature = "testing")]
pub use conversation::MockConversationRepository;
#[cfg(feature = "testing")]
pub use directory::MockTenantDirectory;
#[cfg(feature = "testing")]
pub use model::MockAnswerModel;
#[cfg(feature = "testing")]
pub use outbox::{MockOutboxRepository, MockTicketMailer};
#[cfg(feature = "testing")]
pub use tickets::MockTicketRepository;
#[cfg(feature = "testing")]
pub use visitor::MockVisitorRepository;

pub use conversation::ConversationRepository;
pub use directory::TenantDirectory;
pub use model::{
    AnswerModel, GeneratedGuide, GenerationRequest, ModelError, ModelReply, RankCandidate,
};
pub use outbox::{AttemptOutcome, ClaimedEmail, OutboxRepository, TicketMailer};
pub use tickets::TicketRepository;
pub use visitor::{
    AskContext, ConfigChange, Exchange, ExchangeOutcome, GenerationOutcome, OpenSession,
    OpenTicket, OpenedSession, VisitorRepository, VoteOutcome,
};
