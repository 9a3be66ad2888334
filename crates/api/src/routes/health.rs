//! Operations probes.

use actix_web::{web, HttpResponse};
use chatdesk_domain::ports::Readiness;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::run;

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations", security(),
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations", security(),
    responses(
        (status = 200, description = "The database answers", body = Health),
        (status = 503, description = "`DATABASE_UNAVAILABLE`: the database does not answer; retry after `Retry-After` seconds", body = crate::error::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    ))]
pub async fn readyz(readiness: web::Data<dyn Readiness>) -> Result<HttpResponse, ApiError> {
    match run(&readiness, |r| r.check()).await {
        Ok(()) => Ok(HttpResponse::Ok().json(Health { status: "ready" })),
        Err(_) => Err(ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "DATABASE_UNAVAILABLE",
            "The database does not answer.",
        )),
    }
}
