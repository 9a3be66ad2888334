//! [`ResendRequest`]: one request as the fake Resend server received it.

use serde_json::Value;

/// One request the fake Resend server received.
#[derive(Debug, Clone, PartialEq)]
pub struct ResendRequest {
    /// The method, e.g. `POST`.
    pub method: String,
    /// The request target, e.g. `/emails`.
    pub path: String,
    /// Every header, in order, as sent (name, trimmed value).
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Value::Null` when it is not JSON).
    pub body: Value,
    /// The body as text (lossy UTF-8).
    pub raw_body: String,
}

impl ResendRequest {
    pub(super) fn new(
        method: String,
        path: String,
        headers: Vec<(String, String)>,
        body: &[u8],
    ) -> ResendRequest {
        ResendRequest {
            method,
            path,
            headers,
            body: serde_json::from_slice(body).unwrap_or(Value::Null),
            raw_body: String::from_utf8_lossy(body).into_owned(),
        }
    }

    /// A header's value (the first when repeated); the name is matched
    /// case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The `Authorization` header, verbatim.
    pub fn authorization(&self) -> Option<&str> {
        self.header("Authorization")
    }

    /// The token of an `Authorization: Bearer <token>` header.
    pub fn bearer(&self) -> Option<&str> {
        self.authorization()?.strip_prefix("Bearer ")
    }

    /// The `Idempotency-Key` header.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.header("Idempotency-Key")
    }

    /// A string field of the body.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.body.get(key)?.as_str()
    }

    /// The body's `from`.
    pub fn from(&self) -> Option<&str> {
        self.field("from")
    }

    /// The body's `to`: its addresses, whether sent as a string or an
    /// array.
    pub fn to(&self) -> Vec<String> {
        addresses(self.body.get("to"))
    }

    /// The body's `reply_to`: its addresses, whether sent as a string or
    /// an array.
    pub fn reply_to(&self) -> Vec<String> {
        addresses(self.body.get("reply_to"))
    }

    /// The body's `subject`.
    pub fn subject(&self) -> Option<&str> {
        self.field("subject")
    }

    /// The body's `text`.
    pub fn text(&self) -> Option<&str> {
        self.field("text")
    }

    /// The body's `html`.
    pub fn html(&self) -> Option<&str> {
        self.field("html")
    }

    /// A custom header of the email (the body's `headers`), by name,
    /// case-insensitively.
    pub fn email_header(&self, name: &str) -> Option<&str> {
        self.body
            .get("headers")?
            .as_object()?
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| value.as_str())
    }

    /// The email's `Message-ID` (from the body's `headers`), as sent.
    pub fn message_id(&self) -> Option<&str> {
        self.email_header("Message-ID")
    }
}

fn addresses(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}
