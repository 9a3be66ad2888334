//! Sites, their API keys, mapping and identity secret: `/api/v1/sites`.

use actix_web::http::StatusCode;
use actix_web::web::{self, Json};
use actix_web::HttpResponse;
use chatdesk_domain::error::Entity;
use chatdesk_domain::ids::SiteId;
use chatdesk_domain::services::SiteService;
use chatdesk_domain::site::{NewSiteInput, Site, SitePatchInput};

use crate::dto::{
    CreateSite, CreatedSite, IssuedIdentitySecret, RegeneratedKey, SetMapping, SiteList, SiteView,
    UpdateSite,
};
use crate::error::{ApiError, Problem};
use crate::etag::{tagged, IfMatch};
use crate::extract::{
    answer_response, json_answer, path_id, Dashboard, Idempotent, JsonBody, Paging, QueryParams,
};
use crate::routes::next_cursor;

pub(crate) fn site_id(raw: &str) -> Result<SiteId, ApiError> {
    path_id(raw, Entity::Site)
}

/// A site with its entity tag.
fn site_response(site: &Site) -> HttpResponse {
    tagged(StatusCode::OK, &site.entity_tag(), &SiteView::from(site))
}

/// The tenant's sites, oldest first.
#[utoipa::path(get, path = "/api/v1/sites", operation_id = "listSites", tag = "sites", security(("bearer" = [])),
    params(Paging),
    responses(
        (status = 200, description = "A page of sites", body = SiteList),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    sites: Dashboard<SiteService>,
    QueryParams(paging): QueryParams<Paging>,
) -> Result<Json<SiteList>, ApiError> {
    let page = paging.page_request::<SiteId>()?;
    let page = sites
        .run(move |s, actor| s.list_sites(actor, &page))
        .await?;
    Ok(Json(SiteList {
        items: page.items.iter().map(SiteView::from).collect(),
        next_cursor: next_cursor(page.next),
    }))
}

/// Creates a site (MANAGER+) within the plan's site cap (FREE 1, STARTER 3,
/// PRO 10, ENTERPRISE unlimited). The answer carries the API key, shown
/// this once.
#[utoipa::path(post, path = "/api/v1/sites", operation_id = "createSite", tag = "sites", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A key for this request (1–255 visible ASCII characters, e.g. a UUID), kept for 24 hours per sender: a retry with the same key and body gets the first answer again, marked `Idempotency-Replayed: true`, and makes nothing; the same key with another request is a 422 naming the header")),
    request_body = CreateSite,
    responses(
        (status = 201, description = "The site and its API key", body = CreatedSite, headers(("Idempotency-Replayed" = String, description = "`true` when this is the first answer to the key, given again"))),
        (status = 403, description = "Role too weak", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`PLAN_LIMIT`: the plan's site cap is reached; `SITE_EXISTS`: the domain is taken; or `IDEMPOTENCY_KEY_IN_USE`: a request with this Idempotency-Key is not answered yet, retry in a moment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid domain, name or theme", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    sites: Dashboard<SiteService>,
    idempotent: Idempotent,
    JsonBody(body): JsonBody<CreateSite>,
) -> Result<HttpResponse, ApiError> {
    let input = NewSiteInput {
        domain: body.domain,
        name: body.name,
        allow_subdomains: body.allow_subdomains,
        theme: body.theme.map(Into::into),
    };
    let idempotent = idempotent.runner();
    let answer = sites
        .run(move |s, actor| {
            idempotent.run(
                &actor.idempotency_scope(),
                || s.create_site(actor, &input),
                |created| {
                    json_answer(
                        StatusCode::CREATED,
                        &CreatedSite {
                            site: SiteView::from(&created.value),
                            api_key: created.secret.clone(),
                        },
                    )
                },
            )
        })
        .await?;
    Ok(answer_response(answer))
}

/// One site.
#[utoipa::path(get, path = "/api/v1/sites/{siteId}", operation_id = "getSite", tag = "sites", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id")),
    responses(
        (status = 200, description = "The site", body = SiteView,
            headers(("ETag" = String, description = "The site's entity tag, for `If-Match`"))),
        (status = 404, description = "No such site in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    sites: Dashboard<SiteService>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = site_id(&path)?;
    let site = sites.run(move |s, actor| s.get_site(actor, id)).await?;
    Ok(site_response(&site))
}

/// Edits a site's domain, name, subdomain rule or theme (MANAGER+).
#[utoipa::path(patch, path = "/api/v1/sites/{siteId}", operation_id = "updateSite", tag = "sites", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id"),
        ("If-Match" = Option<String>, Header, description = "An entity tag from the site's `ETag`: the change is made only if the site is still in that state (else 412). `*` (it exists) or absent: no condition; fields the body does not name are never changed.")),
    request_body = UpdateSite,
    responses(
        (status = 200, description = "The edited site", body = SiteView,
            headers(("ETag" = String, description = "The site's new entity tag"))),
        (status = 412, description = "`PRECONDITION_FAILED`: the site changed since the `If-Match` tag was read; nothing was changed", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role too weak", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`SITE_EXISTS`: the domain is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update(
    sites: Dashboard<SiteService>,
    path: web::Path<String>,
    IfMatch(precondition): IfMatch,
    JsonBody(body): JsonBody<UpdateSite>,
) -> Result<HttpResponse, ApiError> {
    let id = site_id(&path)?;
    let patch = SitePatchInput {
        domain: body.domain,
        name: body.name,
        allow_subdomains: body.allow_subdomains,
        theme: body.theme.map(Into::into),
    };
    let site = sites
        .run(move |s, actor| s.update_site(actor, id, &patch, &precondition))
        .await?;
    Ok(site_response(&site))
}

/// Deletes a site and everything under it (MANAGER+).
#[utoipa::path(delete, path = "/api/v1/sites/{siteId}", operation_id = "deleteSite", tag = "sites", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Role too weak", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    sites: Dashboard<SiteService>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = site_id(&path)?;
    sites.run(move |s, actor| s.delete_site(actor, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Replaces the site's API key (MANAGER+); the old key stops working at once.
#[utoipa::path(post, path = "/api/v1/sites/{siteId}/api-key", operation_id = "regenerateSiteApiKey", tag = "sites", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id")),
    responses(
        (status = 200, description = "The new key, shown this once", body = RegeneratedKey),
        (status = 403, description = "Role too weak", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn regenerate_key(
    sites: Dashboard<SiteService>,
    path: web::Path<String>,
) -> Result<Json<RegeneratedKey>, ApiError> {
    let id = site_id(&path)?;
    let key = sites
        .run(move |s, actor| s.regenerate_api_key(actor, id))
        .await?;
    Ok(Json(RegeneratedKey {
        api_key: key.secret,
        api_key_prefix: key.value.api_key_prefix,
    }))
}

/// Sets the site's mapping status (ADMIN+).
#[utoipa::path(put, path = "/api/v1/sites/{siteId}/mapping", operation_id = "setSiteMapping", tag = "sites", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id"),
        ("If-Match" = Option<String>, Header, description = "An entity tag from the site's `ETag`: the change is made only if the site is still in that state (else 412). `*` (it exists) or absent: no condition; fields the body does not name are never changed.")),
    request_body = SetMapping,
    responses(
        (status = 200, description = "The site", body = SiteView,
            headers(("ETag" = String, description = "The site's new entity tag"))),
        (status = 412, description = "`PRECONDITION_FAILED`: the site changed since the `If-Match` tag was read; nothing was changed", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role too weak", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown status", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_mapping(
    sites: Dashboard<SiteService>,
    path: web::Path<String>,
    IfMatch(precondition): IfMatch,
    JsonBody(body): JsonBody<SetMapping>,
) -> Result<HttpResponse, ApiError> {
    let id = site_id(&path)?;
    let site = sites
        .run(move |s, actor| s.set_mapping(actor, id, &body.status, &precondition))
        .await?;
    Ok(site_response(&site))
}

/// Issues a new identity secret (MANAGER+), shown this once, and turns
/// identity verification on for the site. Issuing again replaces the
/// secret.
#[utoipa::path(post, path = "/api/v1/sites/{siteId}/identity-secret", operation_id = "issueIdentitySecret", tag = "sites", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id")),
    responses(
        (status = 200, description = "The secret, shown this once", body = IssuedIdentitySecret),
        (status = 403, description = "Role too weak", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn identity_secret(
    sites: Dashboard<SiteService>,
    path: web::Path<String>,
) -> Result<Json<IssuedIdentitySecret>, ApiError> {
    let id = site_id(&path)?;
    let issued = sites
        .run(move |s, actor| s.issue_identity_secret(actor, id))
        .await?;
    Ok(Json(IssuedIdentitySecret {
        identity_secret: issued.secret,
    }))
}
