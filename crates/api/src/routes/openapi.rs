//! The OpenAPI 3.1 document, generated from the handlers and DTOs.

use actix_web::HttpResponse;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::schema::{ObjectBuilder, Ref, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, Required, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    content, conversations, health, me, members, sdk, sites, tickets, widget, widget_script,
};

/// Every GET, POST, PUT, PATCH and DELETE operation of the document, with
/// its path.
fn operations_mut(
    openapi: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = (&str, &mut utoipa::openapi::path::Operation)> {
    openapi.paths.paths.iter_mut().flat_map(|(path, item)| {
        let utoipa::openapi::path::PathItem {
            get,
            post,
            put,
            patch,
            delete,
            ..
        } = item;
        [get, post, put, patch, delete]
            .into_iter()
            .flatten()
            .map(move |op| (path.as_str(), op))
    })
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A member's dashboard token, `cd_pat_…`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "siteKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Chatdesk-Site-Key",
                "The site's API key, `cd_live_…`, as embedded in the widget",
            ))),
        );
    }
}

/// Where the interactive API reference (Swagger UI) is served; the page
/// and its assets are compiled into the binary.
pub const API_REFERENCE_PATH: &str = "/api/docs/";

/// Documents the API reference page, which Swagger UI serves rather than a
/// handler of ours.
struct ApiReference;

impl Modify for ApiReference {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let html = ObjectBuilder::new().schema_type(Type::String).build();
        let operation = OperationBuilder::new()
            .operation_id(Some("getApiReference"))
            .tag("operations")
            .summary(Some("The interactive API reference"))
            .description(Some(
                "Swagger UI rendering this document, served by chatdesk with every asset \
                 (no network access needed).",
            ))
            .securities(Some(Vec::new()))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("The Swagger UI page")
                    .content(
                        "text/html",
                        ContentBuilder::new().schema(Some(html)).build(),
                    )
                    .build(),
            )
            .build();
        openapi.paths.paths.insert(
            API_REFERENCE_PATH.to_string(),
            PathItem::new(HttpMethod::Get, operation),
        );
    }
}

/// Documents the problems every operation of a kind can answer, so each
/// handler lists only its own: 401 and 503 on authenticated operations
/// (authentication reads the database), 400 on those that read a body or
/// query, 413 and 415 on those with a body.
struct CommonProblems;

fn problem_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

fn add_problem(op: &mut Operation, status: &str, description: &str) {
    if op.responses.responses.contains_key(status) {
        return;
    }
    op.responses
        .responses
        .insert(status.to_string(), problem_response(description).into());
}

/// The 503 of an operation that reads the database, with its `Retry-After`.
fn database_unavailable() -> Response {
    let mut response = problem_response(
        "`DATABASE_UNAVAILABLE`: the database does not answer; retry after `Retry-After` seconds",
    );
    response.headers.insert(
        "Retry-After".to_string(),
        HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .description(Some("Seconds to wait before trying again"))
            .build(),
    );
    response
}

impl Modify for CommonProblems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, op) in operations_mut(openapi) {
            let body_limit = if path.starts_with("/api/v1/sdk/") {
                "`PAYLOAD_TOO_LARGE`: the body is over 64 KiB"
            } else {
                "`PAYLOAD_TOO_LARGE`: the body is over 256 KiB"
            };
            if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                add_problem(
                    op,
                    "401",
                    "`MISSING_CREDENTIALS` or `INVALID_CREDENTIALS`: no valid credentials (member token or site key)",
                );
                op.responses
                    .responses
                    .entry("503".to_string())
                    .or_insert_with(|| database_unavailable().into());
            }
            let has_query = op
                .parameters
                .as_ref()
                .is_some_and(|params| params.iter().any(|p| p.parameter_in == ParameterIn::Query));
            if op.request_body.is_some() {
                add_problem(op, "400", "`MALFORMED_JSON`: the body is not JSON");
                add_problem(op, "413", body_limit);
                add_problem(
                    op,
                    "408",
                    "`REQUEST_TIMEOUT`: the body did not arrive in time",
                );
                add_problem(
                    op,
                    "415",
                    "`UNSUPPORTED_MEDIA_TYPE`: the body is not application/json",
                );
            } else if has_query {
                add_problem(op, "400", "`MALFORMED_QUERY`: the query cannot be read");
            }
            if op.request_body.is_some() || has_query {
                add_problem(
                    op,
                    "422",
                    "`VALIDATION_FAILED`: the fields named in `errors` are invalid",
                );
            }
        }
    }
}

/// Documents the request headers as the server reads them: `Origin` on
/// every widget SDK operation (browsers send it, and it must be the site's
/// domain, so each SDK operation can answer 403 `ORIGIN_NOT_ALLOWED`), and
/// the form of an `Idempotency-Key` (1–255 visible ASCII characters, else
/// a 422 naming the header).
struct RequestHeaders;

impl Modify for RequestHeaders {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, op) in operations_mut(openapi) {
            let sdk = path.starts_with("/api/v1/sdk/");
            let parameters = op.parameters.get_or_insert_with(Vec::new);
            for parameter in parameters.iter_mut() {
                if parameter.parameter_in == ParameterIn::Header
                    && parameter.name == "Idempotency-Key"
                {
                    parameter.schema = Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .min_length(Some(1))
                            .max_length(Some(255))
                            .pattern(Some("^[!-~]+$"))
                            .into(),
                    );
                }
            }
            if !sdk {
                continue;
            }
            if !parameters
                .iter()
                .any(|p| p.parameter_in == ParameterIn::Header && p.name == "Origin")
            {
                parameters.push(
                    ParameterBuilder::new()
                        .name("Origin")
                        .parameter_in(ParameterIn::Header)
                        .required(Required::False)
                        .description(Some(
                            "Sent by browsers: must be the site's domain (or a subdomain \
                             when the site allows them), else 403 `ORIGIN_NOT_ALLOWED`",
                        ))
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                        .build(),
                );
            }
            add_problem(
                op,
                "403",
                "`ORIGIN_NOT_ALLOWED`: the page is not on the site's domain",
            );
        }
    }
}

/// The OpenAPI links between operations: which answer gives the ids (and
/// the `ETag`, and the visitor's session token) that another operation
/// takes, so a client (or a stateful test) can walk from a new site to its
/// widget, content and conversations, and from a visitor's session to its
/// messages, votes and ticket.
struct Links;

/// `(source operationId, status, link name, target operationId, [(parameter, runtime expression)])`.
type LinkRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const NEW_SITE: &[(&str, &str)] = &[("path.siteId", "$response.body#/site/id")];
const SAME_SITE: &[(&str, &str)] = &[("path.siteId", "$request.path.siteId")];
const SITE_WITH_ETAG: &[(&str, &str)] = &[
    ("path.siteId", "$request.path.siteId"),
    ("header.If-Match", "$response.header.ETag"),
];
const NEW_SESSION: &[(&str, &str)] = &[
    ("path.sessionId", "$response.body#/sessionId"),
    ("header.X-Chatdesk-Session", "$response.body#/sessionToken"),
];
const SAME_SESSION: &[(&str, &str)] = &[
    ("path.sessionId", "$request.path.sessionId"),
    (
        "header.X-Chatdesk-Session",
        "$request.header.X-Chatdesk-Session",
    ),
];

const LINKS: &[LinkRow] = &[
    // An open gate lets the visitor start a session.
    (
        "getChatConfig",
        "200",
        "OpenChatSession",
        "openChatSession",
        &[],
    ),
    ("createSite", "201", "GetSite", "getSite", NEW_SITE),
    ("createSite", "201", "UpdateSite", "updateSite", NEW_SITE),
    ("createSite", "201", "DeleteSite", "deleteSite", NEW_SITE),
    (
        "createSite",
        "201",
        "RegenerateSiteApiKey",
        "regenerateSiteApiKey",
        NEW_SITE,
    ),
    (
        "createSite",
        "201",
        "SetSiteMapping",
        "setSiteMapping",
        NEW_SITE,
    ),
    (
        "createSite",
        "201",
        "IssueIdentitySecret",
        "issueIdentitySecret",
        NEW_SITE,
    ),
    ("createSite", "201", "SaveWidget", "saveWidget", NEW_SITE),
    (
        "createSite",
        "201",
        "CreateContent",
        "createContent",
        NEW_SITE,
    ),
    ("createSite", "201", "ListContent", "listContent", NEW_SITE),
    (
        "createSite",
        "201",
        "ListConversations",
        "listConversations",
        NEW_SITE,
    ),
    ("createSite", "201", "ListTickets", "listTickets", NEW_SITE),
    ("getSite", "200", "UpdateSite", "updateSite", SITE_WITH_ETAG),
    ("getSite", "200", "GetWidget", "getWidget", SAME_SITE),
    (
        "getSite",
        "200",
        "ListConversations",
        "listConversations",
        SAME_SITE,
    ),
    (
        "updateSite",
        "200",
        "UpdateSite",
        "updateSite",
        SITE_WITH_ETAG,
    ),
    (
        "setSiteMapping",
        "200",
        "SetSiteMapping",
        "setSiteMapping",
        SITE_WITH_ETAG,
    ),
    (
        "setSiteMapping",
        "200",
        "SaveWidget",
        "saveWidget",
        SAME_SITE,
    ),
    (
        "setSiteMapping",
        "200",
        "PublishWidget",
        "publishWidget",
        SAME_SITE,
    ),
    (
        "getWidget",
        "200",
        "SaveWidget",
        "saveWidget",
        SITE_WITH_ETAG,
    ),
    (
        "saveWidget",
        "200",
        "SaveWidget",
        "saveWidget",
        SITE_WITH_ETAG,
    ),
    ("saveWidget", "201", "GetWidget", "getWidget", SAME_SITE),
    (
        "saveWidget",
        "201",
        "PublishWidget",
        "publishWidget",
        SAME_SITE,
    ),
    (
        "saveWidget",
        "200",
        "PublishWidget",
        "publishWidget",
        SAME_SITE,
    ),
    (
        "createContent",
        "201",
        "GetContent",
        "getContent",
        &[
            ("path.siteId", "$request.path.siteId"),
            ("path.contentId", "$response.body#/id"),
        ],
    ),
    (
        "createContent",
        "201",
        "UpdateContent",
        "updateContent",
        &[
            ("path.siteId", "$request.path.siteId"),
            ("path.contentId", "$response.body#/id"),
        ],
    ),
    (
        "listContent",
        "200",
        "GetContent",
        "getContent",
        &[
            ("path.siteId", "$request.path.siteId"),
            ("path.contentId", "$response.body#/items/0/id"),
        ],
    ),
    (
        "getContent",
        "200",
        "UpdateContent",
        "updateContent",
        &[
            ("path.siteId", "$request.path.siteId"),
            ("path.contentId", "$request.path.contentId"),
            ("header.If-Match", "$response.header.ETag"),
        ],
    ),
    (
        "listConversations",
        "200",
        "GetConversation",
        "getConversation",
        &[
            ("path.siteId", "$request.path.siteId"),
            ("path.sessionId", "$response.body#/items/0/id"),
        ],
    ),
    (
        "listConversations",
        "200",
        "ExportConversation",
        "exportConversation",
        &[
            ("path.siteId", "$request.path.siteId"),
            ("path.sessionId", "$response.body#/items/0/id"),
        ],
    ),
    (
        "getConversation",
        "200",
        "GetTicket",
        "getTicket",
        &[
            ("path.siteId", "$request.path.siteId"),
            ("path.ticketId", "$response.body#/ticket/id"),
        ],
    ),
    (
        "getConversation",
        "200",
        "ExportConversation",
        "exportConversation",
        &[
            ("path.siteId", "$request.path.siteId"),
            ("path.sessionId", "$request.path.sessionId"),
        ],
    ),
    (
        "listTickets",
        "200",
        "GetTicket",
        "getTicket",
        &[
            ("path.siteId", "$request.path.siteId"),
            ("path.ticketId", "$response.body#/items/0/id"),
        ],
    ),
    (
        "getTicket",
        "200",
        "UpdateTicket",
        "updateTicket",
        &[
            ("path.siteId", "$request.path.siteId"),
            ("path.ticketId", "$request.path.ticketId"),
            ("header.If-Match", "$response.header.ETag"),
        ],
    ),
    (
        "addMember",
        "201",
        "RemoveMember",
        "removeMember",
        &[("path.memberId", "$response.body#/member/id")],
    ),
    (
        "openChatSession",
        "201",
        "AskChatQuestion",
        "askChatQuestion",
        NEW_SESSION,
    ),
    (
        "openChatSession",
        "201",
        "ListChatMessages",
        "listChatMessages",
        NEW_SESSION,
    ),
    (
        "openChatSession",
        "201",
        "OpenSupportTicket",
        "openSupportTicket",
        NEW_SESSION,
    ),
    (
        "openChatSession",
        "200",
        "AskChatQuestion",
        "askChatQuestion",
        NEW_SESSION,
    ),
    (
        "openChatSession",
        "200",
        "ListChatMessages",
        "listChatMessages",
        NEW_SESSION,
    ),
    (
        "openChatSession",
        "201",
        "GetConversation",
        "getConversation",
        &[("path.sessionId", "$response.body#/sessionId")],
    ),
    (
        "askChatQuestion",
        "201",
        "AskChatQuestion",
        "askChatQuestion",
        SAME_SESSION,
    ),
    (
        "askChatQuestion",
        "201",
        "ListChatMessages",
        "listChatMessages",
        SAME_SESSION,
    ),
    (
        "askChatQuestion",
        "201",
        "OpenSupportTicket",
        "openSupportTicket",
        SAME_SESSION,
    ),
    (
        "askChatQuestion",
        "201",
        "VoteOnAnswer",
        "voteOnChatMessage",
        &[
            ("path.messageId", "$response.body#/assistantMessage/id"),
            (
                "header.X-Chatdesk-Session",
                "$request.header.X-Chatdesk-Session",
            ),
        ],
    ),
    (
        "askChatQuestion",
        "201",
        "GetConversation",
        "getConversation",
        &[("path.sessionId", "$request.path.sessionId")],
    ),
    (
        "listChatMessages",
        "200",
        "VoteOnMessage",
        "voteOnChatMessage",
        &[
            ("path.messageId", "$response.body#/items/1/id"),
            (
                "header.X-Chatdesk-Session",
                "$request.header.X-Chatdesk-Session",
            ),
        ],
    ),
    (
        "listChatMessages",
        "200",
        "OpenSupportTicket",
        "openSupportTicket",
        SAME_SESSION,
    ),
    (
        "openSupportTicket",
        "201",
        "GetTicket",
        "getTicket",
        &[("path.ticketId", "$response.body#/id")],
    ),
    (
        "openSupportTicket",
        "201",
        "UpdateTicket",
        "updateTicket",
        &[("path.ticketId", "$response.body#/id")],
    ),
    (
        "openSupportTicket",
        "201",
        "GetConversation",
        "getConversation",
        &[("path.sessionId", "$response.body#/sessionId")],
    ),
];

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (_, op) in operations_mut(openapi) {
            let Some(id) = op.operation_id.clone() else {
                continue;
            };
            for (source, status, name, target, parameters) in LINKS {
                if *source != id {
                    continue;
                }
                let Some(RefOr::T(response)) = op.responses.responses.get_mut(*status) else {
                    continue;
                };
                let link = parameters
                    .iter()
                    .fold(LinkBuilder::new().operation_id(*target), |link, (p, e)| {
                        link.parameter(*p, *e)
                    })
                    .build();
                response.links.insert((*name).to_string(), RefOr::T(link));
            }
        }
    }
}

/// chatdesk's HTTP API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "chatdesk",
        description = "The dashboard and widget API of chatdesk. Errors are application/problem+json with a stable `code`. Lists take `limit` (1–100, default 25) and `cursor`, and answer `{items, nextCursor}`. Another tenant's ids are always 404.",
    ),
    servers((url = "/", description = "this chatdesk server")),
    modifiers(&BearerAuth, &ApiReference, &RequestHeaders, &CommonProblems, &Links),
    // Schemas only query parameters refer to.
    components(schemas(crate::dto::FeedbackKindSchema)),
    paths(
        health::healthz,
        health::readyz,
        crate::metrics::scrape,
        me::me,
        members::list,
        members::add,
        members::remove,
        sites::list,
        sites::create,
        sites::get,
        sites::update,
        sites::delete,
        sites::regenerate_key,
        sites::set_mapping,
        sites::identity_secret,
        widget::get,
        widget::save,
        widget::publish,
        widget::pause,
        widget_script::latest,
        widget_script::versioned,
        content::list,
        content::create,
        content::get,
        content::patch,
        conversations::list,
        conversations::get,
        conversations::export,
        tickets::list,
        tickets::get,
        tickets::patch,
        sdk::config,
        sdk::open_session,
        sdk::list_messages,
        sdk::ask,
        sdk::vote,
        sdk::open_ticket,
        openapi_json,
    ),
    tags(
        (name = "operations", description = "Probes and the API document"),
        (name = "members", description = "The signed-in member and the team"),
        (name = "sites", description = "Sites, API keys, mapping, identity verification"),
        (name = "widget", description = "The chat widget Builder, and the widget's script that sites embed"),
        (name = "content", description = "Flows and Tooltips"),
        (name = "tickets", description = "The Tickets tab: support tickets visitors opened, their email's delivery, their status"),
        (name = "conversations", description = "The Conversations tab: a site's sessions with their filters, a session's timeline and identity card, and its export"),
        (name = "sdk", description = "The widget SDK: config, sessions, questions, votes. Authenticated by the site key; browser calls must come from the site's domain (CORS is answered for those origins only)"),
    )
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "getOpenApi", tag = "operations", security(),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

/// [`ApiDoc`] as served: JSON in which every Link object names its fields
/// as OpenAPI does (`operationId`, `requestBody`); utoipa 5 writes them in
/// snake case, which no client reads.
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let operations = doc
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|item| item.values_mut());
    for operation in operations {
        let responses = operation
            .get_mut("responses")
            .and_then(serde_json::Value::as_object_mut)
            .into_iter()
            .flat_map(|responses| responses.values_mut());
        for response in responses {
            let links = response
                .get_mut("links")
                .and_then(serde_json::Value::as_object_mut)
                .into_iter()
                .flat_map(|links| links.values_mut())
                .filter_map(serde_json::Value::as_object_mut);
            for link in links {
                for (snake, camel) in [
                    ("operation_id", "operationId"),
                    ("operation_ref", "operationRef"),
                    ("request_body", "requestBody"),
                ] {
                    if let Some(value) = link.remove(snake) {
                        link.insert(camel.to_string(), value);
                    }
                }
            }
        }
    }
    doc
}

/// The interactive API reference: Swagger UI, its page and assets compiled
/// into the binary, reading [`ApiDoc`] from `/api/v1/openapi.json`.
pub fn api_reference() -> utoipa_swagger_ui::SwaggerUi {
    utoipa_swagger_ui::SwaggerUi::new(format!("{API_REFERENCE_PATH}{{_:.*}}")).config(
        utoipa_swagger_ui::Config::new(["/api/v1/openapi.json"])
            // Swagger UI would otherwise send the document to an online validator.
            .validator_url("none")
            .display_operation_id(true)
            .try_it_out_enabled(true),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Every operation of the document as `METHOD path`.
    fn operations(doc: &utoipa::openapi::OpenApi) -> Vec<(String, &Operation)> {
        let mut all = Vec::new();
        for (path, item) in &doc.paths.paths {
            let methods = [
                ("GET", &item.get),
                ("PUT", &item.put),
                ("POST", &item.post),
                ("DELETE", &item.delete),
                ("OPTIONS", &item.options),
                ("HEAD", &item.head),
                ("PATCH", &item.patch),
                ("TRACE", &item.trace),
            ];
            for (method, op) in methods {
                if let Some(op) = op {
                    all.push((format!("{method} {path}"), op));
                }
            }
        }
        all
    }

    #[test]
    fn operation_ids_are_unique_lower_camel_case_names() {
        let doc = ApiDoc::openapi();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (name, op) in operations(&doc) {
            let id = op
                .operation_id
                .clone()
                .unwrap_or_else(|| panic!("{name} has no operationId"));
            assert!(
                id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{name}: operationId {id} is not lowerCamelCase"
            );
            if let Some(other) = seen.insert(id.clone(), name.clone()) {
                panic!("operationId {id} is used by both {other} and {name}");
            }
        }
        for id in [
            "listSites",
            "createSite",
            "getSite",
            "updateSite",
            "deleteSite",
            "regenerateSiteApiKey",
            "setSiteMapping",
            "issueIdentitySecret",
            "getWidget",
            "saveWidget",
            "publishWidget",
            "pauseWidget",
            "listContent",
            "createContent",
            "getContent",
            "updateContent",
            "getMe",
            "listMembers",
            "addMember",
            "removeMember",
            "healthz",
            "readyz",
            "getOpenApi",
            "getApiReference",
            "getMetrics",
        ] {
            assert!(seen.contains_key(id), "no operation {id}");
        }
        assert_eq!(seen["listSites"], "GET /api/v1/sites");
        assert_eq!(seen["listMembers"], "GET /api/v1/members");
    }

    #[test]
    fn every_operation_declares_its_security_and_only_probes_metrics_and_docs_are_public() {
        // The widget SDK authenticates with the site key, the dashboard
        // with a member's token.
        let doc = ApiDoc::openapi();
        let public = [
            "GET /healthz",
            "GET /readyz",
            "GET /metrics",
            "GET /api/v1/openapi.json",
            "GET /api/docs/",
            "GET /widget.js",
            "GET /widget/{version}.js",
        ];
        for (name, op) in operations(&doc) {
            let security = op
                .security
                .as_ref()
                .unwrap_or_else(|| panic!("{name} declares no security"));
            if public.contains(&name.as_str()) {
                assert!(security.is_empty(), "{name} should be public");
            } else {
                let value = serde_json::to_value(security).expect("security as JSON");
                let scheme = if name.contains(" /api/v1/sdk/") {
                    "siteKey"
                } else {
                    "bearer"
                };
                assert_eq!(value, serde_json::json!([{ scheme: [] }]), "{name}");
            }
        }
        let servers = doc.servers.as_ref().expect("servers");
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0].url, "/");
    }

    /// The parameters of an operation as `location.name`.
    fn parameters_of(op: &serde_json::Value) -> Vec<String> {
        op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}.{}",
                    p["in"].as_str().unwrap_or(""),
                    p["name"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    #[test]
    fn every_link_names_an_operation_and_its_parameters_in_camel_case() {
        let doc = document();
        let mut by_id = BTreeMap::new();
        for item in doc["paths"].as_object().expect("paths").values() {
            for op in item.as_object().expect("path item").values() {
                if let Some(id) = op["operationId"].as_str() {
                    by_id.insert(id.to_string(), op.clone());
                }
            }
        }
        let mut count = 0;
        for (source_id, source) in &by_id {
            let responses = source["responses"].as_object().expect("responses");
            for (status, response) in responses {
                let Some(links) = response["links"].as_object() else {
                    continue;
                };
                for (name, link) in links {
                    count += 1;
                    let target_id = link["operationId"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{source_id} {status} {name}: no operationId"));
                    let target = by_id
                        .get(target_id)
                        .unwrap_or_else(|| panic!("{source_id} {status} {name}: no {target_id}"));
                    let target_params = parameters_of(target);
                    let source_params = parameters_of(source);
                    for (param, expression) in link["parameters"].as_object().into_iter().flatten()
                    {
                        assert!(
                            target_params.contains(param),
                            "{source_id} {status} {name}: {target_id} has no {param}"
                        );
                        let expression = expression.as_str().expect("an expression");
                        if let Some(from) = expression.strip_prefix("$request.") {
                            assert!(
                                source_params.iter().any(|p| p == from),
                                "{source_id} {status} {name}: {source_id} has no {from}"
                            );
                        } else if let Some(header) = expression.strip_prefix("$response.header.") {
                            assert!(
                                !response["headers"][header].is_null(),
                                "{source_id} {status} {name}: no {header} header"
                            );
                        } else {
                            assert!(
                                expression.starts_with("$response.body#/"),
                                "{source_id} {status} {name}: {expression}"
                            );
                        }
                    }
                }
            }
        }
        assert_eq!(
            count,
            LINKS.len(),
            "a link whose source or status is missing"
        );
        // The visitor's path: a session to its questions, votes and ticket.
        let ask = &by_id["askChatQuestion"]["responses"]["201"]["links"];
        assert_eq!(ask["VoteOnAnswer"]["operationId"], "voteOnChatMessage");
        assert_eq!(
            ask["VoteOnAnswer"]["parameters"]["path.messageId"],
            "$response.body#/assistantMessage/id"
        );
    }

    #[test]
    fn sdk_operations_document_origin_and_creating_posts_the_idempotency_key_form() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                if path.starts_with("/api/v1/sdk/") {
                    assert!(
                        params
                            .iter()
                            .any(|p| p["in"] == "header" && p["name"] == "Origin"),
                        "{method} {path} documents no Origin"
                    );
                    assert!(op["responses"]["403"].is_object(), "{method} {path}");
                }
                for p in params.iter().filter(|p| p["name"] == "Idempotency-Key") {
                    assert_eq!(p["schema"]["pattern"], "^[!-~]+$", "{method} {path}");
                    assert_eq!(p["schema"]["maxLength"], 255, "{method} {path}");
                }
            }
        }
    }

    #[test]
    fn operations_that_read_the_database_document_a_503_with_retry_after() {
        let doc = ApiDoc::openapi();
        // /metrics reads the outbox depth but answers 200 without it.
        let reads_no_database = [
            "GET /healthz",
            "GET /metrics",
            "GET /api/v1/openapi.json",
            "GET /api/docs/",
            "GET /widget.js",
            "GET /widget/{version}.js",
        ];
        for (name, op) in operations(&doc) {
            let response = op.responses.responses.get("503");
            if reads_no_database.contains(&name.as_str()) {
                assert!(response.is_none(), "{name} documents a 503");
                continue;
            }
            let response = serde_json::to_value(response).expect("response as JSON");
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| d.contains("DATABASE_UNAVAILABLE")),
                "{name}: {response}"
            );
            assert_eq!(
                response["content"]["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "{name}"
            );
            assert_eq!(
                response["headers"]["Retry-After"]["schema"]["type"], "integer",
                "{name}"
            );
            assert!(response["headers"]["Retry-After"]["description"].is_string());
        }
    }
}
