//! The language model behind answer generation (and, when configured, the
//! ranker): one port, so the use cases never know which API or server
//! answers. The binary plugs in an adapter for the OpenAI-compatible
//! chat-completions API; without one, nothing is generated.

#[cfg(feature = "testing")]
use mockall::automock;

/// What the generator knows when it drafts a Flow for a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationRequest {
    /// The site's display name.
    pub site_name: String,
    /// The site's domain.
    pub site_domain: String,
    /// The widget's AI persona (extra system prompt), if any.
    pub persona: Option<String>,
    /// The visitor's question.
    pub question: String,
}

/// A Flow as the model drafted it, before the domain checks it
/// ([`crate::services::clean_guide`] is where it is cleaned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedGuide {
    /// The Flow's name.
    pub name: String,
    /// What the Flow does.
    pub description: String,
    /// The answer shown to the visitor, kept as the Flow's content.
    pub answer: String,
}

/// One item the model may pick when it ranks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankCandidate {
    /// The item's name.
    pub name: String,
    /// Its description.
    pub description: String,
}

/// A model's answer with what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelReply<T> {
    /// The answer.
    pub value: T,
    /// The model that gave it, as the API named it.
    pub model: String,
    /// Tokens spent (prompt and completion).
    pub tokens_used: u32,
}

/// Why the model gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// It could not be reached, timed out, or failed on its side (5xx).
    #[error("the model is unavailable: {0}")]
    Unavailable(String),
    /// It refused the request (4xx: a bad key, an unknown model, a quota).
    #[error("the model refused the request: {0}")]
    Refused(String),
    /// It answered with something that is not what was asked for.
    #[error("the model's reply could not be used: {0}")]
    Malformed(String),
}

/// A language model.
#[cfg_attr(feature = "testing", automock)]
pub trait AnswerModel: Send + Sync {
    /// The configured model's name (recorded on messages it writes).
    fn model_name(&self) -> String;
    /// Drafts a Flow answering the question. Blocks until the model
    /// answers or its timeout passes; the caller holds no database
    /// connection meanwhile.
    fn generate(
        &self,
        request: &GenerationRequest,
    ) -> Result<ModelReply<GeneratedGuide>, ModelError>;
    /// Picks the candidate (by index) that answers the question, or none.
    fn rank(
        &self,
        question: &str,
        candidates: &[RankCandidate],
    ) -> Result<ModelReply<Option<usize>>, ModelError>;
}
