//! The widget SDK API under `/api/v1/sdk/chat`, authenticated by the
//! site's API key (`X-Chatdesk-Site-Key`) and, after a session is opened,
//! its token (`X-Chatdesk-Session`).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use chatdesk_domain::error::Entity;
use chatdesk_domain::ids::{MessageId, SessionId};
use chatdesk_domain::ticket::TicketRequest;
use chatdesk_domain::visitor::VisitorInput;
use serde_json::Value;

use crate::dto::sdk::{
    AskBody, AskedView, ConfigView, FeedbackBody, FeedbackView, MessagePage, MessageView,
    OpenSessionBody, OpenTicketBody, SessionView, VisitorTicketView,
};
use crate::error::{ApiError, Problem};
use crate::extract::{
    answer_response, json_answer, path_id, Idempotent, JsonBody, Paging, QueryParams,
};
use crate::routes::next_cursor;
use crate::sdk::Sdk;

/// Whether the chat may open on the site, and how the widget looks. Served
/// from memory once the key's site is cached; dashboard changes show at
/// once on the replica that made them, and within about a second
/// elsewhere; changes made with the CLI within 10 s.
#[utoipa::path(get, path = "/api/v1/sdk/chat/config", operation_id = "getChatConfig", tag = "sdk", security(("siteKey" = [])),
    params(("Origin" = Option<String>, Header, description = "Sent by browsers: must be the site's domain (or a subdomain when the site allows them)")),
    responses(
        (status = 200, description = "`{enabled: true, widget}` when the chat may open, else `{enabled: false, reason}`", body = ConfigView),
        (status = 403, description = "`ORIGIN_NOT_ALLOWED`: the page is not on the site's domain", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn config(sdk: Sdk) -> Result<HttpResponse, ApiError> {
    let gate = sdk.gate().await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        ))
        .body(gate.config_body.clone()))
}

/// Opens the visitor's session with the widget, or resumes the current one
/// (a session idle for 30 minutes has ended; concurrent calls for one
/// visitor get the same session). Each call issues a new session token.
#[utoipa::path(post, path = "/api/v1/sdk/chat/sessions", operation_id = "openChatSession", tag = "sdk", security(("siteKey" = [])),
    request_body = OpenSessionBody,
    responses(
        (status = 201, description = "A new session", body = SessionView),
        (status = 200, description = "The visitor's current session", body = SessionView),
        (status = 401, description = "Unknown site key, or `IDENTITY_NOT_VERIFIED`: an `externalId` without the right `userHash` on a site that verifies identities", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The gate is closed (`code` is the reason) or `ORIGIN_NOT_ALLOWED`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`IDENTITY_CONFLICT`: this anonymousId belongs to a visitor identified as someone else (another `externalId`, or none after signing out); the widget starts over with a new anonymousId", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn open_session(
    sdk: Sdk,
    JsonBody(body): JsonBody<OpenSessionBody>,
) -> Result<HttpResponse, ApiError> {
    let input = VisitorInput {
        anonymous_id: body.anonymous_id,
        external_id: body.external_id,
        traits: body.traits.map(Value::Object),
        user_hash: body.user_hash,
    };
    let (opened, widget) = sdk
        .run(move |call| {
            let opened = call.service.open_session(call.gate, call.key, &input)?;
            let widget = call.gate.require_open()?.settings.clone();
            Ok((opened, widget))
        })
        .await?;
    let status = if opened.value.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(SessionView {
        session_id: opened.value.session.id.as_uuid(),
        session_token: opened.secret,
        welcome_message: widget.welcome_message,
        disclaimer: widget.disclaimer,
    }))
}

fn session_id(raw: &str) -> Result<SessionId, ApiError> {
    path_id(raw, Entity::Session)
}

/// The session's messages, oldest first, with the visitor's votes.
#[utoipa::path(get, path = "/api/v1/sdk/chat/sessions/{sessionId}/messages", operation_id = "listChatMessages", tag = "sdk", security(("siteKey" = [])),
    params(("sessionId" = uuid::Uuid, Path, description = "Session id"),
        ("X-Chatdesk-Session" = String, Header, description = "The session's token"),
        Paging),
    responses(
        (status = 200, description = "A page of messages", body = MessagePage),
        (status = 401, description = "Unknown site key, or `SESSION_TOKEN_REQUIRED`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`ORIGIN_NOT_ALLOWED`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session for this token and site", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_messages(
    sdk: Sdk,
    path: web::Path<String>,
    QueryParams(query): QueryParams<Paging>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let page = query.page_request::<MessageId>()?;
    let page = sdk
        .run(move |call| {
            call.service
                .messages(call.key, call.session_token, id, &page)
        })
        .await?;
    Ok(HttpResponse::Ok().json(MessagePage {
        items: page.items.iter().map(MessageView::from).collect(),
        next_cursor: next_cursor(page.next),
    }))
}

/// Asks a question. A published Flow or Tooltip whose name is in the
/// question is the answer; else the best-ranked item, if any is relevant;
/// else, with a model configured, a new Flow is drafted for this visitor
/// (spending one credit); without one, a SYSTEM notice says so.
#[utoipa::path(post, path = "/api/v1/sdk/chat/sessions/{sessionId}/messages", operation_id = "askChatQuestion", tag = "sdk", security(("siteKey" = [])),
    params(("sessionId" = uuid::Uuid, Path, description = "Session id"),
        ("X-Chatdesk-Session" = String, Header, description = "The session's token")),
    request_body = AskBody,
    responses(
        (status = 201, description = "The question and its reply", body = AskedView),
        (status = 401, description = "Unknown site key, or `SESSION_TOKEN_REQUIRED`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The gate is closed (`code` is the reason) or `ORIGIN_NOT_ALLOWED`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session for this token and site, or it has ended (after 30 minutes without a question or vote, or 4 hours after it started): open a new one", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`RATE_LIMITED`: the session asked the widget's limit of questions; `Retry-After` says when a new session may start", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until the session idles out"))),
    ))]
pub async fn ask(
    sdk: Sdk,
    path: web::Path<String>,
    JsonBody(body): JsonBody<AskBody>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let answered = sdk
        .run(move |call| {
            call.service
                .ask(call.gate, call.key, call.session_token, id, &body.content)
        })
        .await?;
    Ok(HttpResponse::Created().json(AskedView {
        user_message: MessageView::new(&answered.question, None),
        assistant_message: MessageView::new(&answered.reply, None),
    }))
}

/// Votes on an assistant message of the session (voting again replaces the
/// vote).
#[utoipa::path(put, path = "/api/v1/sdk/chat/messages/{messageId}/feedback", operation_id = "voteOnChatMessage", tag = "sdk", security(("siteKey" = [])),
    params(("messageId" = uuid::Uuid, Path, description = "Message id"),
        ("X-Chatdesk-Session" = String, Header, description = "The token of the message's session")),
    request_body = FeedbackBody,
    responses(
        (status = 200, description = "The vote and the follow-up choices", body = FeedbackView),
        (status = 401, description = "Unknown site key, or `SESSION_TOKEN_REQUIRED`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`ORIGIN_NOT_ALLOWED`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such message in the token's session", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid vote, or `NOT_AN_ASSISTANT_MESSAGE`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn vote(
    sdk: Sdk,
    path: web::Path<String>,
    JsonBody(body): JsonBody<FeedbackBody>,
) -> Result<HttpResponse, ApiError> {
    let id: MessageId = path_id(&path, Entity::Message)?;
    let voted = sdk
        .run(move |call| {
            call.service
                .vote(call.key, call.session_token, id, &body.vote)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(FeedbackView {
            vote: voted.vote,
            follow_up: voted.follow_ups.to_vec(),
        }))
}

/// Opens a support ticket from the session, after a thumbs-down in it. The
/// ticket is stored with a snapshot of the conversation, the session is
/// marked escalated, and the email to the site's team is queued in the
/// same transaction; it is sent by the delivery worker, not in this
/// request, with the visitor's address as Reply-To.
#[utoipa::path(post, path = "/api/v1/sdk/chat/sessions/{sessionId}/tickets", operation_id = "openSupportTicket", tag = "sdk", security(("siteKey" = [])),
    params(("sessionId" = uuid::Uuid, Path, description = "Session id"),
        ("X-Chatdesk-Session" = String, Header, description = "The session's token"), ("Idempotency-Key" = Option<String>, Header, description = "A key for this request (1–255 visible ASCII characters, e.g. a UUID), kept for 24 hours per sender: a retry with the same key and body gets the first answer again, marked `Idempotency-Replayed: true`, and makes nothing; the same key with another request is a 422 naming the header")),
    request_body = OpenTicketBody,
    responses(
        (status = 201, description = "The ticket", body = VisitorTicketView, headers(("Idempotency-Replayed" = String, description = "`true` when this is the first answer to the key, given again"))),
        (status = 401, description = "Unknown site key, or `SESSION_TOKEN_REQUIRED`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The gate is closed (`code` is the reason) or `ORIGIN_NOT_ALLOWED`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session for this token and site", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`NO_DOWNVOTE`: the session has no DOWN vote; or `IDEMPOTENCY_KEY_IN_USE`: a request with this Idempotency-Key is not answered yet, retry in a moment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field, or no `email` given and none in the visitor's traits", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn open_ticket(
    sdk: Sdk,
    path: web::Path<String>,
    idempotent: Idempotent,
    JsonBody(body): JsonBody<OpenTicketBody>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let request = TicketRequest {
        email: body.email,
        subject: body.subject,
        body: body.body,
    };
    let idempotent = idempotent.runner();
    let answer = sdk
        .run(move |call| {
            // Only the session's own visitor may get its earlier answer
            // again: the key is checked in the session's scope after it.
            call.service
                .authorize_session(call.key, call.session_token, id)?;
            idempotent.run(
                &format!("session:{id}"),
                || {
                    call.service
                        .open_ticket(call.gate, call.key, call.session_token, id, &request)
                },
                |ticket| json_answer(StatusCode::CREATED, &VisitorTicketView::from(ticket)),
            )
        })
        .await?;
    Ok(answer_response(answer))
}
