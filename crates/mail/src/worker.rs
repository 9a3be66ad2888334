//! The delivery worker: a thread of the server process that runs the
//! domain's [`DeliveryService`] rounds, and the [`TicketMailer`] adapter
//! that writes a ticket's email ([`ticket_email`]) and hands it to the
//! configured transport.
//!
//! Emails are queued in the outbox by the ticket's own transaction, so the
//! worker finds them whenever it runs: those left undelivered by a stopped
//! or crashed process are sent by the next one (an email whose claim a
//! crash left behind is taken over once the claim runs out, with the same
//! Message-ID and Resend idempotency key).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use chatdesk_domain::ports::{ClaimedEmail, MailError, MailOutcome, Mailer, TicketMailer};
use chatdesk_domain::services::DeliveryService;
use chatdesk_domain::ticket::EMAIL_LOG_TAG;

use crate::ticket_email::ticket_email;

/// Sends ticket emails through a transport.
pub struct TransportTicketMailer {
    transport: Box<dyn Mailer>,
}

impl TransportTicketMailer {
    /// Ticket emails through `transport` (see [`crate::build_mailer`]).
    pub fn new(transport: Box<dyn Mailer>) -> Self {
        TransportTicketMailer { transport }
    }
}

impl TicketMailer for TransportTicketMailer {
    fn send_ticket(&self, email: &ClaimedEmail) -> Result<MailOutcome, MailError> {
        let outgoing = ticket_email(
            &email.content,
            &email.recipient,
            &email.message_id,
            &email.delivery_id.to_string(),
        );
        self.transport.send(&outgoing)
    }
}

/// How the worker paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSettings {
    /// How long it waits when nothing was due (a new ticket's email goes
    /// out within about this long).
    pub idle_poll: Duration,
    /// How long it waits after the database failed.
    pub error_backoff: Duration,
    /// The most emails one round claims.
    pub batch: u32,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            idle_poll: Duration::from_millis(500),
            error_backoff: Duration::from_secs(2),
            // At most 5 sends of up to 30 s each fit in a 2-minute claim.
            batch: 5,
        }
    }
}

/// Starts the worker's thread; it stops (after its current send) once
/// `stop` is set.
pub fn spawn_delivery_worker(
    service: DeliveryService,
    settings: WorkerSettings,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("chatdesk-delivery".into())
        .spawn(move || {
            tracing::info!(
                batch = settings.batch,
                "ticket email delivery worker started"
            );
            while !stop.load(Ordering::Acquire) {
                let wait = match service.deliver_due(settings.batch) {
                    // A full batch: more may be due right away.
                    Ok(round) if round.claimed >= settings.batch as usize => Duration::ZERO,
                    Ok(_) => settings.idle_poll,
                    Err(error) => {
                        tracing::warn!(
                            %error,
                            "{EMAIL_LOG_TAG} the outbox cannot be read; delivery resumes when \
                             the database answers"
                        );
                        settings.error_backoff
                    }
                };
                sleep_unless_stopped(wait, &stop);
            }
            tracing::info!("ticket email delivery worker stopped");
        })
}

/// Sleeps for `wait`, waking early when `stop` is set.
fn sleep_unless_stopped(wait: Duration, stop: &AtomicBool) {
    let step = Duration::from_millis(50);
    let mut left = wait;
    while !left.is_zero() && !stop.load(Ordering::Acquire) {
        let nap = left.min(step);
        std::thread::sleep(nap);
        left = left.saturating_sub(nap);
    }
}
