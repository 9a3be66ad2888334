//! The model's settings and their checks.

use std::fmt;
use std::time::Duration;

use chatdesk_domain::secret::redact_url;

/// How long one call to the model may take in all (connecting, sending,
/// waiting for and reading the reply) unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// How long connecting to the model's server may take (at most the total
/// timeout).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The path appended to the base URL.
pub(crate) const COMPLETIONS_PATH: &str = "/chat/completions";

/// Settings of the OpenAI-compatible API.
///
/// `Debug` never prints the API key (nor a password in the URL).
#[derive(Clone, PartialEq, Eq)]
pub struct LlmConfig {
    /// `LLM_BASE_URL`: the API root, e.g. `https://api.openai.com/v1` or
    /// `http://127.0.0.1:11434/v1`; requests go to
    /// `{base_url}/chat/completions`. A trailing slash is tolerated.
    pub base_url: String,
    /// `LLM_API_KEY`, sent as `Authorization: Bearer …`; `None` (or blank)
    /// sends no `Authorization` header, as local servers expect.
    pub api_key: Option<String>,
    /// `LLM_MODEL`, e.g. `gpt-4o-mini`.
    pub model: String,
    /// The longest one call may take in all ([`DEFAULT_TIMEOUT`] unless
    /// set).
    pub timeout: Duration,
}

impl LlmConfig {
    /// Settings for `base_url` and `model`, with no key and the
    /// [`DEFAULT_TIMEOUT`].
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> LlmConfig {
        LlmConfig {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same settings with an API key.
    pub fn with_api_key(mut self, api_key: impl Into<String>) -> LlmConfig {
        self.api_key = Some(api_key.into());
        self
    }

    /// The same settings with another total timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> LlmConfig {
        self.timeout = timeout;
        self
    }

    /// Settings from the environment's values (`LLM_BASE_URL`,
    /// `LLM_API_KEY`, `LLM_MODEL`); blank values count as unset.
    ///
    /// - none set → `Ok(None)`: no model, nothing is generated;
    /// - `LLM_BASE_URL` and `LLM_MODEL` set → the settings (the key is
    ///   optional), with the [`DEFAULT_TIMEOUT`];
    /// - `LLM_BASE_URL` without `LLM_MODEL` →
    ///   [`ConfigError::MissingModel`];
    /// - `LLM_API_KEY` or `LLM_MODEL` without `LLM_BASE_URL` →
    ///   [`ConfigError::MissingBaseUrl`] (rather than silently generating
    ///   nothing).
    ///
    /// The URL itself is checked by [`OpenAiCompatible::new`](crate::OpenAiCompatible::new).
    pub fn from_settings(
        base_url: Option<&str>,
        api_key: Option<&str>,
        model: Option<&str>,
    ) -> Result<Option<LlmConfig>, ConfigError> {
        let (base_url, api_key, model) =
            (non_blank(base_url), non_blank(api_key), non_blank(model));
        match (base_url, model) {
            (None, None) if api_key.is_none() => Ok(None),
            (None, _) => Err(ConfigError::MissingBaseUrl),
            (Some(_), None) => Err(ConfigError::MissingModel),
            (Some(base_url), Some(model)) => Ok(Some(LlmConfig {
                base_url: base_url.to_owned(),
                api_key: api_key.map(str::to_owned),
                model: model.to_owned(),
                timeout: DEFAULT_TIMEOUT,
            })),
        }
    }

    /// One line for the start-up log saying which model answers where,
    /// never the key: `gpt-4o-mini at https://api.openai.com/v1 (API key
    /// set, timeout 20s)`.
    pub fn describe(&self) -> String {
        let key = if self.api_key().is_some() {
            "API key set"
        } else {
            "no API key"
        };
        format!(
            "{} at {} ({key}, timeout {:?})",
            self.model.trim(),
            redact_url(self.base_url.trim()),
            self.timeout
        )
    }

    /// The key, when set and not blank.
    pub(crate) fn api_key(&self) -> Option<&str> {
        non_blank(self.api_key.as_deref())
    }
}

/// Never prints the API key or a password in the URL.
impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &redact_url(&self.base_url))
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn non_blank(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// A model setting that cannot be used; the binary should refuse to start.
/// No variant carries the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `LLM_BASE_URL` is not an http(s) URL of an API root. `url` has any
    /// password redacted.
    #[error("invalid LLM_BASE_URL {url:?}: {reason} (expected e.g. https://api.openai.com/v1 or http://127.0.0.1:11434/v1)")]
    InvalidBaseUrl {
        /// The URL, password redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `LLM_API_KEY` or `LLM_MODEL` is set but `LLM_BASE_URL` is not.
    #[error("LLM_API_KEY or LLM_MODEL is set but LLM_BASE_URL is not (set LLM_BASE_URL, e.g. https://api.openai.com/v1, or unset them)")]
    MissingBaseUrl,
    /// `LLM_MODEL` is not set (or blank).
    #[error("LLM_MODEL is not set (the model to ask, e.g. gpt-4o-mini)")]
    MissingModel,
    /// `LLM_MODEL` holds characters a model name cannot.
    #[error("invalid LLM_MODEL {model:?}: {reason}")]
    InvalidModel {
        /// The value given.
        model: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `LLM_API_KEY` cannot be sent in an HTTP header.
    #[error("invalid LLM_API_KEY: {reason}")]
    InvalidApiKey {
        /// What is wrong with it (never the key).
        reason: String,
    },
    /// The timeout is zero.
    #[error("the model's timeout must be longer than zero")]
    ZeroTimeout,
}

/// The settings as the adapter uses them.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    /// `{base_url}/chat/completions`.
    pub endpoint: String,
    pub api_key: Option<String>,
    pub model: String,
    pub timeout: Duration,
}

/// Checks the settings (the URL's shape here, its syntax when the adapter
/// parses it).
pub(crate) fn check(config: &LlmConfig) -> Result<Checked, ConfigError> {
    let endpoint = endpoint(&config.base_url)?;
    let model = config.model.trim();
    if model.is_empty() {
        return Err(ConfigError::MissingModel);
    }
    if model.chars().any(char::is_control) {
        return Err(ConfigError::InvalidModel {
            model: model.escape_debug().to_string(),
            reason: "it contains control characters".to_owned(),
        });
    }
    let api_key = config.api_key().map(str::to_owned);
    if let Some(key) = &api_key {
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::InvalidApiKey {
                reason: "it must be printable ASCII without spaces".to_owned(),
            });
        }
    }
    if config.timeout.is_zero() {
        return Err(ConfigError::ZeroTimeout);
    }
    Ok(Checked {
        endpoint,
        api_key,
        model: model.to_owned(),
        timeout: config.timeout,
    })
}

/// `{base_url}/chat/completions`, or why the base URL cannot be used.
fn endpoint(base_url: &str) -> Result<String, ConfigError> {
    chatdesk_domain::host::api_endpoint(base_url, COMPLETIONS_PATH, "…/v1", "LLM_API_KEY").map_err(
        |reason| ConfigError::InvalidBaseUrl {
            url: redact_url(base_url),
            reason,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_of_base_urls() {
        let cases = [
            (
                "http://127.0.0.1:8080/v1",
                "http://127.0.0.1:8080/v1/chat/completions",
            ),
            (
                "http://127.0.0.1:8080/v1/",
                "http://127.0.0.1:8080/v1/chat/completions",
            ),
            (
                "https://api.openai.com/v1//",
                "https://api.openai.com/v1/chat/completions",
            ),
            ("  https://host/v1 ", "https://host/v1/chat/completions"),
            ("HTTPS://host", "HTTPS://host/chat/completions"),
            (
                "http://[::1]:11434/v1",
                "http://[::1]:11434/v1/chat/completions",
            ),
        ];
        for (base, want) in cases {
            assert_eq!(endpoint(base).as_deref(), Ok(want), "{base}");
        }
    }

    #[test]
    fn unusable_base_urls() {
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("api.openai.com/v1", "scheme"),
            ("ftp://host/v1", "only http and https"),
            ("file:///etc/passwd", "only http and https"),
            ("http://", "no host"),
            ("http:///v1", "no host"),
            ("http://:8080/v1", "no host"),
            ("http://host/v 1", "spaces"),
            ("http://host/v1?key=1", "query"),
            ("http://host/v1#x", "query"),
            ("http://user:secret@host/v1", "credentials"),
            ("http://host/v1/chat/completions", "API root"),
        ];
        for (base, reason) in cases {
            match endpoint(base) {
                Err(ConfigError::InvalidBaseUrl { reason: got, url }) => {
                    assert!(got.contains(reason), "{base}: {got}");
                    assert!(!url.contains("secret"), "{url}");
                }
                other => panic!("{base}: {other:?}"),
            }
        }
    }

    #[test]
    fn settings_from_the_environment() {
        let url = Some("http://host/v1");
        let model = Some("m");
        assert_eq!(LlmConfig::from_settings(None, None, None), Ok(None));
        assert_eq!(
            LlmConfig::from_settings(Some(" "), Some(""), None),
            Ok(None)
        );
        assert_eq!(
            LlmConfig::from_settings(url, None, model),
            Ok(Some(LlmConfig::new("http://host/v1", "m")))
        );
        assert_eq!(
            LlmConfig::from_settings(url, Some(" k "), model),
            Ok(Some(
                LlmConfig::new("http://host/v1", "m").with_api_key("k")
            ))
        );
        assert_eq!(
            LlmConfig::from_settings(url, Some("k"), None),
            Err(ConfigError::MissingModel)
        );
        assert_eq!(
            LlmConfig::from_settings(None, Some("k"), None),
            Err(ConfigError::MissingBaseUrl)
        );
        assert_eq!(
            LlmConfig::from_settings(None, None, model),
            Err(ConfigError::MissingBaseUrl)
        );
    }

    #[test]
    fn checks_model_key_and_timeout() {
        let base = LlmConfig::new("http://host/v1", " gpt ");
        let checked = check(&base.clone().with_api_key("  ")).map(|c| (c.model, c.api_key));
        assert_eq!(checked, Ok(("gpt".to_owned(), None)));
        assert_eq!(
            check(&LlmConfig::new("http://host/v1", " ")).map(|c| c.model),
            Err(ConfigError::MissingModel)
        );
        assert!(matches!(
            check(&LlmConfig::new("http://host/v1", "a\nb")),
            Err(ConfigError::InvalidModel { .. })
        ));
        match check(&base.clone().with_api_key("sk-abc def")) {
            Err(ConfigError::InvalidApiKey { reason }) => assert!(!reason.contains("abc")),
            other => panic!("{:?}", other.map(|c| c.endpoint)),
        }
        assert!(matches!(
            check(&base.clone().with_api_key("sk-é")),
            Err(ConfigError::InvalidApiKey { .. })
        ));
        assert_eq!(
            check(&base.with_timeout(Duration::ZERO)).map(|c| c.timeout),
            Err(ConfigError::ZeroTimeout)
        );
    }

    #[test]
    fn debug_and_describe_hide_the_key() {
        let config = LlmConfig::new("http://host/v1", "m").with_api_key("sk-very-secret");
        let debug = format!("{config:?}");
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(debug.contains("***"), "{debug}");
        let line = config.describe();
        assert!(!line.contains("very-secret"), "{line}");
        assert_eq!(line, "m at http://host/v1 (API key set, timeout 20s)");
        assert_eq!(
            LlmConfig::new("http://host/v1", "m").describe(),
            "m at http://host/v1 (no API key, timeout 20s)"
        );
    }
}
