//! The Tickets tab: `/api/v1/sites/{siteId}/tickets`.

use actix_web::http::StatusCode;
use actix_web::web::{self, Json};
use actix_web::HttpResponse;
use chatdesk_domain::error::{Entity, Validator};
use chatdesk_domain::ids::{SiteId, TicketId};
use chatdesk_domain::services::TicketService;
use chatdesk_domain::ticket::{TicketCursor, TicketStatus};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::dto::{PatchTicket, TicketList, TicketView};
use crate::error::{ApiError, Problem};
use crate::etag::{tagged, IfMatch};
use crate::extract::{path_id, Dashboard, JsonBody, Paging, QueryParams};
use crate::routes::next_cursor;
use crate::routes::sites::site_id;

/// The Tickets tab's filter and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketQuery {
    /// Only OPEN, IN_PROGRESS or RESOLVED tickets.
    #[param(value_type = Option<crate::dto::TicketStatusSchema>)]
    pub status: Option<String>,
    /// Items per page, 1–100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `nextCursor` of the previous page (empty: the first page).
    pub cursor: Option<String>,
}

/// The site's tickets, newest first. Tickets opened while a client pages
/// sort above its cursor: paging never repeats or skips one.
#[utoipa::path(get, path = "/api/v1/sites/{siteId}/tickets", operation_id = "listTickets", tag = "tickets", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id"), TicketQuery),
    responses(
        (status = 200, description = "A page of tickets", body = TicketList),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid status, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    tickets: Dashboard<TicketService>,
    path: web::Path<String>,
    QueryParams(query): QueryParams<TicketQuery>,
) -> Result<Json<TicketList>, ApiError> {
    let site = site_id(&path)?;
    let mut v = Validator::new();
    let status = query
        .status
        .as_deref()
        .and_then(|s| v.check("status", s.parse::<TicketStatus>()));
    v.finish()?;
    let page = Paging {
        limit: query.limit,
        cursor: query.cursor,
    }
    .page_request::<TicketCursor>()?;
    let page = tickets
        .run(move |t, actor| t.list(actor, site, status, &page))
        .await?;
    Ok(Json(TicketList {
        items: page.items.iter().map(TicketView::from).collect(),
        next_cursor: next_cursor(page.next),
    }))
}

fn ids(path: &(String, String)) -> Result<(SiteId, TicketId), ApiError> {
    Ok((site_id(&path.0)?, path_id(&path.1, Entity::Ticket)?))
}

/// One ticket, with its email's delivery state.
#[utoipa::path(get, path = "/api/v1/sites/{siteId}/tickets/{ticketId}", operation_id = "getTicket", tag = "tickets", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id"), ("ticketId" = uuid::Uuid, Path, description = "Ticket id")),
    responses(
        (status = 200, description = "The ticket", body = TicketView,
            headers(("ETag" = String, description = "The ticket's entity tag (its status and stamps), for `If-Match`"))),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket on this site of this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    tickets: Dashboard<TicketService>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (site, id) = ids(&path)?;
    let ticket = tickets.run(move |t, actor| t.get(actor, site, id)).await?;
    Ok(tagged(
        StatusCode::OK,
        &ticket.entity_tag(),
        &TicketView::from(&ticket),
    ))
}

/// Sets a ticket's status (any role). Any status may follow any other:
/// RESOLVED stamps `resolvedAt` and `resolvedBy`, leaving it clears them,
/// and setting the status the ticket has changes nothing. The visitor is
/// not emailed.
#[utoipa::path(patch, path = "/api/v1/sites/{siteId}/tickets/{ticketId}", operation_id = "updateTicket", tag = "tickets", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id"), ("ticketId" = uuid::Uuid, Path, description = "Ticket id"),
        ("If-Match" = Option<String>, Header, description = "An entity tag from the ticket's `ETag`: the change is made only if the ticket is still in that state (else 412). `*` or absent: no condition.")),
    request_body = PatchTicket,
    responses(
        (status = 200, description = "The ticket", body = TicketView,
            headers(("ETag" = String, description = "The ticket's new entity tag"))),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket on this site of this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`PRECONDITION_FAILED`: the ticket changed since the `If-Match` tag was read; nothing was changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid status", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn patch(
    tickets: Dashboard<TicketService>,
    path: web::Path<(String, String)>,
    IfMatch(precondition): IfMatch,
    JsonBody(body): JsonBody<PatchTicket>,
) -> Result<HttpResponse, ApiError> {
    let (site, id) = ids(&path)?;
    let ticket = tickets
        .run(move |t, actor| t.set_status(actor, site, id, &body.status, &precondition))
        .await?;
    Ok(tagged(
        StatusCode::OK,
        &ticket.entity_tag(),
        &TicketView::from(&ticket),
    ))
}
