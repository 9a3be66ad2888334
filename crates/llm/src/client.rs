//! [`OpenAiCompatible`]: the [`AnswerModel`] port over HTTP.

use std::fmt;
use std::io::{self, Read};
use std::time::Instant;

use chatdesk_domain::ports::{
    AnswerModel, GeneratedGuide, GenerationRequest, ModelError, ModelReply, RankCandidate,
};
use chatdesk_domain::secret::redact_url;
use serde_json::Value;

use crate::config::{check, Checked, ConfigError, LlmConfig, CONNECT_TIMEOUT};
use crate::reply::{self, Completion};
use crate::{prompt, MAX_REPLY_BYTES};

/// The most of an error reply's body that is read (its message is all that
/// is kept).
const MAX_ERROR_BYTES: u64 = 64 * 1024;

/// The language model behind an OpenAI-compatible chat-completions API
/// (OpenAI, Azure's v1 API, vLLM, llama.cpp's server, Ollama, LM Studio, …).
///
/// Each call is one blocking `POST {base_url}/chat/completions` that asks
/// for a JSON object (`response_format: json_object`, low temperature) and
/// ends within the configured timeout. Errors:
/// - cannot connect, timed out, 5xx, 408, 429 (except a used-up quota) →
///   [`ModelError::Unavailable`];
/// - any other 4xx, a used-up quota, a redirect →
///   [`ModelError::Refused`], with the API's own message when its body
///   has one (the key is never in it);
/// - a reply that is not the JSON asked for, or larger than
///   [`MAX_REPLY_BYTES`] → [`ModelError::Malformed`].
///
/// Cheap to share: one instance serves every thread (it pools
/// connections).
pub struct OpenAiCompatible {
    agent: ureq::Agent,
    config: Checked,
}

impl OpenAiCompatible {
    /// The adapter for these settings, or why they cannot be used: the
    /// base URL must be an `http` or `https` URL of the API root (a
    /// trailing slash is tolerated), the model named, the key (if any)
    /// printable ASCII, the timeout longer than zero.
    pub fn new(config: LlmConfig) -> Result<OpenAiCompatible, ConfigError> {
        let checked = check(&config)?;
        let agent = ureq::AgentBuilder::new()
            .timeout(checked.timeout)
            .timeout_connect(CONNECT_TIMEOUT.min(checked.timeout))
            .redirects(0)
            .user_agent(concat!("chatdesk/", env!("CARGO_PKG_VERSION")))
            .build();
        // Let the HTTP client parse the URL now rather than on the first call.
        agent
            .post(&checked.endpoint)
            .request_url()
            .map_err(|e| ConfigError::InvalidBaseUrl {
                url: redact_url(config.base_url.trim()),
                reason: match e {
                    ureq::Error::Transport(t) => {
                        t.message().unwrap_or("it cannot be parsed").to_owned()
                    }
                    ureq::Error::Status(..) => "it cannot be parsed".to_owned(),
                },
            })?;
        Ok(OpenAiCompatible {
            agent,
            config: checked,
        })
    }

    /// The URL requests go to: `{base_url}/chat/completions`.
    pub fn endpoint(&self) -> &str {
        &self.config.endpoint
    }

    /// Sends one chat-completion request and reads its reply.
    fn complete(&self, what: &'static str, body: &Value) -> Result<Completion, ModelError> {
        let started = Instant::now();
        let result = self.exchange(body);
        let elapsed = started.elapsed();
        match &result {
            Ok(completion) => tracing::debug!(
                what,
                model = %completion.model,
                tokens = completion.tokens_used,
                elapsed_ms = elapsed.as_millis() as u64,
                "model answered"
            ),
            Err(error) => tracing::warn!(
                what,
                model = %self.config.model,
                elapsed_ms = elapsed.as_millis() as u64,
                %error,
                "model call failed"
            ),
        }
        result
    }

    fn exchange(&self, body: &Value) -> Result<Completion, ModelError> {
        let mut request = self
            .agent
            .post(&self.config.endpoint)
            .set("Accept", "application/json");
        if let Some(key) = &self.config.api_key {
            request = request.set("Authorization", &format!("Bearer {key}"));
        }
        let response = match request.send_json(body) {
            Ok(response) => response,
            Err(ureq::Error::Status(status, response)) => {
                let body = read_capped(response.into_reader(), MAX_ERROR_BYTES)
                    .map(|(body, _)| body)
                    .unwrap_or_default();
                return Err(self.status_error(status, &body));
            }
            Err(ureq::Error::Transport(transport)) => return Err(self.transport_error(&transport)),
        };
        let status = response.status();
        if !(200..300).contains(&status) {
            let location = response.header("location").map(redact_url);
            return Err(match (status, location) {
                (300..=399, Some(to)) => ModelError::Refused(format!(
                    "HTTP {status}: the API redirects to {to}; check LLM_BASE_URL"
                )),
                (300..=399, None) => ModelError::Refused(format!(
                    "HTTP {status}: the API redirects; check LLM_BASE_URL"
                )),
                _ => ModelError::Malformed(format!("unexpected HTTP status {status}")),
            });
        }
        let (bytes, complete) = read_capped(response.into_reader(), MAX_REPLY_BYTES)
            .map_err(|e| self.read_error(&e))?;
        if !complete {
            return Err(ModelError::Malformed(format!(
                "the reply is larger than {} KiB",
                MAX_REPLY_BYTES / 1024
            )));
        }
        reply::completion(&bytes, &self.config.model)
    }

    /// The error for an HTTP error status with this body.
    fn status_error(&self, status: u16, body: &[u8]) -> ModelError {
        let message = reply::error_message(body, self.config.api_key.as_deref());
        let detail = match &message {
            Some(message) => format!("HTTP {status}: {message}"),
            None => format!("HTTP {status}"),
        };
        let quota_used_up = reply::error_code(body).as_deref() == Some("insufficient_quota");
        match status {
            429 if quota_used_up => ModelError::Refused(detail),
            408 | 429 | 500..=599 => ModelError::Unavailable(detail),
            400..=499 => ModelError::Refused(detail),
            _ => ModelError::Malformed(detail),
        }
    }

    /// The error for a request that got no HTTP answer.
    fn transport_error(&self, transport: &ureq::Transport) -> ModelError {
        use std::error::Error as _;
        let io = transport
            .source()
            .and_then(|source| source.downcast_ref::<io::Error>());
        if let Some(io) = io {
            if is_timeout(io) {
                return self.timed_out();
            }
        }
        let what = match transport.kind() {
            ureq::ErrorKind::Dns => "its host name could not be resolved",
            ureq::ErrorKind::ConnectionFailed => "could not connect",
            ureq::ErrorKind::BadStatus | ureq::ErrorKind::BadHeader => "its answer is not HTTP",
            ureq::ErrorKind::Io => "the connection failed",
            _ => "the request failed",
        };
        let cause = match (transport.message(), io) {
            (_, Some(io)) => io.to_string(),
            (Some(message), None) => message.to_owned(),
            (None, None) => transport.kind().to_string(),
        };
        ModelError::Unavailable(format!(
            "{} ({}): {what}: {cause}",
            redact_url(&self.config.endpoint),
            self.config.model
        ))
    }

    /// The error for a reply whose body could not be read.
    fn read_error(&self, error: &io::Error) -> ModelError {
        if is_timeout(error) {
            self.timed_out()
        } else {
            ModelError::Unavailable(format!("the reply could not be read: {error}"))
        }
    }

    fn timed_out(&self) -> ModelError {
        ModelError::Unavailable(format!(
            "{} ({}) did not answer within {:?}",
            redact_url(&self.config.endpoint),
            self.config.model,
            self.config.timeout
        ))
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

/// Reads at most `limit` bytes; `false` when there was more.
fn read_capped(reader: impl Read, limit: u64) -> io::Result<(Vec<u8>, bool)> {
    let mut bytes = Vec::new();
    reader.take(limit + 1).read_to_end(&mut bytes)?;
    let complete = bytes.len() as u64 <= limit;
    if !complete {
        bytes.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    Ok((bytes, complete))
}

impl AnswerModel for OpenAiCompatible {
    fn model_name(&self) -> String {
        self.config.model.clone()
    }

    fn generate(
        &self,
        request: &GenerationRequest,
    ) -> Result<ModelReply<GeneratedGuide>, ModelError> {
        let body = prompt::generation(&self.config.model, request);
        let completion = self.complete("generate", &body)?;
        Ok(ModelReply {
            value: reply::guide(&completion)?,
            model: completion.model,
            tokens_used: completion.tokens_used,
        })
    }

    /// With no candidates, answers `None` without calling the model.
    fn rank(
        &self,
        question: &str,
        candidates: &[RankCandidate],
    ) -> Result<ModelReply<Option<usize>>, ModelError> {
        if candidates.is_empty() {
            return Ok(ModelReply {
                value: None,
                model: self.config.model.clone(),
                tokens_used: 0,
            });
        }
        let body = prompt::ranking(&self.config.model, question, candidates);
        let completion = self.complete("rank", &body)?;
        Ok(ModelReply {
            value: reply::choice(&completion, candidates.len())?,
            model: completion.model,
            tokens_used: completion.tokens_used,
        })
    }
}

/// Never prints the API key.
impl fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("endpoint", &redact_url(&self.config.endpoint))
            .field("api_key", &self.config.api_key.as_ref().map(|_| "***"))
            .field("model", &self.config.model)
            .field("timeout", &self.config.timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_at_most_the_cap() {
        let read = |text: &str, limit| read_capped(text.as_bytes(), limit).map_err(|e| e.kind());
        assert_eq!(read("abc", 3), Ok((b"abc".to_vec(), true)));
        assert_eq!(read("abcd", 3), Ok((b"abc".to_vec(), false)));
        assert_eq!(read("", 3), Ok((Vec::new(), true)));
    }

    #[test]
    fn statuses_map_to_errors() {
        let Ok(model) = OpenAiCompatible::new(
            LlmConfig::new("http://127.0.0.1:9/v1", "m").with_api_key("sk-key"),
        ) else {
            panic!("valid settings")
        };
        let quota =
            br#"{"error":{"message":"You exceeded your quota","code":"insufficient_quota"}}"#;
        let limited = br#"{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}"#;
        let cases: [(u16, &[u8], ModelError); 9] = [
            (500, b"", ModelError::Unavailable("HTTP 500".into())),
            (502, b"<html>", ModelError::Unavailable("HTTP 502".into())),
            (
                503,
                br#"{"error":"loading model"}"#,
                ModelError::Unavailable("HTTP 503: loading model".into()),
            ),
            (408, b"", ModelError::Unavailable("HTTP 408".into())),
            (
                429,
                limited,
                ModelError::Unavailable("HTTP 429: Rate limit reached".into()),
            ),
            (
                429,
                quota,
                ModelError::Refused("HTTP 429: You exceeded your quota".into()),
            ),
            (
                400,
                br#"{"error":{"message":"bad sk-key"}}"#,
                ModelError::Refused("HTTP 400: bad ***".into()),
            ),
            (404, b"not found", ModelError::Refused("HTTP 404".into())),
            (600, b"", ModelError::Malformed("HTTP 600".into())),
        ];
        for (status, body, want) in cases {
            assert_eq!(model.status_error(status, body), want, "{status}");
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let Ok(model) = OpenAiCompatible::new(
            LlmConfig::new("https://api.example/v1/", "m").with_api_key("sk-very-secret"),
        ) else {
            panic!("valid settings")
        };
        let debug = format!("{model:?}");
        assert!(!debug.contains("very-secret"), "{debug}");
        assert_eq!(model.endpoint(), "https://api.example/v1/chat/completions");
        assert_eq!(model.model_name(), "m");
    }
}
