//! The content library: `/api/v1/sites/{siteId}/content`.

use actix_web::http::StatusCode;
use actix_web::web::{self, Json};
use actix_web::HttpResponse;
use chatdesk_domain::content::{
    Audience, ContentFilter, ContentKind, ContentPatchInput, ContentStatus, NewContentInput,
};
use chatdesk_domain::error::{Entity, Validator};
use chatdesk_domain::ids::ContentId;
use chatdesk_domain::services::ContentService;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::dto::{ContentList, ContentView, CreateContent, PatchContent};
use crate::error::{ApiError, Problem};
use crate::etag::{tagged, IfMatch};
use crate::extract::{
    answer_response, json_answer, path_id, Dashboard, Idempotent, JsonBody, Paging, QueryParams,
};
use crate::routes::next_cursor;
use crate::routes::sites::site_id;

/// Filters and paging of the content list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContentQuery {
    /// Only FLOW or TOOLTIP.
    #[param(value_type = Option<crate::dto::ContentKindSchema>)]
    pub kind: Option<String>,
    /// Only DRAFT or PUBLISHED.
    #[param(value_type = Option<crate::dto::ContentStatusSchema>)]
    pub status: Option<String>,
    /// Only items with this audience (e.g. `No users`).
    #[param(min_length = 1, max_length = 50)]
    pub audience: Option<String>,
    /// Items per page, 1–100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `nextCursor` of the previous page (empty: the first page).
    pub cursor: Option<String>,
}

impl ContentQuery {
    fn filter(&self) -> Result<ContentFilter, ApiError> {
        let mut v = Validator::new();
        let kind = self
            .kind
            .as_deref()
            .and_then(|k| v.check("kind", k.parse::<ContentKind>()));
        let status = self
            .status
            .as_deref()
            .and_then(|s| v.check("status", s.parse::<ContentStatus>()));
        let audience = self
            .audience
            .as_deref()
            .and_then(|a| v.check("audience", Audience::parse(a)));
        v.finish()?;
        Ok(ContentFilter {
            kind,
            status,
            audience,
        })
    }
}

/// The site's Flows and Tooltips, oldest first, filtered.
#[utoipa::path(get, path = "/api/v1/sites/{siteId}/content", operation_id = "listContent", tag = "content", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id"), ContentQuery),
    responses(
        (status = 200, description = "A page of items", body = ContentList),
        (status = 404, description = "No such site in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    content: Dashboard<ContentService>,
    path: web::Path<String>,
    QueryParams(query): QueryParams<ContentQuery>,
) -> Result<Json<ContentList>, ApiError> {
    let site = site_id(&path)?;
    let filter = query.filter()?;
    let page = Paging {
        limit: query.limit,
        cursor: query.cursor,
    }
    .page_request::<ContentId>()?;
    let page = content
        .run(move |c, actor| c.list_content(actor, site, &filter, &page))
        .await?;
    Ok(Json(ContentList {
        items: page.items.iter().map(ContentView::from).collect(),
        next_cursor: next_cursor(page.next),
    }))
}

/// Adds a Flow or Tooltip (MANAGER+).
#[utoipa::path(post, path = "/api/v1/sites/{siteId}/content", operation_id = "createContent", tag = "content", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id"), ("Idempotency-Key" = Option<String>, Header, description = "A key for this request (1–255 visible ASCII characters, e.g. a UUID), kept for 24 hours per sender: a retry with the same key and body gets the first answer again, marked `Idempotency-Replayed: true`, and makes nothing; the same key with another request is a 422 naming the header")),
    request_body = CreateContent,
    responses(
        (status = 201, description = "The new item", body = ContentView, headers(("Idempotency-Replayed" = String, description = "`true` when this is the first answer to the key, given again"))),
        (status = 403, description = "Role too weak", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`IDEMPOTENCY_KEY_IN_USE`: a request with this Idempotency-Key is not answered yet; retry in a moment", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    content: Dashboard<ContentService>,
    path: web::Path<String>,
    idempotent: Idempotent,
    JsonBody(body): JsonBody<CreateContent>,
) -> Result<HttpResponse, ApiError> {
    let site = site_id(&path)?;
    let input = NewContentInput {
        kind: body.kind,
        name: body.name,
        description: body.description,
        status: body.status,
        audiences: body.audiences,
    };
    let idempotent = idempotent.runner();
    let answer = content
        .run(move |c, actor| {
            idempotent.run(
                &actor.idempotency_scope(),
                || c.create_content(actor, site, &input),
                |item| json_answer(StatusCode::CREATED, &ContentView::from(item)),
            )
        })
        .await?;
    Ok(answer_response(answer))
}

fn ids(path: &(String, String)) -> Result<(chatdesk_domain::ids::SiteId, ContentId), ApiError> {
    Ok((site_id(&path.0)?, path_id(&path.1, Entity::Content)?))
}

/// One item.
#[utoipa::path(get, path = "/api/v1/sites/{siteId}/content/{contentId}", operation_id = "getContent", tag = "content", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id"), ("contentId" = uuid::Uuid, Path, description = "Content id")),
    responses(
        (status = 200, description = "The item", body = ContentView,
            headers(("ETag" = String, description = "The item's entity tag, for `If-Match`"))),
        (status = 404, description = "No such item on this site of this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    content: Dashboard<ContentService>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (site, id) = ids(&path)?;
    let item = content
        .run(move |c, actor| c.get_content(actor, site, id))
        .await?;
    Ok(tagged(
        StatusCode::OK,
        &item.entity_tag(),
        &ContentView::from(&item),
    ))
}

/// Changes an item's status or audiences (MANAGER+). Removing "No users"
/// from an AI-made Flow re-targets it to everyone.
#[utoipa::path(patch, path = "/api/v1/sites/{siteId}/content/{contentId}", operation_id = "updateContent", tag = "content", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id"), ("contentId" = uuid::Uuid, Path, description = "Content id"),
        ("If-Match" = Option<String>, Header, description = "An entity tag from the item's `ETag`: the change is made only if the item is still in that state (else 412). `*` (it exists) or absent: no condition; fields the body does not name are never changed.")),
    request_body = PatchContent,
    responses(
        (status = 200, description = "The item", body = ContentView,
            headers(("ETag" = String, description = "The item's new entity tag"))),
        (status = 412, description = "`PRECONDITION_FAILED`: the item changed since the `If-Match` tag was read; nothing was changed", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role too weak", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such item on this site of this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn patch(
    content: Dashboard<ContentService>,
    path: web::Path<(String, String)>,
    IfMatch(precondition): IfMatch,
    JsonBody(body): JsonBody<PatchContent>,
) -> Result<HttpResponse, ApiError> {
    let (site, id) = ids(&path)?;
    let input = ContentPatchInput {
        status: body.status,
        audiences: body.audiences,
    };
    let item = content
        .run(move |c, actor| c.patch_content(actor, site, id, &input, &precondition))
        .await?;
    Ok(tagged(
        StatusCode::OK,
        &item.entity_tag(),
        &ContentView::from(&item),
    ))
}
