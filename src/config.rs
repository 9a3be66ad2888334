//! Configuration, read once from the environment (and CLI flags) into a
//! typed struct that is passed down; there is no global.

use std::env;
use std::time::Duration;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Everything chatdesk reads from its environment. Its `Debug` hides the
/// secrets it holds: the URLs' passwords and the Resend API key.
#[derive(Clone)]
pub struct Config {
    /// `DATABASE_URL`: `postgres://…`, `postgresql://…` or `sqlite://PATH`;
    /// unset means `sqlite://./data/chatdesk.sqlite3`.
    pub database_url: String,
    /// `DATABASE_POOL_SIZE`: connections in the pool (default 10).
    pub pool_size: u32,
    /// `DASHBOARD_ORIGINS`: comma-separated origins the dashboard SPA is
    /// served from; CORS is answered for these only.
    pub dashboard_origins: Vec<String>,
    /// `SMTP_URL`, e.g. `smtp://127.0.0.1:2525`.
    pub smtp_url: Option<String>,
    /// `RESEND_API_KEY`.
    pub resend_api_key: Option<String>,
    /// `RESEND_BASE_URL`: where Resend's API is (its own by default).
    pub resend_base_url: Option<String>,
    /// `MAIL_FROM`: the sender of chatdesk's email.
    pub mail_from: String,
    /// `HTTP_WORKERS`: server worker threads (default: one per core).
    pub workers: Option<usize>,
    /// `HTTP_BODY_TIMEOUT_SECS`: how long a request body may take to
    /// arrive in full before a 408 (default 10 s).
    pub body_timeout: Duration,
    /// The model, when `LLM_BASE_URL` is set; else nothing is generated.
    pub llm: Option<LlmSettings>,
}

/// The OpenAI-compatible model's settings.
#[derive(Clone, PartialEq, Eq)]
pub struct LlmSettings {
    /// `LLM_BASE_URL`, e.g. `http://127.0.0.1:8000/v1` (requests go to
    /// `{LLM_BASE_URL}/chat/completions`).
    pub base_url: String,
    /// `LLM_API_KEY`, sent as `Authorization: Bearer` (optional for local
    /// servers).
    pub api_key: Option<String>,
    /// `LLM_MODEL`, required with `LLM_BASE_URL`.
    pub model: String,
    /// `LLM_TIMEOUT_SECS`: how long one model call may take (default 20 s).
    pub timeout: Duration,
    /// `LLM_RANKER=model`: the model also picks among the lexical ranker's
    /// shortlist when no name matches (default `lexical`: BM25 only).
    pub model_ranks: bool,
}

impl std::fmt::Debug for LlmSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmSettings")
            .field(
                "base_url",
                &chatdesk_domain::secret::redact_url(&self.base_url),
            )
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("model_ranks", &self.model_ranks)
            .finish()
    }
}

fn llm_settings() -> Result<Option<LlmSettings>, String> {
    let Some(base_url) = non_empty("LLM_BASE_URL") else {
        if non_empty("LLM_API_KEY").is_some() || non_empty("LLM_MODEL").is_some() {
            return Err("LLM_API_KEY and LLM_MODEL need LLM_BASE_URL".into());
        }
        return Ok(None);
    };
    let model = non_empty("LLM_MODEL").ok_or("LLM_BASE_URL needs LLM_MODEL")?;
    let timeout = match non_empty("LLM_TIMEOUT_SECS") {
        None => Duration::from_secs(20),
        Some(raw) => Duration::from_secs(
            raw.parse::<u64>()
                .ok()
                .filter(|n| (1..=600).contains(n))
                .ok_or("LLM_TIMEOUT_SECS must be a number from 1 to 600")?,
        ),
    };
    let model_ranks = match non_empty("LLM_RANKER").as_deref() {
        None | Some("lexical") => false,
        Some("model") => true,
        Some(_) => return Err("LLM_RANKER must be `lexical` or `model`".into()),
    };
    Ok(Some(LlmSettings {
        base_url,
        api_key: non_empty("LLM_API_KEY"),
        model,
        timeout,
        model_ranks,
    }))
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use chatdesk_domain::secret::redact_url;
        let Config {
            database_url,
            pool_size,
            dashboard_origins,
            smtp_url,
            resend_api_key,
            resend_base_url,
            mail_from,
            workers,
            body_timeout,
            llm,
        } = self;
        f.debug_struct("Config")
            .field("database_url", &redact_url(database_url))
            .field("pool_size", pool_size)
            .field("dashboard_origins", dashboard_origins)
            .field("smtp_url", &smtp_url.as_deref().map(redact_url))
            .field("resend_api_key", &resend_api_key.as_ref().map(|_| "***"))
            .field("resend_base_url", resend_base_url)
            .field("mail_from", mail_from)
            .field("workers", workers)
            .field("body_timeout", body_timeout)
            .field("llm", llm)
            .finish()
    }
}

/// The sender used when `MAIL_FROM` is unset.
pub const DEFAULT_MAIL_FROM: &str = "chatdesk <no-reply@chatdesk.localhost>";

fn non_empty(name: &str) -> Option<String> {
    env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl Config {
    /// Reads the environment; `database_url` overrides `DATABASE_URL`.
    pub fn from_env(database_url: Option<String>) -> Result<Config, String> {
        let database_url = database_url
            .filter(|u| !u.trim().is_empty())
            .or_else(|| non_empty("DATABASE_URL"))
            .unwrap_or_else(|| chatdesk_store::default_sqlite_url().to_string());
        let pool_size = match non_empty("DATABASE_POOL_SIZE") {
            None => 10,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=200).contains(n))
                .ok_or("DATABASE_POOL_SIZE must be a number from 1 to 200")?,
        };
        let workers = match non_empty("HTTP_WORKERS") {
            None => None,
            Some(raw) => Some(
                raw.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=256).contains(n))
                    .ok_or("HTTP_WORKERS must be a number from 1 to 256")?,
            ),
        };
        let body_timeout = match non_empty("HTTP_BODY_TIMEOUT_SECS") {
            None => chatdesk_api::extract::DEFAULT_BODY_TIMEOUT,
            Some(raw) => Duration::from_secs(
                raw.parse::<u64>()
                    .ok()
                    .filter(|n| (1..=3600).contains(n))
                    .ok_or("HTTP_BODY_TIMEOUT_SECS must be a number from 1 to 3600")?,
            ),
        };
        let dashboard_origins = non_empty("DASHBOARD_ORIGINS")
            .map(|raw| {
                raw.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_string())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Config {
            database_url,
            pool_size,
            dashboard_origins,
            smtp_url: non_empty("SMTP_URL"),
            resend_api_key: non_empty("RESEND_API_KEY"),
            resend_base_url: non_empty("RESEND_BASE_URL"),
            mail_from: non_empty("MAIL_FROM").unwrap_or_else(|| DEFAULT_MAIL_FROM.to_string()),
            workers,
            body_timeout,
            llm: llm_settings()?,
        })
    }

    /// The log format from `LOG_FORMAT` (`json` or `pretty`, default pretty).
    pub fn log_format() -> LogFormat {
        match non_empty("LOG_FORMAT").as_deref() {
            Some("json") => LogFormat::Json,
            _ => LogFormat::Pretty,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(smtp_url: Option<&str>, resend_api_key: Option<&str>) -> Config {
        Config {
            database_url: "postgres://app:db-s3cret@db:5432/chatdesk?sslpassword=k3y-s3cret"
                .to_string(),
            pool_size: 10,
            dashboard_origins: vec!["https://app.example.com".to_string()],
            smtp_url: smtp_url.map(str::to_string),
            resend_api_key: resend_api_key.map(str::to_string),
            resend_base_url: None,
            mail_from: DEFAULT_MAIL_FROM.to_string(),
            workers: Some(2),
            body_timeout: Duration::from_secs(10),
            llm: Some(LlmSettings {
                base_url: "https://llm.example/v1".into(),
                api_key: Some("sk-llm-s3cret".into()),
                model: "gpt-4o-mini".into(),
                timeout: Duration::from_secs(20),
                model_ranks: false,
            }),
        }
    }

    #[test]
    fn debug_hides_the_secrets() {
        let shown = format!(
            "{:?}",
            config(
                Some("smtp://mailer:smtp-s3cret@mail:587?tls=required"),
                Some("re_api-s3cret")
            )
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://app:***@db:5432/chatdesk?sslpassword=***"),
            "{shown}"
        );
        assert!(
            shown.contains("Some(\"smtp://mailer:***@mail:587?tls=required\")"),
            "{shown}"
        );
        assert!(shown.contains("resend_api_key: Some(\"***\")"), "{shown}");
        // What is not secret stays readable.
        assert!(shown.contains("pool_size: 10"), "{shown}");
        assert!(shown.contains("https://app.example.com"), "{shown}");
        assert!(shown.contains("workers: Some(2)"), "{shown}");
    }

    #[test]
    fn debug_shows_unset_secrets_as_none() {
        let shown = format!("{:?}", config(None, None));
        assert!(shown.contains("smtp_url: None"), "{shown}");
        assert!(shown.contains("resend_api_key: None"), "{shown}");
    }
}
