//! The route table the matrix is generated from: every path and method of
//! both APIs with the body each attempt sends, and the public routes that
//! take neither credentials nor ids. [`ROUTES`] must list exactly what
//! `GET /api/v1/openapi.json` lists, so a new route cannot be forgotten.

use std::collections::BTreeSet;

use serde_json::Value;

/// Which API a route belongs to, hence which credentials it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `Authorization: Bearer <member token>`.
    Dashboard,
    /// `X-Chatdesk-Site-Key` (and `X-Chatdesk-Session`).
    Sdk,
    /// No credentials and no ids: probes, the API document, the widget's
    /// script.
    Public,
}

/// What an attempt sends as its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    None,
    /// This JSON.
    Json(&'static str),
    /// The request that made the victim's site, with its `Idempotency-Key`.
    SiteMade,
    /// The request that made the victim's ADMIN, with its `Idempotency-Key`.
    MemberMade,
    /// The request that made the victim's content item, with its key.
    ContentMade,
    /// The request that opened the victim session's ticket, with its key.
    TicketMade,
    /// The victim visitor's own `anonymousId`.
    VisitorOfVictim,
}

/// One path and method.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// The path as the OpenAPI document writes it.
    pub path: &'static str,
    pub api: Api,
    pub payload: Payload,
}

const fn route(method: &'static str, path: &'static str, api: Api, payload: Payload) -> Route {
    Route {
        method,
        path,
        api,
        payload,
    }
}

use Api::{Dashboard as D, Public as P, Sdk as S};
use Payload::*;

/// Every route of the server.
pub const ROUTES: &[Route] = &[
    route("GET", "/healthz", P, None),
    route("GET", "/readyz", P, None),
    route("GET", "/metrics", P, None),
    route("GET", "/api/v1/openapi.json", P, None),
    route("GET", "/widget.js", P, None),
    route("GET", "/widget/{version}.js", P, None),
    route("GET", "/api/docs/", P, None),
    route("GET", "/api/v1/me", D, None),
    route("GET", "/api/v1/members", D, None),
    route("POST", "/api/v1/members", D, MemberMade),
    route("DELETE", "/api/v1/members/{memberId}", D, None),
    route("GET", "/api/v1/sites", D, None),
    route("POST", "/api/v1/sites", D, SiteMade),
    route("GET", "/api/v1/sites/{siteId}", D, None),
    route(
        "PATCH",
        "/api/v1/sites/{siteId}",
        D,
        Json(r#"{"name": "Taken over", "allowSubdomains": true}"#),
    ),
    route("DELETE", "/api/v1/sites/{siteId}", D, None),
    route("POST", "/api/v1/sites/{siteId}/api-key", D, None),
    route(
        "PUT",
        "/api/v1/sites/{siteId}/mapping",
        D,
        Json(r#"{"status": "FAILED"}"#),
    ),
    route("POST", "/api/v1/sites/{siteId}/identity-secret", D, None),
    route("GET", "/api/v1/sites/{siteId}/widget", D, None),
    route(
        "PUT",
        "/api/v1/sites/{siteId}/widget",
        D,
        Json(
            r#"{"welcomeMessage": "Taken over", "position": "TOP_LEFT", "rateLimitPerSession": 1}"#,
        ),
    ),
    route("POST", "/api/v1/sites/{siteId}/widget/publish", D, None),
    route("POST", "/api/v1/sites/{siteId}/widget/pause", D, None),
    route("GET", "/api/v1/sites/{siteId}/content", D, None),
    route("POST", "/api/v1/sites/{siteId}/content", D, ContentMade),
    route("GET", "/api/v1/sites/{siteId}/content/{contentId}", D, None),
    route(
        "PATCH",
        "/api/v1/sites/{siteId}/content/{contentId}",
        D,
        Json(r#"{"status": "DRAFT", "audiences": ["No users"]}"#),
    ),
    route("GET", "/api/v1/sites/{siteId}/conversations", D, None),
    route(
        "GET",
        "/api/v1/sites/{siteId}/conversations/{sessionId}",
        D,
        None,
    ),
    route(
        "GET",
        "/api/v1/sites/{siteId}/conversations/{sessionId}/export",
        D,
        None,
    ),
    route("GET", "/api/v1/sites/{siteId}/tickets", D, None),
    route("GET", "/api/v1/sites/{siteId}/tickets/{ticketId}", D, None),
    route(
        "PATCH",
        "/api/v1/sites/{siteId}/tickets/{ticketId}",
        D,
        Json(r#"{"status": "RESOLVED"}"#),
    ),
    route("GET", "/api/v1/sdk/chat/config", S, None),
    route("POST", "/api/v1/sdk/chat/sessions", S, VisitorOfVictim),
    route(
        "GET",
        "/api/v1/sdk/chat/sessions/{sessionId}/messages",
        S,
        None,
    ),
    route(
        "POST",
        "/api/v1/sdk/chat/sessions/{sessionId}/messages",
        S,
        Json(r#"{"content": "Show me everything you know."}"#),
    ),
    route(
        "PUT",
        "/api/v1/sdk/chat/messages/{messageId}/feedback",
        S,
        Json(r#"{"vote": "UP"}"#),
    ),
    route(
        "POST",
        "/api/v1/sdk/chat/sessions/{sessionId}/tickets",
        S,
        TicketMade,
    ),
];

/// A path parameter that holds an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Site,
    Content,
    Session,
    Ticket,
    Member,
    Message,
}

impl Route {
    /// The id parameters of the path, in order; a parameter the matrix
    /// does not know fails the test (it must learn it first).
    pub fn slots(&self) -> Vec<Slot> {
        let mut slots = Vec::new();
        for part in self.path.split('/') {
            let Some(name) = part.strip_prefix('{') else {
                continue;
            };
            let name = name.split('}').next().unwrap_or_default();
            slots.push(match name {
                "siteId" => Slot::Site,
                "contentId" => Slot::Content,
                "sessionId" => Slot::Session,
                "ticketId" => Slot::Ticket,
                "memberId" => Slot::Member,
                "messageId" => Slot::Message,
                "version" if self.api == Api::Public => continue,
                other => panic!(
                    "{} {}: the isolation matrix does not know the path parameter {{{other}}}",
                    self.method, self.path
                ),
            });
        }
        slots
    }

    /// The path with each id parameter replaced by `values` in order (and
    /// a public route's version by `1`).
    pub fn fill(&self, values: &[&str]) -> String {
        let mut values = values.iter();
        self.path
            .split('/')
            .map(|part| {
                if part == "{version}.js" {
                    "1.js".to_string()
                } else if let Some(rest) = part.strip_prefix('{') {
                    let suffix = rest.split_once('}').map(|(_, s)| s).unwrap_or_default();
                    format!("{}{suffix}", values.next().expect("a value for every slot"))
                } else {
                    part.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// The `(METHOD, path)` pairs of an OpenAPI document.
pub fn documented(openapi: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    if let Some(paths) = openapi["paths"].as_object() {
        for (path, item) in paths {
            for method in [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ] {
                if item.get(method).is_some() {
                    found.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
    }
    found
}

/// The `(METHOD, path)` pairs of [`ROUTES`].
pub fn tabled() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect()
}
