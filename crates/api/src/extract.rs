//! Request extractors: JSON bodies with field-named errors, queries, the
//! dashboard's signed-in member with its service, path ids, and list
//! paging.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;

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

/// The most bytes a dashboard request body may have.
pub const DASHBOARD_BODY_LIMIT: usize = 256 * 1024;

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
/// missing field, a wrong type) a 422 naming the field, an oversized body a
/// 413.
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
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !content_type_ok {
                return Err(ApiError::new(
                    actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UNSUPPORTED_MEDIA_TYPE",
                    "Send the body as application/json.",
                ));
            }
            // The app's `PayloadConfig` holds the body to the limit.
            let bytes = body.await.map_err(body_error)?;
            parse_json(&bytes).map(JsonBody)
        })
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        format!(
            "The body is larger than {} KiB.",
            DASHBOARD_BODY_LIMIT / 1024
        ),
    )
}

fn body_error(err: actix_web::Error) -> ApiError {
    match err.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => too_large(),
        _ => {
            let status = err.as_response_error().status_code();
            if status == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::malformed("MALFORMED_BODY", "The body could not be read.")
            }
        }
    }
}

/// Parses JSON into `T`: syntax errors are 400, shape errors 422 with the
/// path of the offending field.
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

fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

/// A query string: one that cannot be read is a 400 naming the parameter.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for QueryParams<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            parse_query::<T>(req.query_string())
                .map(QueryParams)
                .map_err(|e| {
                    ApiError::malformed("MALFORMED_QUERY", format!("The query is not valid: {e}."))
                }),
        )
    }
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
        web::block(move || {
            let actor = tenancy.authenticate(token.as_deref())?;
            span.record("member_id", tracing::field::display(actor.member.id));
            f(&service, &actor)
        })
        .await
        .map_err(|_| ApiError::from(Error::Internal("blocking task was cancelled".into())))?
        .map_err(ApiError::from)
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
