//! The widget Builder: `/api/v1/sites/{siteId}/widget`.

use actix_web::web::{self, Json};
use actix_web::HttpResponse;
use chatdesk_domain::widget::WidgetSettingsInput;
use chatdesk_domain::Chatdesk;

use crate::dto::{SaveWidget, WidgetView};
use crate::error::{ApiError, Problem};
use crate::extract::{run, JsonBody, Member};
use crate::routes::sites::site_id;

/// The site's widget (404 when it has none).
#[utoipa::path(get, path = "/api/v1/sites/{siteId}/widget", operation_id = "getWidget", tag = "widget", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id")),
    responses(
        (status = 200, description = "The widget", body = WidgetView),
        (status = 404, description = "No such site in this tenant, or it has no widget", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    app: web::Data<Chatdesk>,
    Member(actor): Member,
    path: web::Path<String>,
) -> Result<Json<WidgetView>, ApiError> {
    let id = site_id(&path)?;
    let (site, widget) = run(&app, move |app| app.get_widget(&actor, id)).await?;
    Ok(Json(WidgetView::new(&site, &widget)))
}

/// Creates the widget (as a DRAFT) or updates its settings (MANAGER+). The
/// status and `publishedAt` are changed only by publish and pause.
#[utoipa::path(put, path = "/api/v1/sites/{siteId}/widget", operation_id = "saveWidget", tag = "widget", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id")),
    request_body = SaveWidget,
    responses(
        (status = 200, description = "Updated", body = WidgetView),
        (status = 201, description = "Created as a DRAFT", body = WidgetView),
        (status = 403, description = "Role too weak", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn save(
    app: web::Data<Chatdesk>,
    Member(actor): Member,
    path: web::Path<String>,
    JsonBody(body): JsonBody<SaveWidget>,
) -> Result<HttpResponse, ApiError> {
    let id = site_id(&path)?;
    let input = WidgetSettingsInput {
        welcome_message: body.welcome_message,
        disclaimer: body.disclaimer,
        position: body.position,
        support_email: body.support_email,
        persona: body.persona,
        insufficient_credits_message: body.insufficient_credits_message,
        rate_limit_per_session: body.rate_limit_per_session,
    };
    let (site, widget, created) = run(&app, move |app| app.save_widget(&actor, id, &input)).await?;
    let view = WidgetView::new(&site, &widget);
    Ok(if created {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

/// Publishes the widget: ACTIVE, `publishedAt` now (MANAGER+; the site's
/// mapping must be COMPLETED).
#[utoipa::path(post, path = "/api/v1/sites/{siteId}/widget/publish", operation_id = "publishWidget", tag = "widget", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id")),
    responses(
        (status = 200, description = "Published", body = WidgetView),
        (status = 403, description = "Role too weak", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site in this tenant, or it has no widget", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`SITE_NOT_MAPPED`: the site's mapping is not COMPLETED", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn publish(
    app: web::Data<Chatdesk>,
    Member(actor): Member,
    path: web::Path<String>,
) -> Result<Json<WidgetView>, ApiError> {
    let id = site_id(&path)?;
    let (site, widget) = run(&app, move |app| app.publish_widget(&actor, id)).await?;
    Ok(Json(WidgetView::new(&site, &widget)))
}

/// Pauses the widget (MANAGER+; the site's mapping must be COMPLETED).
#[utoipa::path(post, path = "/api/v1/sites/{siteId}/widget/pause", operation_id = "pauseWidget", tag = "widget", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id")),
    responses(
        (status = 200, description = "Paused", body = WidgetView),
        (status = 403, description = "Role too weak", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site in this tenant, or it has no widget", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`SITE_NOT_MAPPED`: the site's mapping is not COMPLETED", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn pause(
    app: web::Data<Chatdesk>,
    Member(actor): Member,
    path: web::Path<String>,
) -> Result<Json<WidgetView>, ApiError> {
    let id = site_id(&path)?;
    let (site, widget) = run(&app, move |app| app.pause_widget(&actor, id)).await?;
    Ok(Json(WidgetView::new(&site, &widget)))
}
