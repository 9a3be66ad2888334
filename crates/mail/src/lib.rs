//! chatdesk's mail adapters: the [`Mailer`] port over SMTP ([`SmtpMailer`],
//! lettre's blocking transport with rustls) and, with no mail service
//! configured, a [`LogMailer`] that only logs the payload.
//!
//! The binary turns its settings (`SMTP_URL`, `RESEND_API_KEY`,
//! `MAIL_FROM`) into a [`MailConfig`], logs [`describe`] and calls
//! [`build_mailer`], which refuses a bad `SMTP_URL` or `MAIL_FROM` so the
//! server does not start half-configured.
//!
//! Resend (HTTP API) is not implemented in this build: with only
//! `RESEND_API_KEY` set, mail is logged, and a warning says so at start.
//!
//! Behind the `testing` feature, `testing` holds a tiny std-only SMTP
//! server for tests (not part of the release binary).

use std::fmt;

use chatdesk_domain::ports::Mailer;

mod log_only;
mod redact;
mod smtp;
#[cfg(feature = "testing")]
pub mod testing;

pub use log_only::{LogMailer, LOG_TAG, NO_MAIL_SERVICE};
pub use redact::redact_url;
pub use smtp::{SmtpMailer, DEFAULT_TIMEOUT};

use smtp::parse_from;

/// The sender used when `MAIL_FROM` is not set.
pub const DEFAULT_FROM: &str = "chatdesk <no-reply@chatdesk.localhost>";

/// Why Resend is not used, for logs.
const RESEND_UNAVAILABLE: &str = "Resend delivery is not available in this build";

/// Mail settings, as read from the environment.
///
/// Blank values (empty or only spaces) count as unset.
#[derive(Clone, PartialEq, Eq)]
pub struct MailConfig {
    /// `SMTP_URL`, e.g. `smtp://127.0.0.1:2525`,
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS) or
    /// `smtps://user:pass@host` (implicit TLS); the syntax of lettre's
    /// `SmtpTransport::from_url`.
    pub smtp_url: Option<String>,
    /// `RESEND_API_KEY`. Resend is not implemented in this build.
    pub resend_api_key: Option<String>,
    /// `MAIL_FROM`, e.g. `chatdesk <no-reply@example.com>`.
    pub from: String,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            smtp_url: None,
            resend_api_key: None,
            from: DEFAULT_FROM.to_owned(),
        }
    }
}

impl MailConfig {
    /// `SMTP_URL`, when set and not blank.
    fn smtp_url(&self) -> Option<&str> {
        non_blank(self.smtp_url.as_deref())
    }

    /// Whether `RESEND_API_KEY` is set and not blank.
    fn has_resend_key(&self) -> bool {
        non_blank(self.resend_api_key.as_deref()).is_some()
    }
}

/// Never prints the API key or the SMTP password.
impl fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailConfig")
            .field("smtp_url", &self.smtp_url.as_deref().map(redact_url))
            .field(
                "resend_api_key",
                &self.resend_api_key.as_ref().map(|_| "***"),
            )
            .field("from", &self.from)
            .finish()
    }
}

fn non_blank(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// A mail setting that cannot be used; the binary should refuse to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailConfigError {
    /// `SMTP_URL` is not a usable SMTP URL. `url` has its password redacted.
    #[error("invalid SMTP_URL {url:?}: {reason} (expected e.g. smtp://127.0.0.1:2525, smtp://user:pass@host:587?tls=required or smtps://user:pass@host)")]
    InvalidSmtpUrl {
        /// The URL, password redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `MAIL_FROM` is not a mailbox.
    #[error(
        "invalid MAIL_FROM {from:?}: {reason} (expected e.g. \"chatdesk <no-reply@example.com>\")"
    )]
    InvalidFrom {
        /// The value given.
        from: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Builds the mailer the settings ask for: SMTP when `smtp_url` is set,
/// else a [`LogMailer`].
///
/// `from` is checked in every case. With `resend_api_key` set, one warning
/// says Resend is not available in this build (mail goes through SMTP when
/// `smtp_url` is set, else is logged only).
pub fn build_mailer(config: &MailConfig) -> Result<Box<dyn Mailer>, MailConfigError> {
    let from = parse_from(&config.from)?;
    match config.smtp_url() {
        Some(url) => {
            let mailer = SmtpMailer::with_from(url, from, DEFAULT_TIMEOUT)?;
            if config.has_resend_key() {
                tracing::warn!(
                    "RESEND_API_KEY is set, but {RESEND_UNAVAILABLE}; sending through SMTP_URL ({})",
                    mailer.description()
                );
            }
            Ok(Box::new(mailer))
        }
        None => {
            if config.has_resend_key() {
                tracing::warn!(
                    "RESEND_API_KEY is set, but {RESEND_UNAVAILABLE}: email is logged only \
                     (set SMTP_URL to deliver it)"
                );
            }
            Ok(Box::new(LogMailer))
        }
    }
}

/// One line for the start-up log saying where mail goes, passwords and API
/// keys redacted: `smtp://user:***@host:587?tls=required`, or `log only`.
pub fn describe(config: &MailConfig) -> String {
    match (config.smtp_url(), config.has_resend_key()) {
        (Some(url), false) => redact_url(url),
        (Some(url), true) => format!(
            "{} (RESEND_API_KEY ignored: {RESEND_UNAVAILABLE})",
            redact_url(url)
        ),
        (None, true) => format!("log only (RESEND_API_KEY is set, but {RESEND_UNAVAILABLE})"),
        (None, false) => "log only".to_owned(),
    }
}
