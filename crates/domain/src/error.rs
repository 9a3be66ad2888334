//! Domain errors. Each carries a stable, machine-readable `code` and a
//! [`ErrorKind`] that the HTTP layer maps to a status; the domain never names
//! HTTP types.

use std::fmt;

use serde::Serialize;

/// What kind of failure an error is; the API maps each kind to one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input breaks a rule (a field is invalid).
    Validation,
    /// Missing or unknown credentials.
    Unauthorized,
    /// The caller is known but may not do this.
    Forbidden,
    /// The thing does not exist, or belongs to someone else.
    NotFound,
    /// The request conflicts with the current state.
    Conflict,
    /// Too many requests.
    RateLimited,
    /// A precondition of the request (`If-Match`) does not hold.
    PreconditionFailed,
    /// A dependency (the database) cannot be reached for now; retry later.
    Unavailable,
    /// Something failed on our side (storage, mail transport).
    Internal,
}

/// One invalid field of an input, named as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's name in the request (camelCase, dotted for nested fields).
    pub field: String,
    /// What is wrong, for a human.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The things a lookup can fail to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// A tenant.
    Tenant,
    /// A team member.
    Member,
    /// A site.
    Site,
    /// A chat widget.
    Widget,
    /// A content item.
    Content,
    /// A chat session.
    Session,
    /// A chat message.
    Message,
    /// A support ticket.
    Ticket,
}

impl Entity {
    /// The entity's name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Entity::Tenant => "tenant",
            Entity::Member => "member",
            Entity::Site => "site",
            Entity::Widget => "widget",
            Entity::Content => "content item",
            Entity::Session => "chat session",
            Entity::Message => "chat message",
            Entity::Ticket => "support ticket",
        }
    }
}

/// Every way a chatdesk use case can fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// One or more fields are invalid.
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    /// No credentials were given.
    #[error("credentials are missing")]
    MissingCredentials,
    /// The credentials are not known.
    #[error("the credentials are not valid")]
    InvalidCredentials,
    /// The member's role is too weak for the action.
    #[error("this action needs the {needed} role or stronger")]
    RoleTooWeak {
        /// The weakest role that may act.
        needed: crate::tenant::Role,
    },
    /// The thing does not exist (or is not the caller's to see).
    #[error("{} not found", .0.name())]
    NotFound(Entity),
    /// The plan caps the number of sites.
    #[error("the {plan} plan allows at most {cap} site(s)")]
    PlanLimit {
        /// The tenant's plan.
        plan: crate::tenant::Plan,
        /// The cap.
        cap: u32,
    },
    /// Removing or demoting this member would leave the tenant without an owner.
    #[error("a tenant must keep at least one owner")]
    LastOwner,
    /// The site's mapping is not COMPLETED.
    #[error("the site's mapping is not completed")]
    SiteNotMapped,
    /// A member with this email already belongs to the tenant.
    #[error("a member with this email already exists")]
    MemberExists,
    /// The tenant already has a site with this domain.
    #[error("a site with this domain already exists")]
    SiteExists,
    /// The thing changed since the caller read it (a stale `If-Match`).
    #[error("the {} changed since it was read; read it again and retry", .0.name())]
    PreconditionFailed(Entity),
    /// The database cannot be reached for now.
    #[error("the database is unavailable; retry shortly")]
    DatabaseUnavailable,
    /// The widget's gate is closed; the code is the reason.
    #[error("the chat is not available on this site: {}", .0.as_str())]
    GateClosed(crate::widget::GateClosed),
    /// A browser call came from an origin that is not the site's.
    #[error("this origin is not the site's domain")]
    OriginNotAllowed,
    /// A visitor's `externalId` lacks a valid `userHash` on a site that
    /// verifies identities.
    #[error("the visitor's identity could not be verified: userHash is missing or wrong")]
    IdentityNotVerified,
    /// The anonymousId belongs to a visitor identified as someone else (or
    /// the request drops the identity): it opens no session of theirs.
    #[error(
        "this anonymousId belongs to another identified visitor; start over with a new anonymousId"
    )]
    IdentityConflict,
    /// A session's call came without its session token.
    #[error("this call needs the session's token in X-Chatdesk-Session")]
    SessionTokenRequired,
    /// The session asked as many questions as the widget allows.
    #[error("this session has asked the {limit} questions it may ask")]
    RateLimited {
        /// The widget's questions-per-session limit.
        limit: u32,
        /// Seconds until the visitor may start a new session.
        retry_after_secs: u64,
    },
    /// A vote on a message that is not an assistant's.
    #[error("only assistant messages can be voted on")]
    NotAnAssistantMessage,
    /// A request with an `Idempotency-Key` whose first request has not been
    /// answered (it is still running, or its process stopped mid-way).
    #[error("a request with this Idempotency-Key is not answered yet; retry in a moment")]
    IdempotencyKeyInUse,
    /// A support ticket asked for in a session with no DOWN vote.
    #[error("a support ticket follows a thumbs-down: this session has no DOWN vote")]
    NoDownvote,
    /// Storage or another adapter failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A validation error for one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(field, message)])
    }

    /// The stable, machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation(_) => "VALIDATION_FAILED",
            Error::MissingCredentials => "MISSING_CREDENTIALS",
            Error::InvalidCredentials => "INVALID_CREDENTIALS",
            Error::RoleTooWeak { .. } => "ROLE_TOO_WEAK",
            Error::NotFound(_) => "NOT_FOUND",
            Error::PlanLimit { .. } => "PLAN_LIMIT",
            Error::LastOwner => "LAST_OWNER",
            Error::SiteNotMapped => "SITE_NOT_MAPPED",
            Error::MemberExists => "MEMBER_EXISTS",
            Error::SiteExists => "SITE_EXISTS",
            Error::PreconditionFailed(_) => "PRECONDITION_FAILED",
            Error::DatabaseUnavailable => "DATABASE_UNAVAILABLE",
            Error::GateClosed(reason) => reason.as_str(),
            Error::OriginNotAllowed => "ORIGIN_NOT_ALLOWED",
            Error::IdentityNotVerified => "IDENTITY_NOT_VERIFIED",
            Error::SessionTokenRequired => "SESSION_TOKEN_REQUIRED",
            Error::IdentityConflict => "IDENTITY_CONFLICT",
            Error::RateLimited { .. } => "RATE_LIMITED",
            Error::NotAnAssistantMessage => "NOT_AN_ASSISTANT_MESSAGE",
            Error::NoDownvote => "NO_DOWNVOTE",
            Error::IdempotencyKeyInUse => "IDEMPOTENCY_KEY_IN_USE",
            Error::Internal(_) => "INTERNAL",
        }
    }

    /// The kind of failure, which decides the HTTP status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Validation(_) => ErrorKind::Validation,
            Error::NotAnAssistantMessage => ErrorKind::Validation,
            Error::MissingCredentials
            | Error::InvalidCredentials
            | Error::IdentityNotVerified
            | Error::SessionTokenRequired => ErrorKind::Unauthorized,
            Error::RoleTooWeak { .. } | Error::GateClosed(_) | Error::OriginNotAllowed => {
                ErrorKind::Forbidden
            }
            Error::RateLimited { .. } => ErrorKind::RateLimited,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::PlanLimit { .. }
            | Error::LastOwner
            | Error::SiteNotMapped
            | Error::MemberExists
            | Error::SiteExists
            | Error::IdentityConflict
            | Error::NoDownvote
            | Error::IdempotencyKeyInUse => ErrorKind::Conflict,
            Error::PreconditionFailed(_) => ErrorKind::PreconditionFailed,
            Error::DatabaseUnavailable => ErrorKind::Unavailable,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The invalid fields, for a validation error.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            Error::Validation(errors) => errors,
            _ => &[],
        }
    }
}

/// Collects field errors while parsing an input, then yields the parsed
/// value or every error at once.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps `Ok` values, records `Err` messages under `field`.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.errors.push(FieldError::new(field, message));
                None
            }
        }
    }

    /// Records an error under `field`.
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// `Ok(())` when nothing was recorded, else every error.
    pub fn finish(self) -> Result<(), Error> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self.errors))
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}
