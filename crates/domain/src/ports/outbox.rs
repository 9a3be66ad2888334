//! The email outbox's side of ticket delivery: the delivery worker claims
//! due emails, sends each with no transaction open, and records the
//! outcome while it still holds the claim.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::email::Email;
use crate::error::Error;
use crate::ports::{MailError, MailOutcome};
use crate::ticket::TicketEmail;

#[cfg(feature = "testing")]
use mockall::automock;

/// A ticket's email claimed for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedEmail {
    /// The outbox row (the mail API's idempotency key).
    pub delivery_id: Uuid,
    /// The claim: the row is this worker's until then, and the outcome is
    /// recorded only while it is.
    pub lease: DateTime<Utc>,
    /// This attempt's number (1 for the first).
    pub attempt: u32,
    /// Who receives it.
    pub recipient: Email,
    /// Its Message-ID, the same on every attempt.
    pub message_id: String,
    /// What it says.
    pub content: TicketEmail,
}

/// How an attempt ended, as the outbox records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The mail service accepted it: SENT.
    Sent,
    /// No mail service is configured and the payload was logged: LOG_ONLY.
    LoggedOnly,
    /// It failed and is tried again at `at`: PENDING, with the error kept.
    RetryAt {
        /// When it is due again.
        at: DateTime<Utc>,
        /// Why this attempt failed.
        error: String,
    },
    /// It failed for good (a permanent refusal, or the attempts are spent):
    /// FAILED, with the error kept.
    Failed {
        /// Why.
        error: String,
    },
}

/// The outbox, for the delivery worker.
#[cfg_attr(feature = "testing", automock)]
pub trait OutboxRepository: Send + Sync {
    /// Claims up to `limit` due PENDING emails (`next_attempt_at <= now`)
    /// whose claim is free (`locked_until` unset or past), oldest due
    /// first, in one short transaction: each is leased until `lease` and
    /// its attempt counted. On PostgreSQL the rows are locked with
    /// `FOR UPDATE SKIP LOCKED`, so workers of several replicas claim
    /// different rows.
    fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ClaimedEmail>, Error>;

    /// Records an attempt's outcome, only if the row is still leased to
    /// this claim (`locked_until = lease`), and frees the claim. Returns
    /// whether it was recorded (false: the lease ran out and another
    /// worker took the row over).
    fn record_attempt(
        &self,
        delivery_id: Uuid,
        lease: DateTime<Utc>,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool, Error>;
}

/// Sends a ticket's email: writes it from its content and hands it to the
/// configured transport (Resend, SMTP, or only the log).
#[cfg_attr(feature = "testing", automock)]
pub trait TicketMailer: Send + Sync {
    /// Sends one claimed email; an `Err` says why and whether to retry.
    fn send_ticket(&self, email: &ClaimedEmail) -> Result<MailOutcome, MailError>;
}
