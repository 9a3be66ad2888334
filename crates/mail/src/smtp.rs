//! Delivery through an SMTP server with lettre's blocking transport.

use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use chatdesk_domain::ports::{MailError, MailOutcome, Mailer, OutgoingEmail};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart};
use lettre::{Message, SmtpTransport, Transport};

use crate::redact::{redact_url, scrub};
use crate::MailConfigError;

/// How long connecting, and each read or write, may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends each email over one new SMTP connection (no pool), with the
/// blocking transport: call it from a worker thread, not an async task.
/// An email with an HTML body goes as `multipart/alternative` (plain
/// text first, then HTML); one without as `text/plain`.
///
/// The URL follows lettre's `SmtpTransport::from_url`: `smtp://host:port`
/// is plain SMTP (no TLS; for local servers), `smtp://…?tls=required` is
/// STARTTLS (`?tls=opportunistic` when offered), `smtps://` is implicit
/// TLS; `user:pass@` (percent-encoded) logs in; a path sets the EHLO name.
/// TLS is rustls with the aws-lc-rs provider and the webpki roots.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: SmtpTransport,
    from: Mailbox,
    timeout: Duration,
    description: String,
    secrets: Vec<String>,
}

impl SmtpMailer {
    /// A mailer for `smtp_url` sending as `from` (e.g.
    /// `chatdesk <no-reply@example.com>`), with [`DEFAULT_TIMEOUT`].
    pub fn new(smtp_url: &str, from: &str) -> Result<SmtpMailer, MailConfigError> {
        SmtpMailer::with_timeout(smtp_url, from, DEFAULT_TIMEOUT)
    }

    /// Like [`SmtpMailer::new`], with another timeout for connecting and for
    /// each read or write.
    pub fn with_timeout(
        smtp_url: &str,
        from: &str,
        timeout: Duration,
    ) -> Result<SmtpMailer, MailConfigError> {
        SmtpMailer::with_from(smtp_url, parse_from(from)?, timeout)
    }

    pub(crate) fn with_from(
        smtp_url: &str,
        from: Mailbox,
        timeout: Duration,
    ) -> Result<SmtpMailer, MailConfigError> {
        let smtp_url = smtp_url.trim();
        let description = redact_url(smtp_url);
        let secrets = chatdesk_domain::secret::url_passwords(smtp_url);
        let invalid = |reason: String| MailConfigError::InvalidSmtpUrl {
            url: description.clone(),
            reason: scrub(reason, &secrets),
        };
        check_scheme_and_tls(smtp_url).map_err(|reason| invalid(reason.to_owned()))?;
        // lettre wraps the reason in "Connection error: …"; keep the reason.
        let transport = SmtpTransport::from_url(smtp_url)
            .map_err(|e| {
                invalid(
                    e.source()
                        .map_or_else(|| e.to_string(), ToString::to_string),
                )
            })?
            .timeout(Some(timeout))
            .build();
        if !secrets.is_empty()
            && smtp_url.starts_with("smtp://")
            && !smtp_url.contains("tls=")
            && !is_loopback(&description)
        {
            tracing::warn!(
                "SMTP_URL {description} logs in without TLS: the password crosses the network \
                 in clear (use ?tls=required or smtps:// unless the server is local)"
            );
        }
        Ok(SmtpMailer {
            transport,
            from,
            timeout,
            description,
            secrets,
        })
    }

    /// The server's URL, password redacted.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The email as a message; an email that cannot be built is a
    /// permanent failure.
    fn message(&self, email: &OutgoingEmail) -> Result<Message, MailError> {
        let to = mailbox(email.to.as_str())
            .map_err(|e| MailError::permanent(format!("invalid recipient: {e}")))?;
        let message_id = email
            .message_id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>');
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(one_line(&email.subject))
            .message_id(Some(format!("<{message_id}>")));
        if let Some(reply_to) = &email.reply_to {
            let reply_to = mailbox(reply_to.as_str())
                .map_err(|e| MailError::permanent(format!("invalid Reply-To: {e}")))?;
            builder = builder.reply_to(reply_to);
        }
        let built = match &email.html {
            // multipart/alternative: clients show the last part they can,
            // the HTML one, and fall back to the plain text.
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                html.clone(),
            )),
            None => builder
                .header(ContentType::TEXT_PLAIN)
                .body(email.text.clone()),
        };
        built.map_err(|e| MailError::permanent(format!("cannot build the email: {e}")))
    }
}

impl Mailer for SmtpMailer {
    /// A refusal (SMTP 5xx) is permanent; a temporary refusal (4xx), a
    /// timeout and any connection or TLS failure are transient.
    fn send(&self, email: &OutgoingEmail) -> Result<MailOutcome, MailError> {
        let message = self.message(email)?;
        match self.transport.send(&message) {
            Ok(_) => {
                tracing::debug!(
                    server = %self.description,
                    message_id = %email.message_id,
                    "email accepted by the SMTP server"
                );
                Ok(MailOutcome::Sent)
            }
            Err(e) if is_timeout(&e) => Err(MailError::transient(scrub(
                format!("timed out after {:?} ({e})", self.timeout),
                &self.secrets,
            ))),
            Err(e) if e.is_permanent() => {
                Err(MailError::permanent(scrub(e.to_string(), &self.secrets)))
            }
            Err(e) => Err(MailError::transient(scrub(e.to_string(), &self.secrets))),
        }
    }
}

/// Never prints the password.
impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("server", &self.description)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

/// Clearer messages than lettre's for the two usual mistakes: another
/// scheme, or another `tls` value.
fn check_scheme_and_tls(url: &str) -> Result<(), &'static str> {
    let scheme = url.split_once("://").map(|(scheme, _)| scheme);
    if !matches!(scheme, Some("smtp" | "smtps")) {
        return Err("the scheme must be smtp:// or smtps://");
    }
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let query = query.split('#').next().unwrap_or_default();
    for pair in query.split('&') {
        if let Some(("tls", value)) = pair.split_once('=') {
            if !matches!(value, "required" | "opportunistic") {
                return Err("tls= must be required (STARTTLS) or opportunistic");
            }
        }
    }
    Ok(())
}

/// Whether a (redacted) URL names this machine.
pub(crate) fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|local| host.starts_with(local))
}

/// Whether an I/O timeout caused the error (a read timeout shows as
/// `WouldBlock` on Unix, `TimedOut` elsewhere).
fn is_timeout(error: &lettre::transport::smtp::Error) -> bool {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            );
        }
        source = cause.source();
    }
    false
}

/// Parses `MAIL_FROM`: `Name <address>` or a bare address.
pub(crate) fn parse_from(from: &str) -> Result<Mailbox, MailConfigError> {
    let invalid = |reason: String| MailConfigError::InvalidFrom {
        from: from.to_owned(),
        reason,
    };
    let trimmed = from.trim();
    if trimmed.is_empty() {
        return Err(invalid("must not be empty".to_owned()));
    }
    mailbox(trimmed).map_err(invalid)
}

fn mailbox(raw: &str) -> Result<Mailbox, String> {
    raw.parse::<Mailbox>()
        .map_err(|e| format!("{raw:?} is not a mailbox ({e})"))
}

/// Control characters (line breaks above all) turned into spaces, so a
/// subject typed by a visitor stays one header.
pub(crate) fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_tls_values() {
        assert_eq!(check_scheme_and_tls("smtp://h"), Ok(()));
        assert_eq!(check_scheme_and_tls("smtps://h"), Ok(()));
        assert_eq!(check_scheme_and_tls("smtp://h:587?tls=required"), Ok(()));
        assert_eq!(
            check_scheme_and_tls("smtp://h?x=1&tls=opportunistic#f"),
            Ok(())
        );
        assert!(check_scheme_and_tls("http://h").is_err());
        assert!(check_scheme_and_tls("h:25").is_err());
        assert!(check_scheme_and_tls("smtp://h?tls=yes").is_err());
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("smtp://u:***@127.0.0.1:2525"));
        assert!(is_loopback("smtp://localhost"));
        assert!(!is_loopback("smtp://u:***@mail.example.com"));
    }

    #[test]
    fn subjects_stay_on_one_line() {
        assert_eq!(one_line("Help\r\nBcc: x@y.z\tnow"), "Help  Bcc: x@y.z now");
    }
}
