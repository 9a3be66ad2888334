//! The dashboard's Conversations tab over HTTP (issue 8): the per-site
//! list and every one of its filters, alone and together, on small crafted
//! data; malformed filters; paging while sessions arrive and move; a
//! session's detail and its JSON export (a 10,000-message conversation
//! streamed whole); and isolation between tenants and sites.
//!
//! Sessions, questions and votes are made through the real SDK, so the
//! counters the list filters on are the ones the server keeps. What the
//! API cannot make, or not at a chosen time, is written straight into the
//! database ([`seed`]): a session's start and last activity moved to craft
//! a date window, support tickets, and bulk messages.

mod detail;
mod filters;
mod isolation;
mod paging;
mod seed;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::helpers::{OpenSite, Reply, TestApp, Visitor};

/// The name of the published Flow the sessions' questions name, so every
/// question gets a MATCHED_CONTENT answer that can be voted on.
pub(crate) const FLOW: &str = "Export invoices";

/// `/api/v1/sites/{site}/conversations`.
pub(crate) fn list_path(site: &str) -> String {
    format!("/api/v1/sites/{site}/conversations")
}

/// `/api/v1/sites/{site}/conversations/{session}`.
pub(crate) fn detail_path(site: &str, session: &str) -> String {
    format!("/api/v1/sites/{site}/conversations/{session}")
}

/// `/api/v1/sites/{site}/conversations/{session}/export`.
pub(crate) fn export_path(site: &str, session: &str) -> String {
    format!("/api/v1/sites/{site}/conversations/{session}/export")
}

/// `GET` the list with this query (`""` or `"a=b&c=d"`, without `?`).
pub(crate) fn list(app: &TestApp, token: &str, site: &str, query: &str) -> Reply {
    let path = if query.is_empty() {
        list_path(site)
    } else {
        format!("{}?{query}", list_path(site))
    };
    app.get(&path, Some(token))
}

/// One page's items, which must be a 200 `{items, nextCursor}`.
#[track_caller]
pub(crate) fn page(reply: &Reply) -> (Vec<Value>, Option<String>) {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.content_type, "application/json", "{}", reply.body);
    let items = reply.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items in {}", reply.body))
        .clone();
    let next = match &reply.body["nextCursor"] {
        Value::Null => None,
        Value::String(cursor) => Some(cursor.clone()),
        other => panic!("nextCursor {other} in {}", reply.body),
    };
    (items, next)
}

/// Pages through the list with `query` and `limit`, following
/// `nextCursor` until it is null; returns every item in order, or what
/// went wrong (a page that is not a 200, a page over the limit, a full
/// page count that never ends).
pub(crate) fn page_through(
    app: &TestApp,
    token: &str,
    site: &str,
    query: &str,
    limit: usize,
) -> Result<Vec<Value>, String> {
    let base = if query.is_empty() {
        format!("limit={limit}")
    } else {
        format!("{query}&limit={limit}")
    };
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let q = match &cursor {
            Some(c) => format!("{base}&cursor={c}"),
            None => base.clone(),
        };
        let reply = list(app, token, site, &q);
        if reply.status != 200 {
            return Err(format!("?{q}: {} {}", reply.status, reply.body));
        }
        let items = reply.body["items"].as_array().cloned().unwrap_or_default();
        if items.len() > limit {
            return Err(format!("?{q}: {} items over limit {limit}", items.len()));
        }
        let next = reply.body["nextCursor"].as_str().map(str::to_string);
        if next.is_some() && items.is_empty() {
            return Err(format!("?{q}: an empty page with a nextCursor"));
        }
        all.extend(items);
        match next {
            Some(c) => cursor = Some(c),
            None => return Ok(all),
        }
    }
    Err(format!("?{base}: paging did not end"))
}

/// The ids of items, in order.
pub(crate) fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|item| item["id"].as_str().unwrap_or("<no id>").to_string())
        .collect()
}

/// `value` as a string (empty when it is not one).
pub(crate) fn str_of(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

/// An instant as a query parameter value (RFC 3339, UTC, `Z`).
pub(crate) fn param(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// An instant as the API shows it, cut to microseconds (as
/// [`crate::helpers::at_micros`] writes every `…At` field).
pub(crate) fn shown(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Publishes the Flow [`FLOW`] on the site; returns its id.
pub(crate) fn publish_flow(app: &TestApp, site: &OpenSite) -> String {
    str_of(
        &app.content(
            &site.token,
            &site.site_id,
            &json!({
                "kind": "FLOW",
                "name": FLOW,
                "description": "Download every invoice of a period as a CSV file.",
                "status": "PUBLISHED",
                "audiences": []
            }),
        )["id"],
    )
}

/// Opens a session with this `POST /sdk/chat/sessions` body; returns its
/// id and token.
#[track_caller]
pub(crate) fn open(app: &TestApp, key: &str, body: &Value) -> (String, String) {
    let reply = app.sdk(
        "POST",
        "/api/v1/sdk/chat/sessions",
        Visitor::key(key),
        Some(body),
    );
    assert!(reply.status == 201 || reply.status == 200, "{}", reply.body);
    (
        str_of(&reply.body["sessionId"]),
        str_of(&reply.body["sessionToken"]),
    )
}

/// A fresh anonymous id.
pub(crate) fn new_visitor() -> String {
    format!("anon-{}", uuid::Uuid::new_v4().simple())
}

/// Asks `question` (which must name [`FLOW`]); returns the reply, which
/// must be a MATCHED_CONTENT answer pointing at the Flow.
#[track_caller]
pub(crate) fn ask_matching(
    app: &TestApp,
    key: &str,
    session: &(String, String),
    question: &str,
) -> Value {
    let reply = app.ask(key, session, question);
    assert_eq!(reply.status, 201, "{}", reply.body);
    let answer = reply.body["assistantMessage"].clone();
    assert_eq!(answer["status"], "MATCHED_CONTENT", "{}", reply.body);
    assert_eq!(answer["contentRef"]["name"], FLOW, "{}", reply.body);
    reply.body
}

/// Votes through the SDK; the vote must be taken.
#[track_caller]
pub(crate) fn vote(app: &TestApp, key: &str, session: &(String, String), message: &str, v: &str) {
    let reply = app.vote(key, &session.1, message, v);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["vote"], v, "{}", reply.body);
}
