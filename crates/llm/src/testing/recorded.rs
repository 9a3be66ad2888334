//! What the fake server was sent.

use serde_json::Value;

use crate::prompt::{GENERATE_HEAD, RANK_HEAD};

/// Which of chatdesk's requests a request is, told by its system prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// [`generate`](chatdesk_domain::ports::AnswerModel::generate): draft a
    /// Flow.
    Generate,
    /// [`rank`](chatdesk_domain::ports::AnswerModel::rank): pick a
    /// candidate.
    Rank,
    /// Anything else (another client, another path, a body that is not a
    /// chat-completion request).
    Other,
}

/// One request as the fake server received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// The method, e.g. `POST`.
    pub method: String,
    /// The request target, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The `Authorization` header, verbatim.
    pub authorization: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The body parsed as JSON (`Value::Null` when it is not JSON).
    pub body: Value,
    /// Which of chatdesk's requests it is.
    pub kind: RequestKind,
}

impl RecordedRequest {
    pub(crate) fn new(
        method: String,
        path: String,
        authorization: Option<String>,
        content_type: Option<String>,
        body: &[u8],
    ) -> RecordedRequest {
        let body = serde_json::from_slice(body).unwrap_or(Value::Null);
        let mut request = RecordedRequest {
            method,
            path,
            authorization,
            content_type,
            body,
            kind: RequestKind::Other,
        };
        request.kind = match request.system_prompt() {
            Some(system) if system.starts_with(GENERATE_HEAD) => RequestKind::Generate,
            Some(system) if system.starts_with(RANK_HEAD) => RequestKind::Rank,
            _ => RequestKind::Other,
        };
        request
    }

    /// The token of an `Authorization: Bearer <token>` header.
    pub fn bearer(&self) -> Option<&str> {
        self.authorization.as_deref()?.strip_prefix("Bearer ")
    }

    /// The body's `model`.
    pub fn model(&self) -> Option<&str> {
        self.body.get("model")?.as_str()
    }

    /// The body's `messages`.
    pub fn messages(&self) -> &[Value] {
        self.body
            .get("messages")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// The content of the first `system` message.
    pub fn system_prompt(&self) -> Option<&str> {
        self.message_with_role("system").next()
    }

    /// The content of the last `user` message: the visitor's question.
    pub fn question(&self) -> Option<&str> {
        self.message_with_role("user").next_back()
    }

    fn message_with_role<'a>(
        &'a self,
        role: &'a str,
    ) -> impl DoubleEndedIterator<Item = &'a str> + 'a {
        self.messages()
            .iter()
            .filter(move |m| m.get("role").and_then(Value::as_str) == Some(role))
            .filter_map(|m| m.get("content").and_then(Value::as_str))
    }
}
