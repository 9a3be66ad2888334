//! Delivery through Resend's HTTP API (`POST {base}/emails`).

use std::error::Error as _;
use std::fmt;
use std::io::{self, Read};
use std::time::Duration;

use chatdesk_domain::ports::{MailError, MailOutcome, Mailer, OutgoingEmail};
use chatdesk_domain::secret::redact_url;
use lettre::message::Mailbox;
use serde_json::{json, Map, Value};

use crate::redact::scrub;
use crate::smtp::{is_loopback, one_line, parse_from};
use crate::{MailConfigError, DEFAULT_TIMEOUT};

/// Resend's own API root, used when `RESEND_BASE_URL` is not set.
pub const DEFAULT_RESEND_BASE_URL: &str = "https://api.resend.com";

/// How long connecting to Resend may take (at most the whole timeout).
pub const RESEND_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The path appended to the base URL.
const EMAILS_PATH: &str = "/emails";

/// The most of a reply's body that is read (only its id or error message
/// is kept).
const MAX_REPLY_BYTES: u64 = 64 * 1024;

/// The longest `Idempotency-Key` Resend accepts.
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 256;

/// The longest part of an error reply's text kept in the recorded error.
const MAX_ERROR_TEXT_CHARS: usize = 300;

/// The error `name` Resend gives a 409 when a request with the same
/// idempotency key is still being processed: safe to retry later.
const CONCURRENT_IDEMPOTENT_REQUESTS: &str = "concurrent_idempotent_requests";

/// Sends each email with one blocking `POST {base_url}/emails` to Resend's
/// API: call it from a worker thread, not an async task.
///
/// The request carries `Authorization: Bearer <API key>`, the email's
/// `delivery_id` as `Idempotency-Key` (so a resend after a crash is
/// delivered once: Resend answers a repeated key with the first answer for
/// 24 hours), and the JSON body `{from, to: [to], reply_to, subject, text,
/// html, headers: {"Message-ID": "<message_id>"}}` (`reply_to` and `html`
/// only when the email has them). Line breaks and other control characters
/// in the subject become spaces.
///
/// Outcomes:
/// - 2xx → [`MailOutcome::Sent`];
/// - 408, 429 (rate limit or quota), a 409 `concurrent_idempotent_requests`,
///   5xx, a timeout, no connection → a transient [`MailError`] (retry
///   later, with the same delivery id);
/// - any other 4xx (bad key, unverified sender, invalid field, the same
///   key with another body), a redirect → a permanent [`MailError`].
///
/// The recorded message names the HTTP status and Resend's error `name`
/// and `message`, never the API key. Connecting may take
/// [`RESEND_CONNECT_TIMEOUT`], the whole exchange the configured timeout
/// ([`DEFAULT_TIMEOUT`], 10 s, unless set). TLS is rustls with the webpki
/// roots. One instance serves every thread (it pools connections).
#[derive(Clone)]
pub struct ResendMailer {
    agent: ureq::Agent,
    /// `{base_url}/emails`.
    endpoint: String,
    /// The base URL as given, trimmed, without a trailing slash.
    base_url: String,
    api_key: String,
    /// The sender, rendered as `Name <address>`.
    from: String,
    timeout: Duration,
}

impl ResendMailer {
    /// A mailer sending through the API at `base_url` (e.g.
    /// [`DEFAULT_RESEND_BASE_URL`]) with `api_key`, as `from` (e.g.
    /// `chatdesk <no-reply@example.com>`), with the [`DEFAULT_TIMEOUT`].
    pub fn new(api_key: &str, base_url: &str, from: &str) -> Result<ResendMailer, MailConfigError> {
        ResendMailer::with_timeout(api_key, base_url, from, DEFAULT_TIMEOUT)
    }

    /// Like [`ResendMailer::new`], with another limit for the whole
    /// exchange (connecting takes at most [`RESEND_CONNECT_TIMEOUT`] of
    /// it).
    pub fn with_timeout(
        api_key: &str,
        base_url: &str,
        from: &str,
        timeout: Duration,
    ) -> Result<ResendMailer, MailConfigError> {
        ResendMailer::with_from(api_key, base_url, parse_from(from)?, timeout)
    }

    pub(crate) fn with_from(
        api_key: &str,
        base_url: &str,
        from: Mailbox,
        timeout: Duration,
    ) -> Result<ResendMailer, MailConfigError> {
        let api_key = check_api_key(api_key)?;
        let endpoint = emails_endpoint(base_url)?;
        let timeout = if timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            timeout
        };
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            .timeout_connect(RESEND_CONNECT_TIMEOUT.min(timeout))
            .redirects(0)
            .user_agent(concat!("chatdesk/", env!("CARGO_PKG_VERSION")))
            .build();
        // Let the HTTP client parse the URL now rather than on the first
        // email.
        agent
            .post(&endpoint)
            .request_url()
            .map_err(|e| MailConfigError::InvalidResendBaseUrl {
                url: redact_url(base_url.trim()),
                reason: match e {
                    ureq::Error::Transport(t) => {
                        t.message().unwrap_or("it cannot be parsed").to_owned()
                    }
                    ureq::Error::Status(..) => "it cannot be parsed".to_owned(),
                },
            })?;
        let base_url = base_url.trim().trim_end_matches('/');
        let plain_http = base_url
            .get(..5)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http:"));
        if plain_http && !is_loopback(base_url) {
            tracing::warn!(
                "RESEND_BASE_URL {} is not https: the API key crosses the network in clear",
                redact_url(base_url)
            );
        }
        Ok(ResendMailer {
            agent,
            endpoint,
            base_url: base_url.to_owned(),
            api_key: api_key.to_owned(),
            from: from.to_string(),
            timeout,
        })
    }

    /// Where emails are posted: `{base_url}/emails`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `resend (https://api.resend.com)`: the API's root, never the key.
    pub fn description(&self) -> String {
        format!("resend ({})", self.base_url)
    }

    /// The JSON body for `email`.
    fn body(&self, email: &OutgoingEmail) -> Value {
        let mut body = Map::new();
        body.insert("from".to_owned(), json!(self.from));
        body.insert("to".to_owned(), json!([email.to.as_str()]));
        if let Some(reply_to) = &email.reply_to {
            body.insert("reply_to".to_owned(), json!(reply_to.as_str()));
        }
        body.insert("subject".to_owned(), json!(one_line(&email.subject)));
        body.insert("text".to_owned(), json!(email.text));
        if let Some(html) = &email.html {
            body.insert("html".to_owned(), json!(html));
        }
        let message_id = one_line(&email.message_id);
        let message_id = message_id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        if !message_id.is_empty() {
            body.insert(
                "headers".to_owned(),
                json!({ "Message-ID": format!("<{message_id}>") }),
            );
        }
        Value::Object(body)
    }

    /// The error for an HTTP error status with this body and
    /// `Retry-After`.
    fn status_error(&self, status: u16, body: &[u8], retry_after: Option<&str>) -> MailError {
        let reply = serde_json::from_slice::<Value>(body).ok();
        let field = |key: &str| {
            reply
                .as_ref()
                .and_then(|r| r.get(key))
                .and_then(Value::as_str)
                .map(|s| self.clean(s))
                .filter(|s| !s.is_empty())
        };
        let name = field("name");
        let message = field("message").or_else(|| field("error"));
        let mut detail = format!("Resend answered HTTP {status}");
        if let Some(name) = &name {
            detail.push(' ');
            detail.push_str(name);
        }
        match (&message, &reply) {
            (Some(message), _) => {
                detail.push_str(": ");
                detail.push_str(message);
            }
            (None, None) if !body.is_empty() => {
                detail.push_str(": ");
                detail.push_str(&self.clean(&String::from_utf8_lossy(body)));
            }
            _ => {}
        }
        if let Some(seconds) = retry_after.map(str::trim).filter(|s| !s.is_empty()) {
            detail.push_str(&format!(" (retry after {}s)", self.clean(seconds)));
        }
        let transient = match status {
            408 | 429 | 500..=599 => true,
            409 => name.as_deref() == Some(CONCURRENT_IDEMPOTENT_REQUESTS),
            _ => false,
        };
        if transient {
            MailError::transient(detail)
        } else {
            MailError::permanent(detail)
        }
    }

    /// The error for a request that got no HTTP answer.
    fn transport_error(&self, transport: &ureq::Transport) -> MailError {
        let io = transport
            .source()
            .and_then(|source| source.downcast_ref::<io::Error>());
        if io.is_some_and(is_timeout) {
            return self.timed_out();
        }
        let what = match transport.kind() {
            ureq::ErrorKind::Dns => "its host name could not be resolved",
            ureq::ErrorKind::ConnectionFailed => "could not connect",
            ureq::ErrorKind::BadStatus | ureq::ErrorKind::BadHeader => {
                "its answer is not HTTP (or the connection closed without one)"
            }
            ureq::ErrorKind::Io => "the connection failed",
            _ => "the request failed",
        };
        let cause = match (transport.message(), io) {
            (_, Some(io)) => io.to_string(),
            (Some(message), None) => message.to_owned(),
            (None, None) => transport.kind().to_string(),
        };
        MailError::transient(self.clean(&format!(
            "Resend ({}): {what}: {cause}",
            redact_url(&self.endpoint)
        )))
    }

    fn timed_out(&self) -> MailError {
        MailError::transient(format!(
            "Resend ({}) did not answer within {:?}",
            redact_url(&self.endpoint),
            self.timeout
        ))
    }

    /// Text from a reply or a transport error as it may be recorded: one
    /// line, at most [`MAX_ERROR_TEXT_CHARS`], the API key scrubbed.
    fn clean(&self, text: &str) -> String {
        let text = scrub(one_line(text), std::slice::from_ref(&self.api_key));
        let text = text.trim();
        if text.chars().count() > MAX_ERROR_TEXT_CHARS {
            let cut: String = text.chars().take(MAX_ERROR_TEXT_CHARS).collect();
            format!("{cut}…")
        } else {
            text.to_owned()
        }
    }
}

impl Mailer for ResendMailer {
    fn send(&self, email: &OutgoingEmail) -> Result<MailOutcome, MailError> {
        let idempotency_key = idempotency_key(&email.delivery_id)?;
        let payload = serde_json::to_string(&self.body(email))
            .map_err(|e| MailError::permanent(format!("cannot build the request: {e}")))?;
        let result = self
            .agent
            .post(&self.endpoint)
            .set("Authorization", &format!("Bearer {}", self.api_key))
            .set("Content-Type", "application/json")
            .set("Accept", "application/json")
            .set("Idempotency-Key", idempotency_key)
            .send_string(&payload);
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(status, response)) => {
                let retry_after = response.header("retry-after").map(str::to_owned);
                let body = read_capped(response.into_reader()).unwrap_or_default();
                return Err(self.status_error(status, &body, retry_after.as_deref()));
            }
            Err(ureq::Error::Transport(transport)) => return Err(self.transport_error(&transport)),
        };
        let status = response.status();
        if !(200..300).contains(&status) {
            let location = response.header("location").map(redact_url);
            return Err(match (status, location) {
                (300..=399, Some(to)) => MailError::permanent(format!(
                    "Resend answered HTTP {status}: a redirect to {}; check RESEND_BASE_URL",
                    self.clean(&to)
                )),
                (300..=399, None) => MailError::permanent(format!(
                    "Resend answered HTTP {status}: a redirect; check RESEND_BASE_URL"
                )),
                _ => MailError::transient(format!("Resend answered HTTP {status}")),
            });
        }
        // Accepted: the id is only logged, so a reply that cannot be read
        // or parsed still counts as sent.
        let id = read_capped(response.into_reader())
            .ok()
            .and_then(|body| serde_json::from_slice::<Value>(&body).ok())
            .and_then(|reply| reply.get("id").and_then(Value::as_str).map(one_line));
        tracing::debug!(
            api = %self.base_url,
            message_id = %email.message_id,
            resend_id = id.as_deref().unwrap_or("(none)"),
            "email accepted by Resend"
        );
        Ok(MailOutcome::Sent)
    }
}

/// Never prints the API key.
impl fmt::Debug for ResendMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResendMailer")
            .field("endpoint", &redact_url(&self.endpoint))
            .field("api_key", &"***")
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The API key, trimmed, if it can be sent in a header.
fn check_api_key(api_key: &str) -> Result<&str, MailConfigError> {
    let key = api_key.trim();
    if key.is_empty() {
        return Err(MailConfigError::InvalidResendApiKey {
            reason: "it is empty".to_owned(),
        });
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(MailConfigError::InvalidResendApiKey {
            reason: "it must be printable ASCII without spaces".to_owned(),
        });
    }
    Ok(key)
}

/// `{base_url}/emails`, or why the base URL cannot be used: it must be an
/// `http` or `https` URL of the API root (a trailing slash is tolerated),
/// with a host and no credentials, query or fragment.
pub(crate) fn emails_endpoint(base_url: &str) -> Result<String, MailConfigError> {
    chatdesk_domain::host::api_endpoint(
        base_url,
        EMAILS_PATH,
        "https://api.resend.com",
        "RESEND_API_KEY",
    )
    .map_err(|reason| MailConfigError::InvalidResendBaseUrl {
        url: redact_url(base_url.trim()),
        reason,
    })
}

/// The email's delivery id as an `Idempotency-Key`: 1 to 256 printable
/// ASCII characters, as Resend requires (anything else is a bug upstream,
/// and Resend would refuse it with a 400 anyway).
fn idempotency_key(delivery_id: &str) -> Result<&str, MailError> {
    let key = delivery_id.trim();
    let valid = !key.is_empty()
        && key.chars().count() <= MAX_IDEMPOTENCY_KEY_CHARS
        && key.bytes().all(|b| b.is_ascii_graphic());
    if valid {
        Ok(key)
    } else {
        Err(MailError::permanent(format!(
            "the email's delivery id {:?} cannot be an Idempotency-Key (1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters)",
            delivery_id.chars().take(40).collect::<String>()
        )))
    }
}

/// Whether an I/O error is a timeout (ureq reports a passed deadline as
/// `TimedOut`, a socket timeout as `WouldBlock` on some systems).
fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// Reads at most [`MAX_REPLY_BYTES`] of a reply.
fn read_capped(reader: impl Read) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(MAX_REPLY_BYTES).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailer() -> ResendMailer {
        let Ok(mailer) = ResendMailer::new("re_secret_key", "http://127.0.0.1:9", "a@b.example")
        else {
            panic!("valid settings")
        };
        mailer
    }

    #[test]
    fn endpoints_of_base_urls() {
        let cases = [
            ("https://api.resend.com", "https://api.resend.com/emails"),
            ("https://api.resend.com/", "https://api.resend.com/emails"),
            (" http://127.0.0.1:8025 ", "http://127.0.0.1:8025/emails"),
            ("http://h/proxy/resend//", "http://h/proxy/resend/emails"),
            ("HTTP://[::1]:80", "HTTP://[::1]:80/emails"),
        ];
        for (base, want) in cases {
            assert_eq!(emails_endpoint(base).as_deref(), Ok(want), "{base}");
        }
    }

    #[test]
    fn unusable_base_urls() {
        let cases = [
            ("", "empty"),
            ("api.resend.com", "scheme"),
            ("smtp://api.resend.com", "only http and https"),
            ("http://", "no host"),
            ("http://:80", "no host"),
            ("http://h/a b", "spaces"),
            ("http://h/?x=1", "query"),
            ("http://h/#x", "query"),
            ("https://u:re_key@h", "credentials"),
            ("https://api.resend.com/emails/", "not the /emails endpoint"),
        ];
        for (base, reason) in cases {
            match emails_endpoint(base) {
                Err(MailConfigError::InvalidResendBaseUrl { url, reason: why }) => {
                    assert!(why.contains(reason), "{base}: {why}");
                    assert!(!url.contains("re_key"), "{url}");
                }
                other => panic!("{base}: {other:?}"),
            }
        }
    }

    #[test]
    fn statuses_map_to_errors() {
        let mailer = mailer();
        let error = |name: &str, message: &str| {
            format!(r#"{{"statusCode":0,"name":"{name}","message":"{message}"}}"#).into_bytes()
        };
        let cases: [(u16, Vec<u8>, Option<&str>, MailError); 9] = [
            (
                422,
                error("validation_error", "Invalid `to` field."),
                None,
                MailError::permanent(
                    "Resend answered HTTP 422 validation_error: Invalid `to` field.",
                ),
            ),
            (
                403,
                error("invalid_api_key", "API key re_secret_key is invalid"),
                None,
                MailError::permanent("Resend answered HTTP 403 invalid_api_key: API key *** is invalid"),
            ),
            (
                409,
                error("invalid_idempotent_request", "Same key, other payload."),
                None,
                MailError::permanent(
                    "Resend answered HTTP 409 invalid_idempotent_request: Same key, other payload.",
                ),
            ),
            (
                409,
                error("concurrent_idempotent_requests", "Still in progress."),
                None,
                MailError::transient(
                    "Resend answered HTTP 409 concurrent_idempotent_requests: Still in progress.",
                ),
            ),
            (
                429,
                error("rate_limit_exceeded", "Too many requests."),
                Some("2"),
                MailError::transient(
                    "Resend answered HTTP 429 rate_limit_exceeded: Too many requests. (retry after 2s)",
                ),
            ),
            (
                408,
                Vec::new(),
                None,
                MailError::transient("Resend answered HTTP 408"),
            ),
            (
                500,
                error("internal_server_error", "Oops.\\r\\nX-Forged: 1"),
                None,
                MailError::transient(
                    "Resend answered HTTP 500 internal_server_error: Oops.  X-Forged: 1",
                ),
            ),
            (
                502,
                b"<html>Bad gateway</html>".to_vec(),
                None,
                MailError::transient("Resend answered HTTP 502: <html>Bad gateway</html>"),
            ),
            (
                404,
                b"{}".to_vec(),
                None,
                MailError::permanent("Resend answered HTTP 404"),
            ),
        ];
        for (status, body, retry_after, want) in cases {
            assert_eq!(
                mailer.status_error(status, &body, retry_after),
                want,
                "{status}"
            );
        }
    }

    #[test]
    fn long_error_texts_are_cut() {
        let body = format!(r#"{{"message":"{}"}}"#, "x".repeat(1000));
        let error = mailer().status_error(400, body.as_bytes(), None);
        assert!(error.message.ends_with("x…"), "{}", error.message);
        assert!(error.message.chars().count() < 400, "{}", error.message);
    }

    #[test]
    fn idempotency_keys() {
        assert_eq!(idempotency_key(" abc-1 "), Ok("abc-1"));
        assert!(idempotency_key(&"k".repeat(256)).is_ok());
        for bad in ["", "  ", "a b", "a\r\nX: y", "é", &"k".repeat(257)] {
            let error = idempotency_key(bad).expect_err(bad);
            assert!(!error.is_transient(), "{bad}");
        }
    }

    #[test]
    fn api_keys() {
        assert_eq!(check_api_key(" re_123 "), Ok("re_123"));
        assert!(check_api_key("").is_err());
        assert!(check_api_key("re 123").is_err());
        assert!(check_api_key("re_1\n").is_ok());
        assert!(check_api_key("re_1\nX: y").is_err());
    }
}
