//! The Conversations tab: `/api/v1/sites/{siteId}/conversations`.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::web::{self, Bytes, Json};
use actix_web::HttpResponse;
use chatdesk_domain::conversation::{
    ConversationCursor, ConversationFilter, ConversationHead, DateWindow, FeedbackKind,
    TimelineEntry,
};
use chatdesk_domain::error::Entity;
use chatdesk_domain::ids::{MessageId, SessionId, SiteId};
use chatdesk_domain::services::{ConversationService, TIMELINE_CHUNK};
use chatdesk_domain::FieldError;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::dto::sdk::MessageView;
use crate::dto::{ConversationDetail, ConversationItem, ConversationList};
use crate::error::{ApiError, Problem};
use crate::extract::{path_id, Dashboard, Paging, QueryParams};
use crate::routes::next_cursor;
use crate::routes::sites::site_id;

/// The Conversations list's filters and paging. Every filter is optional;
/// those given must all hold.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ConversationQueryParams {
    /// Sessions last active at or after this instant (RFC 3339, e.g.
    /// `2026-11-25T10:00:00Z`; send a `+hh:mm` offset as `%2B`).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<String>,
    /// Sessions started at or before this instant (RFC 3339). With `from`:
    /// the sessions whose [startedAt, lastActiveAt] overlaps the window.
    /// A window ending before it starts matches nothing.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<String>,
    /// `true`: sessions with at least one vote; `false`: with none.
    #[param(value_type = Option<bool>)]
    pub has_feedback: Option<String>,
    /// UP_ONLY (ups and no downs), DOWN_ONLY (downs and no ups), EITHER (at
    /// least one vote) or NEITHER (no votes). With `hasFeedback`, both hold;
    /// a contradictory pair matches nothing.
    #[param(value_type = Option<crate::dto::FeedbackKindSchema>)]
    pub feedback: Option<String>,
    /// `true`: sessions a support ticket was opened from; `false`: the others.
    #[param(value_type = Option<bool>)]
    pub escalated: Option<String>,
    /// Items per page, 1–100 (default 25).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// The `nextCursor` of the previous page (empty: the first page).
    pub cursor: Option<String>,
}

/// Collects the parameters that cannot be read, each named.
#[derive(Default)]
struct Malformed(Vec<FieldError>);

impl Malformed {
    fn read<T>(
        &mut self,
        name: &str,
        raw: Option<&str>,
        parse: impl FnOnce(&str) -> Option<T>,
        expected: &str,
    ) -> Option<T> {
        let raw = raw?;
        let value = parse(raw);
        if value.is_none() {
            self.0.push(FieldError::new(name, expected));
        }
        value
    }

    fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::malformed_query(self.0))
        }
    }
}

fn instant(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn boolean(raw: &str) -> Option<bool> {
    match raw {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

const INSTANT: &str = "must be an RFC 3339 date-time, e.g. 2026-11-25T10:00:00Z";
const BOOLEAN: &str = "must be true or false";

impl ConversationQueryParams {
    /// The filters and the page, or a 400 naming each parameter that cannot
    /// be read (a 422 for a limit out of range or a foreign cursor, as on
    /// every list).
    fn read(self) -> Result<(ConversationFilter, Paging), ApiError> {
        let mut bad = Malformed::default();
        let from = bad.read("from", self.from.as_deref(), instant, INSTANT);
        let to = bad.read("to", self.to.as_deref(), instant, INSTANT);
        let has_feedback = bad.read(
            "hasFeedback",
            self.has_feedback.as_deref(),
            boolean,
            BOOLEAN,
        );
        let feedback = bad.read(
            "feedback",
            self.feedback.as_deref(),
            |f| f.parse::<FeedbackKind>().ok(),
            "must be one of UP_ONLY, DOWN_ONLY, EITHER, NEITHER",
        );
        let escalated = bad.read("escalated", self.escalated.as_deref(), boolean, BOOLEAN);
        let limit = bad.read(
            "limit",
            self.limit.as_deref(),
            |l| l.parse::<i64>().ok(),
            "must be an integer",
        );
        bad.finish()?;
        Ok((
            ConversationFilter {
                window: DateWindow { from, to },
                has_feedback,
                feedback,
                escalated,
            },
            Paging {
                limit,
                cursor: self.cursor,
            },
        ))
    }
}

/// The site's sessions, newest `lastActiveAt` first, filtered.
///
/// Pages follow each other on the key (`lastActiveAt`, `id`): paging
/// never repeats a session and never skips one that keeps its place.
/// Sessions that start while a client pages sort above its cursor, so they
/// are not in the pages that follow; they lead a new first page. A session
/// that becomes active again while a client pages (a new question or vote)
/// moves to the top: if the client had already listed it, it is not listed
/// again; if not, this pass does not reach it either, and a new first page
/// shows it, at the top.
#[utoipa::path(get, path = "/api/v1/sites/{siteId}/conversations", operation_id = "listConversations", tag = "conversations", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id"), ConversationQueryParams),
    responses(
        (status = 200, description = "A page of sessions; an empty page when the filters contradict each other", body = ConversationList),
        (status = 400, description = "`MALFORMED_QUERY`: a parameter's value cannot be read; `errors` names each", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A limit out of range, a cursor this API did not give out, or a control character in a parameter", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    conversations: Dashboard<ConversationService>,
    path: web::Path<String>,
    QueryParams(query): QueryParams<ConversationQueryParams>,
) -> Result<Json<ConversationList>, ApiError> {
    let site = site_id(&path)?;
    let (filter, paging) = query.read()?;
    let page = paging.page_request::<ConversationCursor>()?;
    let page = conversations
        .run(move |c, actor| c.list(actor, site, &filter, &page))
        .await?;
    Ok(Json(ConversationList {
        items: page.items.iter().map(ConversationItem::from).collect(),
        next_cursor: next_cursor(page.next),
    }))
}

fn ids(path: &(String, String)) -> Result<(SiteId, SessionId), ApiError> {
    Ok((site_id(&path.0)?, path_id(&path.1, Entity::Session)?))
}

/// One session: the timeline, the visitor's identity card, the ticket link.
///
/// The body is written as the timeline is read, a chunk of messages at a
/// time, so a long conversation costs the server no more memory than a
/// short one. It holds the messages that existed when the request came.
#[utoipa::path(get, path = "/api/v1/sites/{siteId}/conversations/{sessionId}", operation_id = "getConversation", tag = "conversations", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id"), ("sessionId" = uuid::Uuid, Path, description = "Session id")),
    responses(
        (status = 200, description = "The session's detail", body = ConversationDetail),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session on this site of this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    conversations: Dashboard<ConversationService>,
    service: web::Data<ConversationService>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    detail(conversations, service, &path, false).await
}

/// The session's detail as a download: the same document as
/// `getConversation`, as an attachment named after the session.
#[utoipa::path(get, path = "/api/v1/sites/{siteId}/conversations/{sessionId}/export", operation_id = "exportConversation", tag = "conversations", security(("bearer" = [])),
    params(("siteId" = uuid::Uuid, Path, description = "Site id"), ("sessionId" = uuid::Uuid, Path, description = "Session id")),
    responses(
        (status = 200, description = "The session's detail, whole", body = ConversationDetail,
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"conversation-<sessionId>.json\"`"))),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session on this site of this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn export(
    conversations: Dashboard<ConversationService>,
    service: web::Data<ConversationService>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    detail(conversations, service, &path, true).await
}

/// A session's detail, inline or as an attachment.
async fn detail(
    conversations: Dashboard<ConversationService>,
    service: web::Data<ConversationService>,
    path: &(String, String),
    attachment: bool,
) -> Result<HttpResponse, ApiError> {
    let (site, session) = ids(path)?;
    let (head, first) = open(conversations, site, session).await?;
    let mut response = HttpResponse::Ok();
    response.content_type("application/json");
    if attachment {
        let disposition = format!(
            "attachment; filename=\"conversation-{}.json\"",
            head.session.id
        );
        response.insert_header((header::CONTENT_DISPOSITION, disposition));
    }
    Ok(response.streaming(detail_body(service, head, first)))
}

/// Signs the member in, reads the session's head and its first chunk of
/// messages, in one hop: every error is known before the answer starts.
async fn open(
    conversations: Dashboard<ConversationService>,
    site: SiteId,
    session: SessionId,
) -> Result<(ConversationHead, Vec<TimelineEntry>), ApiError> {
    conversations
        .run(move |c, actor| {
            let head = c.open(actor, site, session)?;
            let first = c.timeline(&head, None)?;
            Ok((head, first))
        })
        .await
}

/// Where the writing of a detail is.
enum Detail {
    /// The head and the first chunk are to be written.
    Start(Vec<TimelineEntry>),
    /// The chunk after this message is to be read.
    After(MessageId),
    /// Written.
    Done,
}

/// The JSON of a detail, written chunk by chunk: the head with `messages`
/// opened, each chunk of messages as it is read (one hop to the blocking
/// pool per chunk; no connection is held while the client reads), then the
/// closing brackets. A failure mid-way ends the body early, so the client
/// sees a truncated document rather than a complete-looking wrong one.
fn detail_body(
    service: web::Data<ConversationService>,
    head: ConversationHead,
    first: Vec<TimelineEntry>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    let head = Arc::new(head);
    futures_util::stream::unfold(Detail::Start(first), move |state| {
        let service = service.clone();
        let head = Arc::clone(&head);
        async move {
            match state {
                Detail::Start(chunk) => {
                    let mut out = match opened_document(&head) {
                        Ok(out) => out,
                        Err(e) => return Some((Err(e), Detail::Done)),
                    };
                    match write_chunk(&mut out, &chunk, true) {
                        Ok(next) => Some((Ok(Bytes::from(out)), next)),
                        Err(e) => Some((Err(e), Detail::Done)),
                    }
                }
                Detail::After(after) => {
                    let read = {
                        let head = Arc::clone(&head);
                        web::block(move || service.timeline(&head, Some(after))).await
                    };
                    match read {
                        Ok(Ok(chunk)) if chunk.is_empty() => {
                            Some((Ok(Bytes::from_static(b"]}")), Detail::Done))
                        }
                        Ok(Ok(chunk)) => {
                            let mut out = Vec::new();
                            match write_chunk(&mut out, &chunk, false) {
                                Ok(next) => Some((Ok(Bytes::from(out)), next)),
                                Err(e) => Some((Err(e), Detail::Done)),
                            }
                        }
                        Ok(Err(e)) => {
                            tracing::error!(session = %head.session.id, error = %e, "conversation body ended early");
                            Some((Err(std::io::Error::other(e.to_string())), Detail::Done))
                        }
                        Err(_) => Some((
                            Err(std::io::Error::other("blocking task was cancelled")),
                            Detail::Done,
                        )),
                    }
                }
                Detail::Done => None,
            }
        }
    })
}

/// The detail's JSON up to and including the `[` that opens `messages`.
fn opened_document(head: &ConversationHead) -> Result<Vec<u8>, std::io::Error> {
    let mut out = serde_json::to_vec(&ConversationDetail::head(head))?;
    // `messages` is the last field and serialised empty: `…"messages":[]}`.
    if !out.ends_with(b"[]}") {
        return Err(std::io::Error::other(
            "the detail does not end with its messages",
        ));
    }
    out.truncate(out.len() - 2);
    Ok(out)
}

/// Writes a chunk's messages (comma-separated, with a leading comma unless
/// it is the first chunk) and says what comes next: another chunk when this
/// one was full, else the end.
fn write_chunk(
    out: &mut Vec<u8>,
    chunk: &[TimelineEntry],
    first: bool,
) -> Result<Detail, std::io::Error> {
    for (i, entry) in chunk.iter().enumerate() {
        if i > 0 || !first {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, &MessageView::from(entry))?;
    }
    Ok(match chunk.last() {
        Some(last) if chunk.len() >= TIMELINE_CHUNK as usize => Detail::After(last.message.id),
        _ => {
            out.extend_from_slice(b"]}");
            Detail::Done
        }
    })
}
