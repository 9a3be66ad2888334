//! The OpenAPI 3.1 document, generated from the handlers and DTOs.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
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

/// chatdesk's HTTP API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "chatdesk",
        description = "The dashboard and widget API of chatdesk. Errors are application/problem+json with a stable `code`. Lists take `limit` (1–100, default 25) and `cursor`, and answer `{items, nextCursor}`. Another tenant's ids are always 404.",
    ),
    modifiers(&BearerAuth),
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
