//! The mailer used when no mail service is configured.

use chatdesk_domain::ports::{MailError, MailOutcome, Mailer, OutgoingEmail};

/// The tag of every mail warning about a support ticket's email (the
/// domain's `EMAIL_LOG_TAG`).
pub const LOG_TAG: &str = chatdesk_domain::ticket::EMAIL_LOG_TAG;

/// The cause logged by [`LogMailer`].
pub const NO_MAIL_SERVICE: &str =
    "no API key (RESEND_API_KEY) or SMTP_URL configured (payload logged only)";

/// Sends nothing: logs the whole payload (to, reply-to, subject, plain-text
/// body, message id, delivery id; whether there is an HTML part) as one
/// warning tagged [`LOG_TAG`] and answers [`MailOutcome::LoggedOnly`].
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
            message_id = ?email.message_id,
            delivery_id = ?email.delivery_id,
            html = email.html.is_some(),
            body = ?email.text,
            cause = NO_MAIL_SERVICE,
            "{LOG_TAG}: {NO_MAIL_SERVICE}"
        );
        Ok(MailOutcome::LoggedOnly)
    }
}
