//! chatdesk's mail adapters: the [`Mailer`] port over three transports,
//! and the support ticket's email.
//!
//! - [`ResendMailer`]: Resend's HTTP API (`POST {RESEND_BASE_URL}/emails`,
//!   bearer API key, the email's delivery id as `Idempotency-Key`), over
//!   ureq with rustls;
//! - [`SmtpMailer`]: an SMTP server, with lettre's blocking transport and
//!   rustls (plain text, or `multipart/alternative` with the HTML part);
//! - [`LogMailer`]: no mail service; the payload is logged as a warning.
//!
//! The binary turns its settings (`RESEND_API_KEY`, `RESEND_BASE_URL`,
//! `SMTP_URL`, `MAIL_FROM`) into a [`MailConfig`], logs [`describe`] and
//! calls [`build_mailer`], which picks Resend when an API key is set, else
//! SMTP when a URL is set, else log only, and refuses any setting that
//! cannot be used so the server does not start half-configured. Neither
//! logs nor errors ever hold the API key or an SMTP password.
//!
//! [`ticket_email`] writes a support ticket's email (subject, Reply-To,
//! plain text and HTML with the transcript) from the domain's
//! [`TicketEmail`](chatdesk_domain::ticket::TicketEmail); [`mail_domain`]
//! and [`message_id`] give it a stable Message-ID
//! (`ticket-<ticket id>@<MAIL_FROM's domain>`).
//!
//! Behind the `testing` feature, `testing` holds tiny std-only fakes of an
//! SMTP server and of Resend's API for tests (not part of the release
//! binary).

use std::fmt;

use chatdesk_domain::ports::Mailer;

mod log_only;
mod redact;
mod resend;
mod smtp;
#[cfg(feature = "testing")]
pub mod testing;
mod ticket_email;
mod worker;

pub use log_only::{LogMailer, LOG_TAG, NO_MAIL_SERVICE};
pub use redact::redact_url;
pub use resend::{ResendMailer, DEFAULT_RESEND_BASE_URL, RESEND_CONNECT_TIMEOUT};
pub use smtp::{SmtpMailer, DEFAULT_TIMEOUT};
pub use ticket_email::{
    html_escape, mail_domain, message_id, ticket_email, ticket_subject, MAX_SUBJECT_CHARS,
};
pub use worker::{spawn_delivery_worker, TransportTicketMailer, WorkerSettings};

use smtp::parse_from;

/// The sender used when `MAIL_FROM` is not set.
pub const DEFAULT_FROM: &str = "chatdesk <no-reply@chatdesk.localhost>";

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
    /// `RESEND_API_KEY`: when set, mail goes through Resend's HTTP API
    /// (and `smtp_url` is not used).
    pub resend_api_key: Option<String>,
    /// `RESEND_BASE_URL`: the root of Resend's API, e.g. a local fake
    /// `http://127.0.0.1:8025`; unset means [`DEFAULT_RESEND_BASE_URL`].
    /// Used only with `resend_api_key`.
    pub resend_base_url: Option<String>,
    /// `MAIL_FROM`, e.g. `chatdesk <no-reply@example.com>`.
    pub from: String,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            smtp_url: None,
            resend_api_key: None,
            resend_base_url: None,
            from: DEFAULT_FROM.to_owned(),
        }
    }
}

impl MailConfig {
    /// `SMTP_URL`, when set and not blank.
    fn smtp_url(&self) -> Option<&str> {
        non_blank(self.smtp_url.as_deref())
    }

    /// `RESEND_API_KEY`, when set and not blank.
    fn resend_api_key(&self) -> Option<&str> {
        non_blank(self.resend_api_key.as_deref())
    }

    /// `RESEND_BASE_URL`, when set and not blank.
    fn resend_base_url(&self) -> Option<&str> {
        non_blank(self.resend_base_url.as_deref())
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
            .field(
                "resend_base_url",
                &self.resend_base_url.as_deref().map(redact_url),
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
    /// `RESEND_BASE_URL` is not an http(s) URL of an API root. `url` has
    /// any password redacted.
    #[error("invalid RESEND_BASE_URL {url:?}: {reason} (expected e.g. https://api.resend.com or http://127.0.0.1:8025)")]
    InvalidResendBaseUrl {
        /// The URL, password redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `RESEND_API_KEY` cannot be sent in an HTTP header.
    #[error("invalid RESEND_API_KEY: {reason}")]
    InvalidResendApiKey {
        /// What is wrong with it (never the key).
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

/// Builds the mailer the settings ask for: Resend when `resend_api_key`
/// is set (at `resend_base_url`, default [`DEFAULT_RESEND_BASE_URL`]),
/// else SMTP when `smtp_url` is set, else a [`LogMailer`]; logs which.
///
/// Every setting given is checked, used or not (`from`, `smtp_url`,
/// `resend_base_url`, the key), so a typo stops the start rather than
/// surfacing when the settings change. A setting given but not used is
/// named in a warning: `SMTP_URL` beside `RESEND_API_KEY`, or
/// `RESEND_BASE_URL` without it.
pub fn build_mailer(config: &MailConfig) -> Result<Box<dyn Mailer>, MailConfigError> {
    let from = parse_from(&config.from)?;
    let base_url = config.resend_base_url();
    if let Some(base_url) = base_url {
        resend::emails_endpoint(base_url)?;
    }
    let smtp = config
        .smtp_url()
        .map(|url| SmtpMailer::with_from(url, from.clone(), DEFAULT_TIMEOUT))
        .transpose()?;
    let mailer: Box<dyn Mailer> = match (config.resend_api_key(), smtp) {
        (Some(key), smtp) => {
            let base_url = base_url.unwrap_or(DEFAULT_RESEND_BASE_URL);
            let mailer = ResendMailer::with_from(key, base_url, from, DEFAULT_TIMEOUT)?;
            match smtp {
                Some(smtp) => tracing::warn!(
                    "RESEND_API_KEY and SMTP_URL are both set: mail goes through {}; \
                     SMTP_URL ({}) is not used",
                    mailer.description(),
                    smtp.description()
                ),
                None => tracing::info!("mail goes through {}", mailer.description()),
            }
            Box::new(mailer)
        }
        (None, Some(smtp)) => {
            warn_unused_base_url(config);
            tracing::info!("mail goes through SMTP ({})", smtp.description());
            Box::new(smtp)
        }
        (None, None) => {
            warn_unused_base_url(config);
            tracing::info!(
                "no mail service configured (neither RESEND_API_KEY nor SMTP_URL is set): \
                 ticket email is logged only"
            );
            Box::new(LogMailer)
        }
    };
    Ok(mailer)
}

fn warn_unused_base_url(config: &MailConfig) {
    if let Some(url) = config.resend_base_url() {
        tracing::warn!(
            "RESEND_BASE_URL ({}) is set but RESEND_API_KEY is not: RESEND_BASE_URL is not used",
            redact_url(url)
        );
    }
}

/// One line for the start-up log saying where mail goes, passwords and API
/// keys never shown: `resend (https://api.resend.com)`,
/// `smtp://user:***@host:587?tls=required`, or `log only`; a setting given
/// but not used is named after it.
pub fn describe(config: &MailConfig) -> String {
    let base_url = config.resend_base_url().map(redact_url);
    match (config.resend_api_key(), config.smtp_url()) {
        (Some(_), smtp) => {
            let base_url = base_url.unwrap_or_else(|| DEFAULT_RESEND_BASE_URL.to_owned());
            let base_url = base_url.trim_end_matches('/');
            match smtp {
                Some(_) => format!("resend ({base_url}); SMTP_URL not used"),
                None => format!("resend ({base_url})"),
            }
        }
        (None, smtp) => {
            let transport = smtp.map_or_else(|| "log only".to_owned(), redact_url);
            match base_url {
                Some(_) => {
                    format!("{transport} (RESEND_BASE_URL not used: RESEND_API_KEY is not set)")
                }
                None => transport,
            }
        }
    }
}
