//! Sites, their API keys, mapping and identity secret: `/api/v1/sites`.

use actix_web::web::{self, Json};
use actix_web::HttpResponse;
use chatdesk_domain::error::Entity;
use chatdesk_domain::ids::SiteId;
use chatdesk_domain::site::{NewSiteInput, SitePatchInput};
use chatdesk_domain::Chatdesk;

use crate::dto::{
    CreateSite, CreatedSite, IssuedIdentitySecret, RegeneratedKey, SetMapping, SiteList, SiteView,
    UpdateSite,
};
use crate::error::{ApiError, Problem};
use crate::extract::{path_id, run, JsonBody, Member, Paging, QueryParams};
use crate::routes::next_cursor;

pub(crate) fn site_id(raw: &str) -> Result<SiteId, ApiError> {
    path_id(raw, Entity::Site)
}

/// The tenant's sites, oldest first.
#[utoipa::path(get, path = "/api/v1/sites", operation_id = "listSites", tag = "sites", security(("bearer" = [])),
    params(Paging),
    responses(
        (status = 200, description = "A page of sites", body = SiteList),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    app: web::Data<Chatdesk>,
    Member(actor): Member,
    QueryParams(paging): QueryParams<Paging>,
) -> Result<Json<SiteList>, ApiError> {
    let page = paging.page_request::<SiteId>()?;
    let page = run(&app, move |app| app.list_sites(&actor, &page)).await?;
    Ok(Json(SiteList {
        items: page.items.iter().map(SiteView::from).collect(),
        next_cursor: next_cursor(page.next),
    }))
}

/// Creates a site (MANAGER+) within the plan's site cap (FREE 1, STARTER 3,
/// PRO 10, ENTERPRISE unlimited). The answer carries the API key, shown
/// this once.
#[utoipa::path(post, path = "/api/v1/sites", operation_id = "createSite", tag = "sites", security(("bearer" = [])),
    request_body = CreateSite,
    responses(
        (status = 201, description = "The site and its API key", body = CreatedSite),
        (status = 403, description = "Role too weak", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`PLAN_LIMIT`: the plan's site cap is reached; `SITE_EXISTS`: the domain is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid domain, name or theme", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    app: web::Data<Chatdesk>,
    Member(actor): Member,
    JsonBody(body): JsonBody<CreateSite>,
) -> Result<HttpResponse, ApiError> {
    let input = NewSiteInput {
        domain: body.domain,
        name: body.name,
        allow_subdomains: body.allow_subdomains,
        theme: body.theme.map(Into::into),
    };
    let created = run(&app, move |app| app.create_site(&actor, &input)).await?;
    Ok(HttpResponse::Created().json(CreatedSite {
        site: SiteView::from(&created.value),
        api_key: created.secret,
    }))
}

/// One site.
#[utoipa::path(get, path = "/api/v1/sites/{siteId}", operation_id = "getSite", tag = "sites", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id")),
    responses(
        (status = 200, description = "The site", body = SiteView),
        (status = 404, description = "No such site in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    app: web::Data<Chatdesk>,
    Member(actor): Member,
    path: web::Path<String>,
) -> Result<Json<SiteView>, ApiError> {
    let id = site_id(&path)?;
    let site = run(&app, move |app| app.get_site(&actor, id)).await?;
    Ok(Json(SiteView::from(&site)))
}

/// Edits a site's domain, name, subdomain rule or theme (MANAGER+).
#[utoipa::path(patch, path = "/api/v1/sites/{siteId}", operation_id = "updateSite", tag = "sites", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id")),
    request_body = UpdateSite,
    responses(
        (status = 200, description = "The edited site", body = SiteView),
        (status = 403, description = "Role too weak", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`SITE_EXISTS`: the domain is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update(
    app: web::Data<Chatdesk>,
    Member(actor): Member,
    path: web::Path<String>,
    JsonBody(body): JsonBody<UpdateSite>,
) -> Result<Json<SiteView>, ApiError> {
    let id = site_id(&path)?;
    let patch = SitePatchInput {
        domain: body.domain,
        name: body.name,
        allow_subdomains: body.allow_subdomains,
        theme: body.theme.map(Into::into),
    };
    let site = run(&app, move |app| app.update_site(&actor, id, &patch)).await?;
    Ok(Json(SiteView::from(&site)))
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
    app: web::Data<Chatdesk>,
    Member(actor): Member,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = site_id(&path)?;
    run(&app, move |app| app.delete_site(&actor, id)).await?;
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
    app: web::Data<Chatdesk>,
    Member(actor): Member,
    path: web::Path<String>,
) -> Result<Json<RegeneratedKey>, ApiError> {
    let id = site_id(&path)?;
    let key = run(&app, move |app| app.regenerate_api_key(&actor, id)).await?;
    Ok(Json(RegeneratedKey {
        api_key: key.secret,
        api_key_prefix: key.value.api_key_prefix,
    }))
}

/// Sets the site's mapping status (ADMIN+).
#[utoipa::path(put, path = "/api/v1/sites/{siteId}/mapping", operation_id = "setSiteMapping", tag = "sites", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id")),
    request_body = SetMapping,
    responses(
        (status = 200, description = "The site", body = SiteView),
        (status = 403, description = "Role too weak", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown status", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_mapping(
    app: web::Data<Chatdesk>,
    Member(actor): Member,
    path: web::Path<String>,
    JsonBody(body): JsonBody<SetMapping>,
) -> Result<Json<SiteView>, ApiError> {
    let id = site_id(&path)?;
    let site = run(&app, move |app| app.set_mapping(&actor, id, &body.status)).await?;
    Ok(Json(SiteView::from(&site)))
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
    app: web::Data<Chatdesk>,
    Member(actor): Member,
    path: web::Path<String>,
) -> Result<Json<IssuedIdentitySecret>, ApiError> {
    let id = site_id(&path)?;
    let issued = run(&app, move |app| app.issue_identity_secret(&actor, id)).await?;
    Ok(Json(IssuedIdentitySecret {
        identity_secret: issued.secret,
    }))
}
