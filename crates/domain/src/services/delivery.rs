//! Delivering ticket emails: the delivery worker's rounds. Each round
//! claims the due emails, sends each with no transaction open (a send may
//! take seconds or hang until its timeout), and records how it ended while
//! the claim still holds; a failure is retried with backoff
//! ([`crate::ticket::after_failure`]) or, once permanent or out of
//! attempts, recorded as FAILED with its cause. Every problem is logged
//! as a warning tagged [`EMAIL_LOG_TAG`].

use std::sync::Arc;

use crate::error::Error;
use crate::ports::{
    AttemptOutcome, ClaimedEmail, Clock, MailOutcome, OutboxRepository, TicketMailer,
};
use crate::ticket::{after_failure, DELIVERY_LEASE, EMAIL_LOG_TAG, SEND_BUDGET};

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryRound {
    /// Emails claimed.
    pub claimed: usize,
    /// Accepted by the mail service.
    pub sent: usize,
    /// Only logged (no mail service configured).
    pub logged: usize,
    /// Failed and due again later.
    pub retried: usize,
    /// Failed for good.
    pub failed: usize,
    /// Sent or failed, but the claim had run out before the outcome was
    /// recorded (another worker has the email now).
    pub lost_claims: usize,
    /// Left unsent because too little of the claim was left: it is taken
    /// up again once the claim runs out.
    pub deferred: usize,
}

/// The delivery worker's use case.
#[derive(Clone)]
pub struct DeliveryService {
    clock: Arc<dyn Clock>,
    outbox: Arc<dyn OutboxRepository>,
    mailer: Arc<dyn TicketMailer>,
}

impl DeliveryService {
    /// The service over its ports.
    pub fn new(
        clock: Arc<dyn Clock>,
        outbox: Arc<dyn OutboxRepository>,
        mailer: Arc<dyn TicketMailer>,
    ) -> Self {
        DeliveryService {
            clock,
            outbox,
            mailer,
        }
    }

    /// Claims up to `batch` due emails and delivers them, one after the
    /// other.
    pub fn deliver_due(&self, batch: u32) -> Result<DeliveryRound, Error> {
        let now = self.clock.now();
        let claimed = self.outbox.claim_due(now, now + DELIVERY_LEASE, batch)?;
        let mut round = DeliveryRound {
            claimed: claimed.len(),
            ..DeliveryRound::default()
        };
        for email in &claimed {
            // Earlier sends of this round may have used up the claim; an
            // email is sent only while a send fits in what is left of it.
            if self.clock.now() + SEND_BUDGET > email.lease {
                round.deferred += 1;
                continue;
            }
            let outcome = self.attempt(email);
            match &outcome {
                AttemptOutcome::Sent => round.sent += 1,
                AttemptOutcome::LoggedOnly => round.logged += 1,
                AttemptOutcome::RetryAt { .. } => round.retried += 1,
                AttemptOutcome::Failed { .. } => round.failed += 1,
            }
            let recorded = self.outbox.record_attempt(
                email.delivery_id,
                email.lease,
                &outcome,
                self.clock.now(),
            )?;
            if !recorded {
                round.lost_claims += 1;
                tracing::warn!(
                    ticket_id = %email.content.ticket_id,
                    delivery_id = %email.delivery_id,
                    "{EMAIL_LOG_TAG} the claim on this email ran out before its outcome was \
                     recorded; another worker has it now (it may be sent twice, with the same \
                     Message-ID)"
                );
            }
        }
        Ok(round)
    }

    /// Sends one email and decides what the outbox records.
    fn attempt(&self, email: &ClaimedEmail) -> AttemptOutcome {
        match self.mailer.send_ticket(email) {
            Ok(MailOutcome::Sent) => {
                tracing::info!(
                    ticket_id = %email.content.ticket_id,
                    attempt = email.attempt,
                    "ticket email sent"
                );
                AttemptOutcome::Sent
            }
            Ok(MailOutcome::LoggedOnly) => AttemptOutcome::LoggedOnly,
            Err(error) => {
                let outcome = after_failure(
                    email.attempt,
                    error.is_transient(),
                    error.message.clone(),
                    self.clock.now(),
                );
                let next = match &outcome {
                    AttemptOutcome::RetryAt { at, .. } => at.to_rfc3339(),
                    _ => "never: FAILED".to_string(),
                };
                tracing::warn!(
                    ticket_id = %email.content.ticket_id,
                    attempt = email.attempt,
                    transient = error.is_transient(),
                    error = %error.message,
                    next_attempt = %next,
                    "{EMAIL_LOG_TAG} send error"
                );
                outcome
            }
        }
    }
}
