//! problem+json errors. Every error the API returns is one [`ApiError`];
//! domain errors are mapped here, and only here, to an HTTP status.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use chatdesk_domain::{Error, ErrorKind, FieldError};
use serde::Serialize;
use utoipa::ToSchema;

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_UNAVAILABLE_SECS: u32 = 2;

/// One invalid field.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemField {
    /// The field, as named in the request (dotted and indexed for nested values).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub type_: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
    /// Stable, machine-readable code, e.g. `PLAN_LIMIT`.
    pub code: String,
    /// The invalid fields (422), or the query parameters that could not be
    /// read (400 `MALFORMED_QUERY`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ProblemField>>,
}

fn problem_fields(errors: Vec<FieldError>) -> Vec<ProblemField> {
    errors
        .into_iter()
        .map(|e| ProblemField {
            field: e.field,
            message: e.message,
        })
        .collect()
}

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    errors: Option<Vec<ProblemField>>,
    /// Seconds for `Retry-After` (429; a 503 always carries
    /// [`RETRY_AFTER_UNAVAILABLE_SECS`]).
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a status, code and detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            errors: None,
            retry_after: None,
        }
    }

    /// 400: the body or query could not be read.
    pub fn malformed(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 400 `MALFORMED_QUERY` naming each query parameter whose value
    /// could not be read.
    pub fn malformed_query(errors: Vec<FieldError>) -> Self {
        ApiError {
            errors: Some(problem_fields(errors)),
            ..Self::malformed(
                "MALFORMED_QUERY",
                "The query has parameters that cannot be read.",
            )
        }
    }

    /// 422 with field errors.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "VALIDATION_FAILED",
            detail: "The request has invalid fields.".into(),
            errors: Some(problem_fields(errors)),
            retry_after: None,
        }
    }

    /// 404 for a route or resource that does not exist.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", detail)
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The fields or parameters the error names.
    pub fn field_names(&self) -> Vec<&str> {
        self.errors
            .iter()
            .flatten()
            .map(|e| e.field.as_str())
            .collect()
    }

    fn problem(&self) -> Problem {
        Problem {
            type_: format!(
                "https://chatdesk.dev/problems/{}",
                self.code.to_ascii_lowercase().replace('_', "-")
            ),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_string(),
            errors: self.errors.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((
                header::RETRY_AFTER,
                RETRY_AFTER_UNAVAILABLE_SECS.to_string(),
            ));
        }
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(self.problem())
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let status = match err.kind() {
            ErrorKind::Validation => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        match err {
            Error::Validation(errors) => ApiError::validation(errors),
            Error::RateLimited {
                retry_after_secs, ..
            } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(status, err.code(), sentence(&err.to_string()))
            },
            Error::NotAnAssistantMessage => ApiError {
                errors: Some(vec![ProblemField {
                    field: "messageId".into(),
                    message: "is not an assistant message".into(),
                }]),
                ..ApiError::new(status, err.code(), sentence(&err.to_string()))
            },
            Error::Internal(cause) => {
                // The cause is for operators, not clients.
                tracing::error!(%cause, "internal error");
                ApiError::new(status, "INTERNAL", "Something went wrong on our side.")
            }
            other => ApiError::new(status, other.code(), sentence(&other.to_string())),
        }
    }
}

/// Capitalises and ends a message with a full stop.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatdesk_domain::Entity;

    #[test]
    fn domain_errors_map_to_statuses_and_codes() {
        let table = [
            (Error::invalid("name", "bad"), 422, "VALIDATION_FAILED"),
            (Error::MissingCredentials, 401, "MISSING_CREDENTIALS"),
            (Error::InvalidCredentials, 401, "INVALID_CREDENTIALS"),
            (
                Error::RoleTooWeak {
                    needed: chatdesk_domain::tenant::Role::Admin,
                },
                403,
                "ROLE_TOO_WEAK",
            ),
            (Error::NotFound(Entity::Site), 404, "NOT_FOUND"),
            (
                Error::PlanLimit {
                    plan: chatdesk_domain::tenant::Plan::Free,
                    cap: 1,
                },
                409,
                "PLAN_LIMIT",
            ),
            (Error::LastOwner, 409, "LAST_OWNER"),
            (Error::SiteNotMapped, 409, "SITE_NOT_MAPPED"),
            (Error::MemberExists, 409, "MEMBER_EXISTS"),
            (Error::SiteExists, 409, "SITE_EXISTS"),
            (
                Error::PreconditionFailed(Entity::Site),
                412,
                "PRECONDITION_FAILED",
            ),
            (Error::DatabaseUnavailable, 503, "DATABASE_UNAVAILABLE"),
            (Error::Internal("db down".into()), 500, "INTERNAL"),
        ];
        for (err, status, code) in table {
            let api = ApiError::from(err);
            assert_eq!(api.status_code().as_u16(), status, "{code}");
            assert_eq!(api.code(), code);
        }
    }

    #[test]
    fn internal_causes_are_not_shown() {
        let api = ApiError::from(Error::Internal("password=hunter2".into()));
        assert!(!api.problem().detail.contains("hunter2"));
    }

    #[test]
    fn problems_name_their_type() {
        let p = ApiError::from(Error::PlanLimit {
            plan: chatdesk_domain::tenant::Plan::Free,
            cap: 1,
        })
        .problem();
        assert_eq!(p.type_, "https://chatdesk.dev/problems/plan-limit");
        assert_eq!(p.title, "Conflict");
        assert_eq!(p.detail, "The FREE plan allows at most 1 site(s).");
    }
}
