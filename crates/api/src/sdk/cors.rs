//! The SDK's CORS policy, separate from the dashboard's: a site's pages
//! may call the SDK from the site's domain (and its subdomains when the
//! site allows them).
//!
//! - A preflight carries no site key, only its `Origin`: it is answered
//!   (204 with the CORS headers) when some site admits the origin's host,
//!   else 403 `ORIGIN_NOT_ALLOWED` with no CORS headers, so the browser
//!   sends nothing. Answers are cached per host ([`super::cache`]).
//! - An actual request is checked against the key's own site by the route
//!   (403 `ORIGIN_NOT_ALLOWED`). Every other answer to a browser call
//!   carries `Access-Control-Allow-Origin` for its origin, so the widget
//!   can read errors such as 429 and their `Retry-After`.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse, ResponseError};
use chatdesk_domain::host::origin_host;
use chatdesk_domain::services::VisitorService;
use chatdesk_domain::Error;

use super::cache::SdkCaches;
use super::{SESSION_HEADER, SITE_KEY_HEADER};
use crate::error::ApiError;
use crate::extract::run;

/// Methods the SDK's routes use.
const ALLOWED_METHODS: &str = "GET, POST, PUT";
/// How long a browser may reuse a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// Whether some site admits a browser on `origin`'s host (cached).
async fn admitted(req: &ServiceRequest, origin: &str) -> Result<bool, ApiError> {
    let Some(host) = origin_host(origin) else {
        return Ok(false);
    };
    let (Some(service), Some(caches)) = (
        req.app_data::<web::Data<VisitorService>>().cloned(),
        req.app_data::<web::Data<SdkCaches>>().cloned(),
    ) else {
        return Err(Error::Internal("app state missing: SDK services".into()).into());
    };
    if let Some(admitted) = caches.origin(&host) {
        return Ok(admitted);
    }
    run(&service, move |service| {
        let epoch = caches.epoch();
        let admitted = service.admits_origin_host(&host)?;
        caches.store_origin(host, admitted, epoch);
        Ok(admitted)
    })
    .await
}

fn origin_not_allowed() -> ApiError {
    Error::OriginNotAllowed.into()
}

/// Adds the headers that let the page at `origin` read the answer.
fn allow(response: &mut HttpResponse<BoxBody>, origin: &HeaderValue) {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Retry-After, X-Request-Id, Idempotency-Replayed"),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// The middleware of the SDK scope.
pub async fn sdk_cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let response = match admitted(&req, origin.to_str().unwrap_or("")).await {
            Ok(true) => {
                let mut response = HttpResponse::NoContent()
                    .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS))
                    .insert_header((
                        header::ACCESS_CONTROL_ALLOW_HEADERS,
                        format!(
                            "content-type, {SITE_KEY_HEADER}, {SESSION_HEADER}, idempotency-key"
                        ),
                    ))
                    .insert_header((header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE))
                    .finish();
                allow(&mut response, &origin);
                response
            }
            Ok(false) => {
                let mut response = origin_not_allowed().error_response();
                response
                    .headers_mut()
                    .append(header::VARY, HeaderValue::from_static("Origin"));
                response
            }
            Err(error) => error.error_response(),
        };
        return Ok(req.into_response(response));
    }
    let res = next.call(req).await?.map_into_boxed_body();
    let refused = res
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
        .is_some_and(|e| e.code() == "ORIGIN_NOT_ALLOWED");
    if refused {
        return Ok(res);
    }
    let (req, mut response) = res.into_parts();
    allow(&mut response, &origin);
    Ok(ServiceResponse::new(req, response))
}
