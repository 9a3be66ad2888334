//! The OpenAPI 3.1 document, generated from the handlers and DTOs.

use actix_web::HttpResponse;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::Ref;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::routes::{content, health, me, members, sites, widget};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A member's dashboard token, `cd_pat_…`"))
                    .build(),
            ),
        );
    }
}

/// Documents the problems every operation of a kind can answer, so each
/// handler lists only its own: 401 on authenticated operations, 400 on
/// those that read a body or query, 413 and 415 on those with a body.
struct CommonProblems;

fn add_problem(op: &mut Operation, status: &str, description: &str) {
    if op.responses.responses.contains_key(status) {
        return;
    }
    let response = ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build();
    op.responses
        .responses
        .insert(status.to_string(), response.into());
}

impl Modify for CommonProblems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    add_problem(
                        op,
                        "401",
                        "`MISSING_CREDENTIALS` or `INVALID_CREDENTIALS`: no valid member token",
                    );
                }
                let has_query = op.parameters.as_ref().is_some_and(|params| {
                    params.iter().any(|p| p.parameter_in == ParameterIn::Query)
                });
                if op.request_body.is_some() {
                    add_problem(op, "400", "`MALFORMED_JSON`: the body is not JSON");
                    add_problem(op, "413", "`PAYLOAD_TOO_LARGE`: the body is over 256 KiB");
                    add_problem(
                        op,
                        "408",
                        "`REQUEST_TIMEOUT`: the body did not arrive in time",
                    );
                    add_problem(
                        op,
                        "415",
                        "`UNSUPPORTED_MEDIA_TYPE`: the body is not application/json",
                    );
                } else if has_query {
                    add_problem(op, "400", "`MALFORMED_QUERY`: the query cannot be read");
                }
                if op.request_body.is_some() || has_query {
                    add_problem(
                        op,
                        "422",
                        "`VALIDATION_FAILED`: the fields named in `errors` are invalid",
                    );
                }
            }
        }
    }
}

/// chatdesk's HTTP API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "chatdesk",
        description = "The dashboard and widget API of chatdesk. Errors are application/problem+json with a stable `code`. Lists take `limit` (1–100, default 25) and `cursor`, and answer `{items, nextCursor}`. Another tenant's ids are always 404.",
    ),
    modifiers(&BearerAuth, &CommonProblems),
    paths(
        health::healthz,
        health::readyz,
        me::me,
        members::list,
        members::add,
        members::remove,
        sites::list,
        sites::create,
        sites::get,
        sites::update,
        sites::delete,
        sites::regenerate_key,
        sites::set_mapping,
        sites::identity_secret,
        widget::get,
        widget::save,
        widget::publish,
        widget::pause,
        content::list,
        content::create,
        content::get,
        content::patch,
        openapi_json,
    ),
    tags(
        (name = "operations", description = "Probes and the API document"),
        (name = "members", description = "The signed-in member and the team"),
        (name = "sites", description = "Sites, API keys, mapping, identity verification"),
        (name = "widget", description = "The chat widget Builder"),
        (name = "content", description = "Flows and Tooltips"),
    )
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
