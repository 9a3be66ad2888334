//! Reading a chat-completion reply: the message content, the tokens spent
//! and the model, then the JSON object the content was asked to be.

use chatdesk_domain::ports::{GeneratedGuide, ModelError};
use serde_json::{Map, Value};

/// The longest excerpt of a server's own words (an error message, a
/// refusal) kept in an error.
const EXCERPT_CHARS: usize = 300;

/// What a successful chat completion said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Completion {
    /// `choices[0].message.content`.
    pub content: String,
    /// `model`, or the configured model when the reply names none.
    pub model: String,
    /// `usage.total_tokens`, else `prompt_tokens + completion_tokens`,
    /// else 0.
    pub tokens_used: u32,
    /// `choices[0].finish_reason` was `length`: the reply was cut off.
    pub truncated: bool,
}

fn malformed(reason: impl Into<String>) -> ModelError {
    ModelError::Malformed(reason.into())
}

/// Reads the body of a 2xx chat-completion reply.
pub(crate) fn completion(body: &[u8], configured_model: &str) -> Result<Completion, ModelError> {
    let reply: Value =
        serde_json::from_slice(body).map_err(|_| malformed("the reply is not JSON"))?;
    let Some(reply) = reply.as_object() else {
        return Err(malformed("the reply is not a JSON object"));
    };
    let choice = reply
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|choices| choices.first())
        .ok_or_else(|| malformed("the reply has no choices"))?;
    let message = choice
        .get("message")
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("the reply's first choice has no message"))?;
    let content = match message.get("content") {
        Some(Value::String(content)) => content.clone(),
        _ => {
            return Err(match message.get("refusal").and_then(Value::as_str) {
                Some(refusal) => malformed(format!("the model declined: {}", excerpt(refusal))),
                None => malformed("the reply's message has no text content"),
            })
        }
    };
    let model = reply
        .get("model")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|m| !m.is_empty() && !m.chars().any(char::is_control))
        .unwrap_or(configured_model)
        .to_owned();
    Ok(Completion {
        content,
        model,
        tokens_used: tokens(reply.get("usage")),
        truncated: choice.get("finish_reason").and_then(Value::as_str) == Some("length"),
    })
}

/// Tokens spent, from `usage`; 0 when it says nothing usable.
fn tokens(usage: Option<&Value>) -> u32 {
    let count = |key: &str| usage.and_then(|u| u.get(key)).and_then(Value::as_u64);
    let total = count("total_tokens").or_else(|| {
        match (count("prompt_tokens"), count("completion_tokens")) {
            (None, None) => None,
            (prompt, completion) => {
                Some(prompt.unwrap_or(0).saturating_add(completion.unwrap_or(0)))
            }
        }
    });
    total.map_or(0, |t| u32::try_from(t).unwrap_or(u32::MAX))
}

/// The JSON object the content holds, alone or in a Markdown code fence
/// (```` ```json … ``` ````).
fn object(completion: &Completion) -> Result<Map<String, Value>, ModelError> {
    let not_json = || {
        if completion.truncated {
            malformed("the reply was cut off before its JSON object ended")
        } else {
            malformed("the reply's content is not a JSON object")
        }
    };
    match serde_json::from_str(unfence(&completion.content)) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(not_json()),
    }
}

/// The text inside a Markdown code fence (with or without a language tag),
/// or the text itself, trimmed.
fn unfence(content: &str) -> &str {
    let text = content.trim();
    let Some(inner) = text.strip_prefix("```") else {
        return text;
    };
    let Some(inner) = inner.strip_suffix("```") else {
        return text;
    };
    // The opening fence may name the language (```json).
    inner
        .trim_start_matches(|c: char| c.is_ascii_alphabetic())
        .trim()
}

/// The Flow a generation reply drafted. `name` and `answer` must be
/// non-empty strings; `description` a string (possibly empty). All three
/// are trimmed; other fields are ignored.
pub(crate) fn guide(completion: &Completion) -> Result<GeneratedGuide, ModelError> {
    let object = object(completion)?;
    let field = |key: &str| match object.get(key) {
        Some(Value::String(text)) => Ok(text.trim().to_owned()),
        Some(_) => Err(malformed(format!("the reply's \"{key}\" is not a string"))),
        None => Err(malformed(format!("the reply has no \"{key}\""))),
    };
    let guide = GeneratedGuide {
        name: field("name")?,
        description: field("description")?,
        answer: field("answer")?,
    };
    if guide.name.is_empty() {
        return Err(malformed("the reply's \"name\" is empty"));
    }
    if guide.answer.is_empty() {
        return Err(malformed("the reply's \"answer\" is empty"));
    }
    Ok(guide)
}

/// The candidate a ranking reply picked: `{"choice": N}` with N from 1 to
/// `candidates` gives index N − 1, `{"choice": null}` none.
pub(crate) fn choice(
    completion: &Completion,
    candidates: usize,
) -> Result<Option<usize>, ModelError> {
    let object = object(completion)?;
    match object.get("choice") {
        None => Err(malformed("the reply has no \"choice\"")),
        Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => {
            match n.as_u64().and_then(|n| usize::try_from(n).ok()) {
                Some(n) if (1..=candidates).contains(&n) => Ok(Some(n - 1)),
                _ => Err(malformed(format!(
                    "the reply's choice {n} is not between 1 and {candidates}"
                ))),
            }
        }
        Some(Value::Number(n)) => Err(malformed(format!(
            "the reply's choice {n} is not an integer"
        ))),
        Some(_) => Err(malformed("the reply's \"choice\" is not a number or null")),
    }
}

/// The message of an error reply's body: `{"error": {"message": …}}` (the
/// OpenAI shape) or `{"error": "…"}` (some local servers), with `secret`
/// replaced by `***`, on one line, at most [`EXCERPT_CHARS`] characters.
pub(crate) fn error_message(body: &[u8], secret: Option<&str>) -> Option<String> {
    let reply: Value = serde_json::from_slice(body).ok()?;
    let error = reply.get("error")?;
    let message = match error {
        Value::String(message) => message.as_str(),
        Value::Object(error) => error.get("message")?.as_str()?,
        _ => return None,
    };
    let message = match secret {
        Some(secret) if !secret.is_empty() => message.replace(secret, "***"),
        _ => message.to_owned(),
    };
    Some(excerpt(&message)).filter(|m| !m.is_empty())
}

/// The error code of an error reply (`error.code`, else `error.type`).
pub(crate) fn error_code(body: &[u8]) -> Option<String> {
    let reply: Value = serde_json::from_slice(body).ok()?;
    let error = reply.get("error")?.as_object()?;
    let code = error.get("code").and_then(Value::as_str);
    code.or_else(|| error.get("type").and_then(Value::as_str))
        .map(str::to_owned)
}

/// The text on one line, control characters dropped, shortened to
/// [`EXCERPT_CHARS`] characters (with `…`).
fn excerpt(text: &str) -> String {
    let line = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    match line.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(content: &str) -> Completion {
        Completion {
            content: content.to_owned(),
            model: "m".to_owned(),
            tokens_used: 0,
            truncated: false,
        }
    }

    fn body(value: Value) -> Vec<u8> {
        value.to_string().into_bytes()
    }

    #[test]
    fn reads_content_model_and_tokens() {
        let cases = [
            (
                json!({"total_tokens": 42, "prompt_tokens": 1, "completion_tokens": 1}),
                42,
            ),
            (json!({"prompt_tokens": 30, "completion_tokens": 12}), 42),
            (json!({"prompt_tokens": 30}), 30),
            (json!({"total_tokens": "42"}), 0),
            (json!({"total_tokens": -1}), 0),
            (json!({"total_tokens": 1u64 << 40}), u32::MAX),
            (json!(null), 0),
            (json!({}), 0),
        ];
        for (usage, want) in cases {
            let got = completion(
                &body(
                    json!({"model": "served", "choices": [{"message": {"content": "x"}}], "usage": usage}),
                ),
                "configured",
            );
            assert_eq!(
                got.map(|c| (c.content, c.model, c.tokens_used)),
                Ok(("x".into(), "served".into(), want)),
                "{usage}"
            );
        }
        let unnamed = completion(
            &body(json!({"choices": [{"message": {"content": "x"}}]})),
            "configured",
        );
        assert_eq!(
            unnamed.map(|c| (c.model, c.tokens_used)),
            Ok(("configured".into(), 0))
        );
        let blank = completion(
            &body(json!({"model": " ", "choices": [{"message": {"content": "x"}}]})),
            "configured",
        );
        assert_eq!(blank.map(|c| c.model), Ok("configured".into()));
    }

    #[test]
    fn refuses_replies_without_a_message() {
        let cases: [(&[u8], &str); 10] = [
            (b"<html>502</html>", "not JSON"),
            (b"", "not JSON"),
            (b"[1]", "not a JSON object"),
            (br#"{"object":"chat.completion"}"#, "no choices"),
            (br#"{"choices":[]}"#, "no choices"),
            (br#"{"choices":{}}"#, "no choices"),
            (br#"{"choices":[{}]}"#, "no message"),
            (br#"{"choices":[{"message":{"content":null}}]}"#, "no text content"),
            (br#"{"choices":[{"message":{"content":7}}]}"#, "no text content"),
            (br#"{"choices":[{"message":{"content":null,"refusal":"I can't help with that."}}]}"#, "declined: I can't help with that."),
        ];
        for (body, want) in cases {
            match completion(body, "m") {
                Err(ModelError::Malformed(reason)) => assert!(reason.contains(want), "{reason}"),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
    }

    #[test]
    fn guide_from_plain_or_fenced_json() {
        let want = GeneratedGuide {
            name: "Export".to_owned(),
            description: "Get a CSV".to_owned(),
            answer: "Open Billing.".to_owned(),
        };
        let json = r#"{"name": " Export ", "description": "Get a CSV", "answer": "Open Billing.", "extra": 1}"#;
        for content in [
            json.to_owned(),
            format!("  {json}\n"),
            format!("```json\n{json}\n```"),
            format!("```JSON\r\n{json}\r\n```\n"),
            format!("```\n{json}\n```"),
            format!("```json {json} ```"),
            format!("```{json}```"),
        ] {
            assert_eq!(guide(&reply(&content)), Ok(want.clone()), "{content}");
        }
    }

    #[test]
    fn guide_refuses_what_was_not_asked() {
        let cases = [
            ("Sure! Open Billing.", "not a JSON object"),
            ("```json\nOpen Billing\n```", "not a JSON object"),
            ("```json\n{\"name\": \"x\"", "not a JSON object"),
            ("[\"name\"]", "not a JSON object"),
            ("\"name\"", "not a JSON object"),
            (r#"{"description": "d", "answer": "a"}"#, "no \"name\""),
            (r#"{"name": "n", "answer": "a"}"#, "no \"description\""),
            (r#"{"name": "n", "description": "d"}"#, "no \"answer\""),
            (
                r#"{"name": 1, "description": "d", "answer": "a"}"#,
                "\"name\" is not a string",
            ),
            (
                r#"{"name": "n", "description": null, "answer": "a"}"#,
                "\"description\" is not a string",
            ),
            (
                r#"{"name": "  ", "description": "d", "answer": "a"}"#,
                "\"name\" is empty",
            ),
            (
                r#"{"name": "n", "description": "d", "answer": ""}"#,
                "\"answer\" is empty",
            ),
        ];
        for (content, want) in cases {
            match guide(&reply(content)) {
                Err(ModelError::Malformed(reason)) => {
                    assert!(reason.contains(want), "{content}: {reason}")
                }
                other => panic!("{content}: {other:?}"),
            }
        }
        let cut = Completion {
            truncated: true,
            ..reply("{\"name\": \"n\", \"descr")
        };
        assert_eq!(
            guide(&cut),
            Err(ModelError::Malformed(
                "the reply was cut off before its JSON object ended".into()
            ))
        );
        assert_eq!(
            guide(&reply(r#"{"name": "n", "description": "", "answer": "a"}"#))
                .map(|g| g.description),
            Ok(String::new())
        );
    }

    #[test]
    fn choices() {
        let cases: [(&str, Result<Option<usize>, &str>); 13] = [
            (r#"{"choice": 1}"#, Ok(Some(0))),
            (r#"{"choice": 3}"#, Ok(Some(2))),
            (r#"{"choice": null}"#, Ok(None)),
            ("```json\n{\"choice\": 2}\n```", Ok(Some(1))),
            (r#"{"choice": 0}"#, Err("not between 1 and 3")),
            (r#"{"choice": 4}"#, Err("not between 1 and 3")),
            (r#"{"choice": -1}"#, Err("not between 1 and 3")),
            (
                r#"{"choice": 18446744073709551615}"#,
                Err("not between 1 and 3"),
            ),
            (r#"{"choice": 1.5}"#, Err("not an integer")),
            (r#"{"choice": 2.0}"#, Err("not an integer")),
            (r#"{"choice": "2"}"#, Err("not a number or null")),
            (r#"{"pick": 2}"#, Err("no \"choice\"")),
            ("2", Err("not a JSON object")),
        ];
        for (content, want) in cases {
            match (choice(&reply(content), 3), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{content}"),
                (Err(ModelError::Malformed(reason)), Err(want)) => {
                    assert!(reason.contains(want), "{content}: {reason}")
                }
                (got, want) => panic!("{content}: {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn error_messages_hide_the_key() {
        let openai = br#"{"error":{"message":"Incorrect API key provided: sk-secret-1.\nSee docs.","type":"invalid_request_error","code":"invalid_api_key"}}"#;
        assert_eq!(
            error_message(openai, Some("sk-secret-1")).as_deref(),
            Some("Incorrect API key provided: ***. See docs.")
        );
        assert_eq!(error_code(openai).as_deref(), Some("invalid_api_key"));
        assert_eq!(
            error_message(br#"{"error":"model not found"}"#, None).as_deref(),
            Some("model not found")
        );
        assert_eq!(
            error_code(br#"{"error":{"type":"insufficient_quota"}}"#).as_deref(),
            Some("insufficient_quota")
        );
        for body in [
            &b"oops"[..],
            br#"{"error":{}}"#,
            br#"{"error":{"message":""}}"#,
            br#"{"message":"x"}"#,
            br#"{"error":1}"#,
        ] {
            assert_eq!(
                error_message(body, Some("k")),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let long = json!({"error": {"message": "é".repeat(1000)}}).to_string();
        let message = error_message(long.as_bytes(), None).unwrap_or_default();
        assert_eq!(message.chars().count(), EXCERPT_CHARS + 1);
        assert!(message.ends_with('…'));
    }
}
