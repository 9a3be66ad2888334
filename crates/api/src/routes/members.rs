//! Members and roles: `/api/v1/members`.

use actix_web::http::StatusCode;
use actix_web::web::{self, Json};
use actix_web::HttpResponse;
use chatdesk_domain::error::Entity;
use chatdesk_domain::ids::MemberId;
use chatdesk_domain::services::TenancyService;

use crate::dto::{AddMember, AddedMember, MemberList, MemberView};
use crate::error::{ApiError, Problem};
use crate::extract::{
    answer_response, json_answer, path_id, Dashboard, Idempotent, JsonBody, Paging, QueryParams,
};
use crate::routes::next_cursor;

/// The tenant's members, oldest first.
#[utoipa::path(get, path = "/api/v1/members", operation_id = "listMembers", tag = "members", security(("bearer" = [])),
    params(Paging),
    responses(
        (status = 200, description = "A page of members", body = MemberList),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    members: Dashboard<TenancyService>,
    QueryParams(paging): QueryParams<Paging>,
) -> Result<Json<MemberList>, ApiError> {
    let page = paging.page_request::<MemberId>()?;
    let page = members
        .run(move |m, actor| m.list_members(actor, &page))
        .await?;
    Ok(Json(MemberList {
        items: page.items.iter().map(MemberView::from).collect(),
        next_cursor: next_cursor(page.next),
    }))
}

/// Adds a member (ADMIN+; only an OWNER may grant OWNER). The answer
/// carries the member's token, shown this once.
#[utoipa::path(post, path = "/api/v1/members", operation_id = "addMember", tag = "members", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A key for this request (1–255 visible ASCII characters, e.g. a UUID), kept for 24 hours per sender: a retry with the same key and body gets the first answer again, marked `Idempotency-Replayed: true`, and makes nothing; the same key with another request is a 422 naming the header")),
    request_body = AddMember,
    responses(
        (status = 201, description = "The member and its token", body = AddedMember, headers(("Idempotency-Replayed" = String, description = "`true` when this is the first answer to the key, given again"))),
        (status = 403, description = "Role too weak", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`MEMBER_EXISTS`: the email is already a member; or `IDEMPOTENCY_KEY_IN_USE`: a request with this Idempotency-Key is not answered yet, retry in a moment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid email or role", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn add(
    members: Dashboard<TenancyService>,
    idempotent: Idempotent,
    JsonBody(body): JsonBody<AddMember>,
) -> Result<HttpResponse, ApiError> {
    let idempotent = idempotent.runner();
    let answer = members
        .run(move |m, actor| {
            idempotent.run(
                &actor.idempotency_scope(),
                || m.add_member(actor, &body.email, &body.role),
                |added| {
                    json_answer(
                        StatusCode::CREATED,
                        &AddedMember {
                            member: MemberView::from(&added.value),
                            token: added.secret.clone(),
                        },
                    )
                },
            )
        })
        .await?;
    Ok(answer_response(answer))
}

/// Removes a member (ADMIN+, not someone of a stronger role, never the
/// last OWNER).
#[utoipa::path(delete, path = "/api/v1/members/{memberId}", operation_id = "removeMember", tag = "members", security(("bearer" = [])),
    params(("memberId" = uuid::Uuid, Path, description = "Member id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Role too weak", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such member in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`LAST_OWNER`: the tenant would have no owner", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove(
    members: Dashboard<TenancyService>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: MemberId = path_id(&path, Entity::Member)?;
    members
        .run(move |m, actor| m.remove_member(actor, id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
