//! `GET /api/v1/me`.

use actix_web::web::Json;
use chatdesk_domain::services::TenancyService;

use crate::dto::{Me, MemberView, TenantView};
use crate::error::ApiError;
use crate::extract::Dashboard;

/// The signed-in member, its role and its tenant.
#[utoipa::path(get, path = "/api/v1/me", operation_id = "getMe", tag = "members", security(("bearer" = [])),
    responses(
        (status = 200, description = "The signed-in member", body = Me),
        (status = 401, description = "Missing or invalid token", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn me(tenancy: Dashboard<TenancyService>) -> Result<Json<Me>, ApiError> {
    let actor = tenancy.run(|_, actor| Ok(actor.clone())).await?;
    Ok(Json(Me {
        member: MemberView::from(&actor.member),
        tenant: TenantView::from(&actor.tenant),
    }))
}
