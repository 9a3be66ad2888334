//! chatdesk's language-model adapter: the domain's
//! [`AnswerModel`](chatdesk_domain::ports::AnswerModel) port over the
//! OpenAI-compatible chat-completions API ([`OpenAiCompatible`]), for hosted
//! APIs (https) and local servers (http) alike.
//!
//! The binary reads `LLM_BASE_URL`, `LLM_API_KEY` and `LLM_MODEL`, turns them
//! into an [`LlmConfig`] with [`LlmConfig::from_settings`] (nothing set →
//! `None`: no generation), logs [`LlmConfig::describe`] and builds the
//! adapter with [`OpenAiCompatible::new`], which refuses a bad URL so the
//! server does not start half-configured.
//!
//! Every call is one blocking HTTP request (ureq, rustls): the caller runs
//! it on a blocking thread and holds no database connection meanwhile. It
//! ends within [`LlmConfig::timeout`] (connecting within
//! [`CONNECT_TIMEOUT`]), and reads at most [`MAX_REPLY_BYTES`] of a reply.
//!
//! Behind the `testing` feature, `testing` holds a tiny std-only
//! OpenAI-compatible server with scripted replies, for this crate's tests
//! and the workspace's HTTP tests (not part of the release binary).

mod client;
mod config;
mod prompt;
mod reply;
#[cfg(feature = "testing")]
pub mod testing;

pub use client::OpenAiCompatible;
pub use config::{ConfigError, LlmConfig, CONNECT_TIMEOUT, DEFAULT_TIMEOUT};

/// The most of a reply body that is read; a longer reply is refused as
/// malformed, so a hostile or broken server cannot exhaust memory.
pub const MAX_REPLY_BYTES: u64 = 1024 * 1024;
