//! The use cases, one small service per area of the product. Each service
//! holds only the ports its use cases need, so a test (or a program reusing
//! this crate) builds just the service it exercises; the binary composes
//! them and the HTTP layer receives only the services its routes use.
//!
//! Every use case checks the actor's role, validates its input with the
//! entity rules and calls the ports; writes name only what the use case
//! owns (see [`crate::site::SiteChanges`]) and state changes are made by
//! the store under a lock or condition (see [`crate::ports`]).

mod content;
mod conversation;
mod delivery;
mod idempotency;
mod operator;
mod sites;
mod tenancy;
mod tickets;
mod visitor;
mod widget;

pub use content::ContentService;
pub use conversation::{ConversationService, TIMELINE_CHUNK};
pub use delivery::{DeliveryRound, DeliveryService};
pub use idempotency::{Answer, IdempotencyService};
pub use operator::OperatorService;
pub use sites::SiteService;
pub use tenancy::{CreatedTenant, TenancyService};
pub use tickets::TicketService;
pub use visitor::{
    clean_guide, Answered, RankerChoice, VisitorService, Voted, GENERATED_ANSWER_MAX,
    GENERATION_FAILED_NOTICE, NO_MODEL_NOTICE,
};
pub use widget::WidgetService;

use crate::ports::IdGenerator;
use crate::secret::{IssuedSecret, SecretKind};

/// A thing with a secret that is shown this once (an API key, a token, an
/// identity secret).
#[derive(Debug, Clone)]
pub struct WithSecret<T> {
    /// The thing.
    pub value: T,
    /// The full secret, shown once.
    pub secret: String,
}

/// A new secret of `kind` from the id generator's randomness.
fn issue(ids: &dyn IdGenerator, kind: SecretKind) -> IssuedSecret {
    IssuedSecret::new(kind, ids.random_bytes())
}
