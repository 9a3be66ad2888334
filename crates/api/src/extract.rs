//! Request extractors: JSON bodies with field-named errors, queries, the
//! dashboard's signed-in member with its service, path ids, and list
//! paging.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use chatdesk_domain::error::Entity;
use chatdesk_domain::ports::PageRequest;
use chatdesk_domain::services::TenancyService;
use chatdesk_domain::tenant::Actor;
use chatdesk_domain::{Error, FieldError};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::IntoParams;
use validator::Validate;

use crate::error::ApiError;
use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpResponse};
use chatdesk_domain::idempotency::{fingerprint, IdempotencyKey, HEADER as IDEMPOTENCY_HEADER};
use chatdesk_domain::services::{Answer, IdempotencyService};

/// The most bytes a dashboard request body may have.
pub const DASHBOARD_BODY_LIMIT: usize = 256 * 1024;

/// How long a request body may take to arrive in full, unless the server
/// sets [`BodyTimeout`]. (actix-web bounds the headers itself, at 5 s.)
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// App data: the body limit of the routes it is set on, for the 413's
/// message (the app's `PayloadConfig` enforces it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

/// App data: how long [`JsonBody`] waits for the whole body before
/// answering 408 `REQUEST_TIMEOUT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTimeout(pub Duration);

/// Runs a use case on the blocking thread pool (the ports are synchronous).
pub async fn run<S, T, F>(service: &web::Data<S>, f: F) -> Result<T, ApiError>
where
    S: Send + Sync + ?Sized + 'static,
    T: Send + 'static,
    F: FnOnce(&S) -> Result<T, Error> + Send + 'static,
{
    let service = service.clone();
    web::block(move || f(&service))
        .await
        .map_err(|_| ApiError::from(Error::Internal("blocking task was cancelled".into())))?
        .map_err(ApiError::from)
}

/// A JSON body: malformed JSON is a 400, a body of the wrong shape (a
/// missing field, a wrong type) or with a control character in any string
/// a 422 naming the field, an oversized body a 413, a body that does not
/// arrive in full within the [`BodyTimeout`] a 408.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type_ok = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| {
                let v = v.to_ascii_lowercase();
                v.starts_with("application/json") || v.contains("+json")
            });
        let timeout = req
            .app_data::<BodyTimeout>()
            .map_or(DEFAULT_BODY_TIMEOUT, |t| t.0);
        let limit = req
            .app_data::<BodyLimit>()
            .map_or(DASHBOARD_BODY_LIMIT, |l| l.0);
        let body = web::Bytes::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            if !content_type_ok {
                return Err(ApiError::new(
                    actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UNSUPPORTED_MEDIA_TYPE",
                    "Send the body as application/json.",
                ));
            }
            // The app's `PayloadConfig` holds the body to the limit; a
            // client that stalls mid-body is answered, and actix closes the
            // connection since the body was not read to its end.
            let bytes = actix_web::rt::time::timeout(timeout, body)
                .await
                .map_err(|_| body_timed_out(timeout))?
                .map_err(|e| body_error(e, limit))?;
            req.extensions_mut().insert(BodyFingerprint(fingerprint(
                req.method().as_str(),
                req.path(),
                &bytes,
            )));
            parse_json(&bytes).map(JsonBody)
        })
    }
}

/// Request extension set by [`JsonBody`]: the fingerprint of the request
/// (method, path, body bytes), for [`Idempotent`].
#[derive(Debug, Clone)]
pub struct BodyFingerprint(pub String);

/// A creating request's `Idempotency-Key` (absent, or 1–255 visible ASCII
/// characters, else a 422 naming the header) with what keeps the request
/// idempotent. Take it before the [`JsonBody`], and call
/// [`Idempotent::runner`] once the body is read.
pub struct Idempotent {
    key: Option<IdempotencyKey>,
    service: web::Data<IdempotencyService>,
    req: HttpRequest,
}

impl FromRequest for Idempotent {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready((|| {
            let service = req
                .app_data::<web::Data<IdempotencyService>>()
                .ok_or_else(|| {
                    ApiError::from(Error::Internal(
                        "app state missing: IdempotencyService".into(),
                    ))
                })?
                .clone();
            let mut values = req.headers().get_all(IDEMPOTENCY_HEADER);
            let key = match (values.next(), values.next()) {
                (None, _) => None,
                (Some(value), None) => Some(
                    value
                        .to_str()
                        .map_err(|_| Error::invalid(IDEMPOTENCY_HEADER, "must be visible ASCII"))
                        .and_then(IdempotencyKey::parse)?,
                ),
                (Some(_), Some(_)) => {
                    return Err(ApiError::from(Error::invalid(
                        IDEMPOTENCY_HEADER,
                        "must be sent once",
                    )))
                }
            };
            Ok(Idempotent {
                key,
                service,
                req: req.clone(),
            })
        })())
    }
}

impl Idempotent {
    /// What runs the use case idempotently on the blocking pool.
    pub fn runner(self) -> IdempotentRun {
        let fingerprint = self
            .req
            .extensions()
            .get::<BodyFingerprint>()
            .map(|f| f.0.clone())
            .unwrap_or_else(|| fingerprint(self.req.method().as_str(), self.req.path(), b""));
        IdempotentRun {
            key: self.key,
            service: self.service,
            fingerprint,
        }
    }
}

/// Runs a creating use case at most once per key (see
/// [`IdempotencyService::run`]).
pub struct IdempotentRun {
    key: Option<IdempotencyKey>,
    service: web::Data<IdempotencyService>,
    fingerprint: String,
}

impl IdempotentRun {
    /// Runs `make` for the sender `scope` and writes its answer with
    /// `answer`, or gives the key's first answer again.
    pub fn run<T>(
        &self,
        scope: &str,
        make: impl FnOnce() -> Result<T, Error>,
        answer: impl FnOnce(&T) -> Result<Answer, Error>,
    ) -> Result<Answer, Error> {
        self.service
            .run(self.key.as_ref(), scope, &self.fingerprint, make, answer)
    }
}

/// A JSON answer.
pub fn json_answer<T: serde::Serialize>(status: StatusCode, value: &T) -> Result<Answer, Error> {
    let body = serde_json::to_vec(value)
        .map_err(|e| Error::Internal(format!("the answer did not serialise: {e}")))?;
    Ok(Answer {
        status: status.as_u16(),
        body,
        replayed: false,
    })
}

/// The HTTP response of an answer; a replayed one says so in
/// `Idempotency-Replayed: true`.
pub fn answer_response(answer: Answer) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    response.content_type("application/json");
    if answer.replayed {
        response.insert_header(("Idempotency-Replayed", "true"));
    }
    response.body(answer.body)
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        format!("The body is larger than {} KiB.", limit / 1024),
    )
}

fn body_timed_out(timeout: Duration) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::REQUEST_TIMEOUT,
        "REQUEST_TIMEOUT",
        format!("The body did not arrive within {} ms.", timeout.as_millis()),
    )
}

fn body_error(err: actix_web::Error, limit: usize) -> ApiError {
    match err.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => too_large(limit),
        _ => {
            let status = err.as_response_error().status_code();
            if status == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
                too_large(limit)
            } else {
                ApiError::malformed("MALFORMED_BODY", "The body could not be read.")
            }
        }
    }
}

/// Parses JSON into `T`: syntax errors are 400; a control character in a
/// string or key, and shape errors, are 422 with the path of the offending
/// field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::malformed(
            "MALFORMED_JSON",
            format!("The body is not valid JSON: {e}."),
        )
    })?;
    // serde would also read a struct from an array of its fields in order;
    // every body of this API is an object.
    if !value.is_object() {
        return Err(ApiError::validation(vec![FieldError::new(
            "body",
            "must be a JSON object",
        )]));
    }
    let mut refused = Vec::new();
    find_control_characters(&value, &mut String::new(), &mut refused);
    if !refused.is_empty() {
        return Err(ApiError::validation(refused));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let (field, message) = match missing_field(&inner) {
            Some(name) if path == "." => (name.to_string(), "is required".to_string()),
            Some(name) => (format!("{path}.{name}"), "is required".to_string()),
            None if path == "." => ("body".to_string(), inner),
            None => (path, inner),
        };
        ApiError::validation(vec![FieldError::new(field, message)])
    })
}

/// The most fields one 422 names for control characters.
const CONTROL_ERRORS_MAX: usize = 20;

/// Whether a string of a body is refused: it holds a control character
/// (C0, DEL, C1) other than TAB, LF and CR. The domain's rules for each
/// field are stricter still; this check covers every field, also those
/// added later.
fn refused_in_body(text: &str) -> bool {
    !text.chars().all(chatdesk_domain::text::is_multi_line_char)
}

/// Collects, under the field's path as `serde_path_to_error` writes it
/// (`theme.fontFamily`, `audiences[0]`), every string and key of `value`
/// that holds a refused control character.
fn find_control_characters(
    value: &serde_json::Value,
    path: &mut String,
    out: &mut Vec<FieldError>,
) {
    if out.len() >= CONTROL_ERRORS_MAX {
        return;
    }
    match value {
        serde_json::Value::String(text) if refused_in_body(text) => {
            let field = if path.is_empty() {
                "body"
            } else {
                path.as_str()
            };
            out.push(FieldError::new(
                field,
                chatdesk_domain::text::CONTROL_MESSAGE,
            ));
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                find_control_characters(item, path, out);
                path.truncate(len);
            }
        }
        serde_json::Value::Object(fields) => {
            for (key, item) in fields {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                if refused_in_body(key) {
                    // The key itself is named with its control characters
                    // escaped, so the answer stays printable.
                    path.push_str(&key.escape_debug().to_string());
                    if out.len() < CONTROL_ERRORS_MAX {
                        out.push(FieldError::new(
                            path.as_str(),
                            "the field name must not contain control characters",
                        ));
                    }
                } else {
                    path.push_str(key);
                    find_control_characters(item, path, out);
                }
                path.truncate(len);
            }
        }
        _ => {}
    }
}

fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

/// A query string: a parameter holding any control character (TAB, LF and
/// CR included) is a 422 naming the parameter; one that cannot be read is a
/// 400 naming it.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for QueryParams<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(read_query::<T>(req.query_string()).map(QueryParams))
    }
}

/// Reads a query string into `T` (see [`QueryParams`]).
pub fn read_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let refused = query_control_characters(query);
    if !refused.is_empty() {
        return Err(ApiError::validation(refused));
    }
    parse_query::<T>(query).map_err(|e| match repeated_parameter(&e) {
        Some(name) => {
            ApiError::malformed_query(vec![FieldError::new(name, "must be given at most once")])
        }
        None => ApiError::malformed("MALFORMED_QUERY", format!("The query is not valid: {e}.")),
    })
}

/// The parameter a query names twice, from the parse error saying so.
fn repeated_parameter(message: &str) -> Option<&str> {
    message
        .strip_prefix("duplicate field `")
        .and_then(|rest| rest.split('`').next())
}

/// Refuses, naming each, the parameters whose decoded name or value holds
/// a control character. A query that cannot be split into pairs is left
/// to the typed parse, which reports it.
fn query_control_characters(query: &str) -> Vec<FieldError> {
    let Ok(web::Query(pairs)) = web::Query::<Vec<(String, String)>>::from_query(query) else {
        return Vec::new();
    };
    pairs
        .iter()
        .filter(|(name, value)| name.chars().chain(value.chars()).any(char::is_control))
        .take(CONTROL_ERRORS_MAX)
        .map(|(name, _)| {
            FieldError::new(
                name.escape_debug().to_string(),
                "must not contain control characters",
            )
        })
        .collect()
}

fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, String> {
    web::Query::<T>::from_query(query)
        .map(web::Query::into_inner)
        .map_err(|e| match e {
            actix_web::error::QueryPayloadError::Deserialize(inner) => inner.to_string(),
            other => other.to_string(),
        })
}

/// A dashboard request: the bearer token (`Authorization: Bearer <token>`)
/// and the service `S` its route uses. [`Dashboard::run`] signs the member
/// in and runs the use case in one hop to the blocking pool, so a request
/// costs one hop and one pooled connection at a time.
pub struct Dashboard<S: ?Sized> {
    token: Option<String>,
    tenancy: web::Data<TenancyService>,
    service: web::Data<S>,
}

impl<S: ?Sized + 'static> FromRequest for Dashboard<S> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state =
            |what: &str| ApiError::from(Error::Internal(format!("app state missing: {what}")));
        std::future::ready(
            match (
                req.app_data::<web::Data<TenancyService>>(),
                req.app_data::<web::Data<S>>(),
            ) {
                (Some(tenancy), Some(service)) => Ok(Dashboard {
                    token: bearer_token(req),
                    tenancy: tenancy.clone(),
                    service: service.clone(),
                }),
                (None, _) => Err(state("TenancyService")),
                (_, None) => Err(state(std::any::type_name::<S>())),
            },
        )
    }
}

impl<S: Send + Sync + ?Sized + 'static> Dashboard<S> {
    /// Signs the member in, then runs `f` with the service and the member,
    /// on one blocking-pool hop. The member's id is recorded on the
    /// request's span.
    pub async fn run<T, F>(self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&S, &Actor) -> Result<T, Error> + Send + 'static,
    {
        let Dashboard {
            token,
            tenancy,
            service,
        } = self;
        let span = tracing::Span::current();
        run(&tenancy, move |tenancy| {
            let actor = tenancy.authenticate(token.as_deref())?;
            span.record("member_id", tracing::field::display(actor.member.id));
            f(&service, &actor)
        })
        .await
    }
}

fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// Parses an id from the path; anything that is not an id is "not found".
pub fn path_id<T: FromStr>(raw: &str, entity: Entity) -> Result<T, ApiError> {
    raw.parse::<T>()
        .map_err(|_| ApiError::from(Error::NotFound(entity)))
}

/// `?limit=&cursor=` of every list.
#[derive(Debug, Default, Deserialize, IntoParams, Validate)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Items per page, 1–100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    pub limit: Option<i64>,
    /// The `nextCursor` of the previous page (empty: the first page).
    pub cursor: Option<String>,
}

/// The default page size.
pub const DEFAULT_LIMIT: u32 = 25;

/// Runs a request type's `validator` rules; failures are a 422 naming each
/// field (the shape of a request, such as a page size; the product's rules
/// live in the domain).
pub fn validate(value: &impl Validate) -> Result<(), ApiError> {
    value.validate().map_err(|errors| {
        let mut fields: Vec<FieldError> = errors
            .field_errors()
            .into_iter()
            .flat_map(|(field, errs)| {
                errs.iter().map(move |e| {
                    let message = e
                        .message
                        .as_ref()
                        .map_or_else(|| e.code.to_string(), ToString::to_string);
                    FieldError::new(field.to_string(), message)
                })
            })
            .collect();
        fields.sort_by(|a, b| a.field.cmp(&b.field));
        ApiError::validation(fields)
    })
}

impl Paging {
    /// Checks the limit and decodes the cursor into an id.
    pub fn page_request<C: FromStr>(&self) -> Result<PageRequest<C>, ApiError> {
        validate(self)?;
        let limit = self
            .limit
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(DEFAULT_LIMIT);
        let after = match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(raw) => Some(
                decode_cursor(raw)
                    .and_then(|s| s.parse::<C>().ok())
                    .ok_or_else(|| {
                        ApiError::validation(vec![FieldError::new(
                            "cursor",
                            "is not a cursor this API gave out",
                        )])
                    })?,
            ),
        };
        Ok(PageRequest { limit, after })
    }
}

/// Makes an opaque cursor of a position.
pub fn encode_cursor(position: &str) -> String {
    position
        .bytes()
        .map(|b| format!("{:02x}", b ^ 0x5a))
        .collect()
}

fn decode_cursor(raw: &str) -> Option<String> {
    if !raw.len().is_multiple_of(2) || raw.len() > 512 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..raw.len())
        .step_by(2)
        .map(|i| {
            raw.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .map(|b| b ^ 0x5a)
        })
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Body {
        #[allow(dead_code)]
        name: String,
        #[allow(dead_code)]
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Inner {
        #[allow(dead_code)]
        count: u32,
    }

    #[test]
    fn json_errors_name_the_field() {
        let err = parse_json::<Body>(b"{").expect_err("syntax");
        assert_eq!(err.code(), "MALFORMED_JSON");
        let err = parse_json::<Body>(b"{}").expect_err("missing");
        assert_eq!(err.code(), "VALIDATION_FAILED");
        let err = parse_json::<Body>(br#"{"name": 3}"#).expect_err("type");
        assert_eq!(err.code(), "VALIDATION_FAILED");
        let err =
            parse_json::<Body>(br#"{"name": "x", "inner": {"count": -1}}"#).expect_err("nested");
        assert_eq!(err.code(), "VALIDATION_FAILED");
        assert!(parse_json::<Body>(br#"{"name": "x"}"#).is_ok());
        let err = parse_json::<Body>(br#"["x", null]"#).expect_err("array");
        assert_eq!(err.code(), "VALIDATION_FAILED");
    }

    fn body_fields(json: &str) -> Vec<String> {
        let value: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
        let mut out = Vec::new();
        find_control_characters(&value, &mut String::new(), &mut out);
        out.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn body_strings_with_control_characters_are_named() {
        // (body, fields named)
        let table: &[(&str, &[&str])] = &[
            (
                r#"{"name": "ok", "description": "two\nlines\r\n\tand a tab"}"#,
                &[],
            ),
            (r#"{"name": "Café 🚀 日本", "note": "\u200b\u202e"}"#, &[]),
            (r#"{"name": "nul\u0000"}"#, &["name"]),
            (r#"{"name": "bell\u0007"}"#, &["name"]),
            (r#"{"name": "esc\u001b[31m"}"#, &["name"]),
            (r#"{"name": "del\u007f"}"#, &["name"]),
            (r#"{"name": "nel\u0085"}"#, &["name"]),
            (r#"{"name": "csi\u009b"}"#, &["name"]),
            (
                r#"{"theme": {"fontFamily": "x\u0000"}}"#,
                &["theme.fontFamily"],
            ),
            (r#"{"audiences": ["ok", "b\u0000d"]}"#, &["audiences[1]"]),
            (r#"{"a": [{"b": ["\u0001"]}]}"#, &["a[0].b[0]"]),
            (r#"{"traits": {"em\u0000ail": "x"}}"#, &["traits.em\\0ail"]),
            (r#"{"x": "\u0000", "y": "\u0007"}"#, &["x", "y"]),
            (r#"{"n": 1, "b": true, "z": null}"#, &[]),
        ];
        for (body, fields) in table {
            assert_eq!(body_fields(body), *fields, "{body}");
        }
        let many: Vec<String> = (0..50).map(|_| "\\u0000".to_string()).collect();
        let body = format!(r#"{{"list": ["{}"]}}"#, many.join(r#"",""#));
        assert_eq!(body_fields(&body).len(), CONTROL_ERRORS_MAX);
    }

    #[test]
    fn json_with_control_characters_is_refused_before_its_shape() {
        let err = parse_json::<Body>(br#"{"name": "a\u0000"}"#).expect_err("NUL");
        assert_eq!(err.code(), "VALIDATION_FAILED");
        // Refused even where the type would have failed too.
        let err = parse_json::<Body>(br#"{"name": "x", "extra": "\u0007"}"#).expect_err("BEL");
        assert_eq!(err.code(), "VALIDATION_FAILED");
        assert!(parse_json::<Body>(br#"{"name": "a\nb\tc"}"#).is_ok());
    }

    #[test]
    fn query_parameters_with_control_characters_are_named() {
        // (query, parameters named)
        let table: &[(&str, &[&str])] = &[
            ("audience=Admins&kind=FLOW", &[]),
            ("audience=Caf%C3%A9+%F0%9F%9A%80", &[]),
            ("audience=%E2%80%AE", &[]), // bidi override: the domain's rule
            ("audience=%00", &["audience"]),
            ("audience=a%07b", &["audience"]),
            ("kind=%1B", &["kind"]),
            ("audience=a%0Ab", &["audience"]),
            ("audience=a%09", &["audience"]),
            ("audience=%0D", &["audience"]),
            ("audience=%C2%85", &["audience"]),
            ("audience=%7F", &["audience"]),
            ("kind=%00&status=%00", &["kind", "status"]),
            ("ki%00nd=FLOW", &["ki\\0nd"]),
        ];
        for (query, fields) in table {
            let named: Vec<String> = query_control_characters(query)
                .into_iter()
                .map(|e| e.field)
                .collect();
            assert_eq!(named, *fields, "{query}");
        }
        let err = read_query::<Paging>("cursor=%00").expect_err("NUL");
        assert_eq!(err.code(), "VALIDATION_FAILED");
        let err = read_query::<Paging>("limit=ten").expect_err("not a number");
        assert_eq!(err.code(), "MALFORMED_QUERY");
        let err = read_query::<Paging>("limit=1&limit=2").expect_err("twice");
        assert_eq!(err.code(), "MALFORMED_QUERY");
        assert_eq!(err.field_names(), ["limit"]);
        assert!(read_query::<Paging>("limit=10").is_ok());
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = uuid::Uuid::now_v7().to_string();
        let paging = Paging {
            limit: Some(100),
            cursor: Some(encode_cursor(&id)),
        };
        let page = paging.page_request::<uuid::Uuid>().expect("valid");
        assert_eq!(page.after.map(|u| u.to_string()), Some(id));
        for bad in ["zz", "abc", "00"] {
            let paging = Paging {
                limit: None,
                cursor: Some(bad.into()),
            };
            assert!(paging.page_request::<uuid::Uuid>().is_err(), "{bad}");
        }
        for limit in [0, 101, -5] {
            let paging = Paging {
                limit: Some(limit),
                cursor: None,
            };
            assert!(paging.page_request::<uuid::Uuid>().is_err(), "{limit}");
        }
        assert_eq!(
            Paging::default()
                .page_request::<uuid::Uuid>()
                .expect("ok")
                .limit,
            25
        );
    }
}
