//! The mailer used when no mail service is configured.

use chatdesk_domain::ports::{MailError, MailOutcome, Mailer, OutgoingEmail};

/// The tag of every mail warning about a support ticket's email.
pub const LOG_TAG: &str = "[email] support_ticket_created";

/// The cause logged by [`LogMailer`].
pub const NO_MAIL_SERVICE: &str = "no mail service configured (payload logged only)";

/// Sends nothing: logs the whole payload (to, reply-to, subject, body,
/// message id) as a warning tagged [`LOG_TAG`] and answers
/// [`MailOutcome::LoggedOnly`].
///
/// The subject and body, typed by visitors, are logged quoted and escaped
/// (`Debug`), so they cannot forge log lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LogMailer;

impl Mailer for LogMailer {
    fn send(&self, email: &OutgoingEmail) -> Result<MailOutcome, MailError> {
        tracing::warn!(
            to = %email.to,
            reply_to = %email.reply_to.as_ref().map_or("(none)", |e| e.as_str()),
            subject = ?email.subject,
            message_id = %email.message_id,
            body = ?email.text,
            cause = NO_MAIL_SERVICE,
            "{LOG_TAG}: {NO_MAIL_SERVICE}"
        );
        Ok(MailOutcome::LoggedOnly)
    }
}
