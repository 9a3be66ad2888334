//! The widget Builder: `/api/v1/sites/{siteId}/widget`.

use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::HttpResponse;
use chatdesk_domain::ports::SiteWidget;
use chatdesk_domain::services::WidgetService;
use chatdesk_domain::widget::{NamedSettings, WidgetSettingsInput};

use crate::dto::{SaveWidget, WidgetView};
use crate::error::{ApiError, Problem};
use crate::etag::{tagged, IfMatch};
use crate::extract::{Dashboard, JsonBody};
use crate::routes::sites::site_id;

/// The widget (with its site's theme) and its entity tag.
fn widget_response(status: StatusCode, sw: &SiteWidget) -> HttpResponse {
    tagged(
        status,
        &sw.widget.entity_tag(&sw.site),
        &WidgetView::new(&sw.site, &sw.widget),
    )
}

/// The site's widget (404 when it has none).
#[utoipa::path(get, path = "/api/v1/sites/{siteId}/widget", operation_id = "getWidget", tag = "widget", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id")),
    responses(
        (status = 200, description = "The widget", body = WidgetView,
            headers(("ETag" = String, description = "The widget's entity tag (it changes when the widget or its site's theme changes), for `If-Match`"))),
        (status = 404, description = "No such site in this tenant, or it has no widget", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    widgets: Dashboard<WidgetService>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = site_id(&path)?;
    let sw = widgets.run(move |w, actor| w.get_widget(actor, id)).await?;
    Ok(widget_response(StatusCode::OK, &sw))
}

/// Creates the widget (as a DRAFT) or updates its settings (MANAGER+). An
/// optional field left out keeps its value; `null` clears it. The status
/// and `publishedAt` are changed only by publish and pause.
#[utoipa::path(put, path = "/api/v1/sites/{siteId}/widget", operation_id = "saveWidget", tag = "widget", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id"),
        ("If-Match" = Option<String>, Header, description = "An entity tag from the widget's `ETag`: the settings are saved only if the widget is still in that state (else 412). `*`: only if the widget exists (a site with no widget yet answers 412 and nothing is made). Absent: no condition. The status is never changed here.")),
    request_body = SaveWidget,
    responses(
        (status = 200, description = "Updated", body = WidgetView,
            headers(("ETag" = String, description = "The widget's new entity tag"))),
        (status = 201, description = "Created as a DRAFT", body = WidgetView,
            headers(("ETag" = String, description = "The widget's entity tag"))),
        (status = 412, description = "`PRECONDITION_FAILED`: the widget changed since the `If-Match` tag was read; nothing was changed", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role too weak", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn save(
    widgets: Dashboard<WidgetService>,
    path: web::Path<String>,
    IfMatch(precondition): IfMatch,
    JsonBody(body): JsonBody<SaveWidget>,
) -> Result<HttpResponse, ApiError> {
    let id = site_id(&path)?;
    let named = NamedSettings {
        disclaimer: body.disclaimer.is_some(),
        support_email: body.support_email.is_some(),
        persona: body.persona.is_some(),
        insufficient_credits_message: body.insufficient_credits_message.is_some(),
        rate_limit_per_session: body.rate_limit_per_session.is_some(),
    };
    let input = WidgetSettingsInput {
        welcome_message: body.welcome_message,
        disclaimer: body.disclaimer.flatten(),
        position: body.position,
        support_email: body.support_email.flatten(),
        persona: body.persona.flatten(),
        insufficient_credits_message: body.insufficient_credits_message.flatten(),
        rate_limit_per_session: body.rate_limit_per_session.flatten(),
        named,
    };
    let (sw, created) = widgets
        .run(move |w, actor| w.save_widget(actor, id, &input, &precondition))
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(widget_response(status, &sw))
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
    widgets: Dashboard<WidgetService>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = site_id(&path)?;
    let sw = widgets
        .run(move |w, actor| w.publish_widget(actor, id))
        .await?;
    Ok(widget_response(StatusCode::OK, &sw))
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
    widgets: Dashboard<WidgetService>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = site_id(&path)?;
    let sw = widgets
        .run(move |w, actor| w.pause_widget(actor, id))
        .await?;
    Ok(widget_response(StatusCode::OK, &sw))
}
