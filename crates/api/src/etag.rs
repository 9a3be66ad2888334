//! Entity tags and `If-Match`: `GET` of a site, widget or content item
//! answers with an `ETag`; `PUT`/`PATCH` with `If-Match` change it only if
//! it is still the one named (else 412 `PRECONDITION_FAILED`), checked by
//! the store inside the writing transaction.

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use chatdesk_domain::version::Precondition;

use crate::error::ApiError;

/// The `If-Match` header as a precondition. Absent demands nothing; `*`
/// demands that the resource exists (a write that would make it fails);
/// a list of strong tags demands one of them; weak tags and malformed
/// values never match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfMatch(pub Precondition);

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let values: Vec<&HeaderValue> = req.headers().get_all(header::IF_MATCH).collect();
        std::future::ready(Ok(IfMatch(parse_if_match(&values))))
    }
}

fn parse_if_match(values: &[&HeaderValue]) -> Precondition {
    if values.is_empty() {
        return Precondition::None;
    }
    let mut tags = Vec::new();
    for value in values {
        let Ok(text) = value.to_str() else {
            return Precondition::TagIn(Vec::new());
        };
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if item == "*" {
                return Precondition::Exists;
            }
            // A strong tag: "opaque"; `W/"…"` is weak and never matches
            // under If-Match's strong comparison.
            if let Some(tag) = item
                .strip_prefix('"')
                .and_then(|rest| rest.strip_suffix('"'))
                .filter(|tag| !tag.contains('"'))
            {
                tags.push(tag.to_string());
            }
        }
    }
    Precondition::TagIn(tags)
}

/// A 200 answer with `body` and the entity tag `tag`.
pub fn tagged<T: serde::Serialize>(
    status: actix_web::http::StatusCode,
    tag: &str,
    body: &T,
) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    if let Ok(value) = HeaderValue::from_str(&format!("\"{tag}\"")) {
        response.insert_header((header::ETAG, value));
    }
    response.json(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> Precondition {
        let values: Vec<HeaderValue> = values
            .iter()
            .map(|v| HeaderValue::from_str(v).expect("header"))
            .collect();
        parse_if_match(&values.iter().collect::<Vec<_>>())
    }

    #[test]
    fn if_match_values() {
        let tags = |t: &[&str]| Precondition::TagIn(t.iter().map(|s| s.to_string()).collect());
        assert_eq!(parse(&[]), Precondition::None);
        assert_eq!(parse(&["*"]), Precondition::Exists);
        assert_eq!(parse(&["\"3\""]), tags(&["3"]));
        assert_eq!(parse(&["\"3.1\", \"4.1\""]), tags(&["3.1", "4.1"]));
        assert_eq!(parse(&["\"3\"", "\"4\""]), tags(&["3", "4"]));
        assert_eq!(parse(&["W/\"3\""]), tags(&[]));
        assert_eq!(parse(&["3"]), tags(&[]));
        assert_eq!(parse(&["\"3"]), tags(&[]));
        assert_eq!(parse(&[""]), tags(&[]));
    }
}
