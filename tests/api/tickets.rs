//! Opening a support ticket from the widget: after a DOWN vote only, with
//! the visitor's address typed in or taken from the `email` trait; the
//! ticket, the session's escalation and the email's outbox row are stored
//! together, to the widget's support address or else the tenant's owner.

use chatdesk_store::schema::{email_outbox, support_tickets};
use diesel::prelude::*;
use serde_json::{json, Value};

use crate::app;
use crate::conversations::{ask_matching, new_visitor, open, publish_flow, vote};
use crate::helpers::{OpenSite, Reply, TestApp, Visitor};

pub(crate) fn open_ticket(
    app: &TestApp,
    site: &OpenSite,
    session: &(String, String),
    body: &Value,
) -> Reply {
    app.sdk(
        "POST",
        &format!("/api/v1/sdk/chat/sessions/{}/tickets", session.0),
        Visitor::key(&site.key).session(&session.1),
        Some(body),
    )
}

/// A session on the site with one matched answer; returns it and the
/// answer's id.
fn answered(app: &TestApp, site: &OpenSite, traits: Value) -> ((String, String), String) {
    let session = open(
        app,
        &site.key,
        &json!({"anonymousId": new_visitor(), "traits": traits}),
    );
    let asked = ask_matching(app, &site.key, &session, "How do I export invoices?");
    let answer = asked["assistantMessage"]["id"]
        .as_str()
        .expect("answer id")
        .to_string();
    (session, answer)
}

/// The outbox row of a ticket once the delivery worker has handled it
/// (within 10 s): status, recipient and Message-ID.
fn outbox(app: &TestApp, ticket: &str) -> (String, Option<String>, String) {
    let mut conn = chatdesk_store::connect(&app.config.database_url).expect("database");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let row: (String, Option<String>, String) = email_outbox::table
            .filter(email_outbox::ticket_id.eq(ticket))
            .select((
                email_outbox::status,
                email_outbox::recipient,
                email_outbox::message_id,
            ))
            .first(&mut conn)
            .expect("the ticket's outbox row");
        if row.0 != "PENDING" || std::time::Instant::now() > deadline {
            return row;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_ticket_follows_a_down_vote_and_is_escalated_with_its_email_queued() {
    let app = app!();
    let site = app.open_site("tickets.example.com");
    publish_flow(&app, &site);
    let (session, answer) = answered(&app, &site, json!({"email": "Ada@Example.com"}));
    let body = json!({"subject": "Export is empty", "body": "The CSV has no rows.\nWhy?"});

    // No vote yet, then an UP vote: no ticket.
    let reply = open_ticket(&app, &site, &session, &body);
    reply.assert_problem(409, "NO_DOWNVOTE");
    vote(&app, &site.key, &session, &answer, "UP");
    open_ticket(&app, &site, &session, &body).assert_problem(409, "NO_DOWNVOTE");

    vote(&app, &site.key, &session, &answer, "DOWN");
    let reply = open_ticket(&app, &site, &session, &body);
    assert_eq!(reply.status, 201, "{}", reply.body);
    let ticket = reply.body["id"].as_str().expect("id").to_string();
    assert_eq!(reply.body["sessionId"], session.0.as_str());
    assert_eq!(
        reply.body["email"], "ada@example.com",
        "from the email trait"
    );
    assert_eq!(reply.body["subject"], "Export is empty");
    assert_eq!(reply.body["status"], "OPEN");
    assert!(reply.body.get("delivery").is_none(), "{}", reply.body);

    // The widget has no support address: the tenant's owner receives it.
    // No mail service is configured here: the worker logs the email.
    let (status, recipient, message_id) = outbox(&app, &ticket);
    assert_eq!(status, "LOG_ONLY");
    let me = app.get("/api/v1/me", Some(&site.token));
    assert_eq!(me.body["member"]["role"], "OWNER");
    assert_eq!(recipient.as_deref(), me.body["member"]["email"].as_str());
    assert_eq!(message_id, format!("ticket-{ticket}@chatdesk.localhost"));

    // The session is escalated, pointing at this ticket; a second ticket
    // (typed address) leaves it pointing at the first.
    let second = open_ticket(
        &app,
        &site,
        &session,
        &json!({"email": "other@example.org", "subject": "Again", "body": "Still empty."}),
    );
    assert_eq!(second.status, 201, "{}", second.body);
    assert_eq!(second.body["email"], "other@example.org");
    let list = app.get(
        &format!(
            "/api/v1/sites/{}/conversations?escalated=true",
            site.site_id
        ),
        Some(&site.token),
    );
    assert_eq!(
        list.body["items"][0]["id"],
        session.0.as_str(),
        "{}",
        list.body
    );
    assert_eq!(list.body["items"][0]["ticketId"], ticket.as_str());

    // The ticket keeps the whole conversation.
    let mut conn = chatdesk_store::connect(&app.config.database_url).expect("database");
    let stored: String = support_tickets::table
        .find(&ticket)
        .select(support_tickets::conversation)
        .first(&mut conn)
        .expect("ticket");
    let snapshot: Value = serde_json::from_str(&stored).expect("JSON");
    assert_eq!(snapshot["sessionId"], session.0.as_str());
    assert_eq!(snapshot["messages"].as_array().map(Vec::len), Some(2));
    assert_eq!(snapshot["messages"][1]["vote"], "DOWN");
    assert_eq!(snapshot["traits"]["email"], "Ada@Example.com");
}

#[test]
fn the_widgets_support_address_receives_it_before_the_owner() {
    let app = app!();
    let site = app.open_site("support-override.example.com");
    publish_flow(&app, &site);
    let reply = app.put(
        &format!("/api/v1/sites/{}/widget", site.site_id),
        Some(&site.token),
        &json!({
            "welcomeMessage": "Hi! How can we help?",
            "position": "BOTTOM_RIGHT",
            "supportEmail": "Help@Support.example.com"
        }),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let (session, answer) = answered(&app, &site, json!({}));
    vote(&app, &site.key, &session, &answer, "DOWN");
    let reply = open_ticket(
        &app,
        &site,
        &session,
        &json!({"email": "visitor@example.org", "subject": "Help", "body": "Please."}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let ticket = reply.body["id"].as_str().expect("id");
    let (status, recipient, _) = outbox(&app, ticket);
    assert_eq!(status, "LOG_ONLY");
    assert_eq!(recipient.as_deref(), Some("help@support.example.com"));
}

#[test]
fn a_ticket_needs_an_address_valid_fields_and_the_sessions_token() {
    let app = app!();
    let site = app.open_site("ticket-input.example.com");
    publish_flow(&app, &site);
    let (session, answer) = answered(&app, &site, json!({"email": "not an address"}));
    vote(&app, &site.key, &session, &answer, "DOWN");

    // (body, fields named)
    let long = "x".repeat(5001);
    let table: Vec<(Value, Vec<&str>)> = vec![
        (json!({"subject": "s", "body": "b"}), vec!["email"]),
        (
            json!({"email": "nope", "subject": "s", "body": "b"}),
            vec!["email"],
        ),
        (
            json!({"email": "a@b.co", "subject": "", "body": "b"}),
            vec!["subject"],
        ),
        (
            json!({"email": "a@b.co", "subject": "a\nb", "body": "b"}),
            vec!["subject"],
        ),
        (
            json!({"email": "a@b.co", "subject": "s", "body": long}),
            vec!["body"],
        ),
        (
            json!({"email": "a@b.co", "subject": "s\u{0}", "body": "b"}),
            vec!["subject"],
        ),
        (json!({"email": "a@b.co", "body": "b"}), vec!["subject"]),
    ];
    for (body, fields) in table {
        let reply = open_ticket(&app, &site, &session, &body);
        reply.assert_invalid(&fields);
    }

    // Without the session's token, or with another session's: nothing.
    let body = json!({"email": "a@b.co", "subject": "s", "body": "b"});
    let reply = app.sdk(
        "POST",
        &format!("/api/v1/sdk/chat/sessions/{}/tickets", session.0),
        Visitor::key(&site.key),
        Some(&body),
    );
    reply.assert_problem(401, "SESSION_TOKEN_REQUIRED");
    let other = open(&app, &site.key, &json!({"anonymousId": new_visitor()}));
    let reply = open_ticket(&app, &site, &(session.0.clone(), other.1.clone()), &body);
    reply.assert_problem(404, "NOT_FOUND");
    // Another site's key: not found either.
    let elsewhere = app.open_site("ticket-elsewhere.example.com");
    let reply = app.sdk(
        "POST",
        &format!("/api/v1/sdk/chat/sessions/{}/tickets", session.0),
        Visitor::key(&elsewhere.key).session(&session.1),
        Some(&body),
    );
    assert_eq!(reply.status, 404, "{}", reply.body);

    let reply = open_ticket(&app, &site, &session, &body);
    assert_eq!(reply.status, 201, "{}", reply.body);
}

/// Opens `n` tickets on the site (one session, one DOWN vote); returns
/// their ids, oldest first.
fn tickets(app: &TestApp, site: &OpenSite, n: usize) -> Vec<String> {
    let (session, answer) = answered(app, site, json!({"email": "ada@example.com"}));
    vote(app, &site.key, &session, &answer, "DOWN");
    (0..n)
        .map(|i| {
            let reply = open_ticket(
                app,
                site,
                &session,
                &json!({"subject": format!("Ticket {i}"), "body": "Help."}),
            );
            assert_eq!(reply.status, 201, "{}", reply.body);
            reply.body["id"].as_str().expect("id").to_string()
        })
        .collect()
}

pub(crate) fn patch_status(
    app: &TestApp,
    site: &OpenSite,
    token: &str,
    ticket: &str,
    status: &str,
) -> Reply {
    app.patch(
        &format!("/api/v1/sites/{}/tickets/{ticket}", site.site_id),
        Some(token),
        &json!({ "status": status }),
    )
}

#[test]
fn the_tickets_tab_lists_newest_first_by_status_and_pages() {
    let app = app!();
    let site = app.open_site("tickets-tab.example.com");
    publish_flow(&app, &site);
    let opened = tickets(&app, &site, 5);
    let path = format!("/api/v1/sites/{}/tickets", site.site_id);

    let all = app.get(&path, Some(&site.token));
    assert_eq!(all.status, 200, "{}", all.body);
    let ids: Vec<&str> = all.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    let newest_first: Vec<&str> = opened.iter().rev().map(String::as_str).collect();
    assert_eq!(ids, newest_first);
    let first = &all.body["items"][0];
    assert_eq!(first["status"], "OPEN");
    let delivery = first["delivery"]["status"].as_str();
    assert!(
        matches!(delivery, Some("PENDING" | "LOG_ONLY")),
        "{}",
        all.body
    );
    assert_eq!(first["resolvedAt"], Value::Null);

    // Pages of 2, then a status filter.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}?limit=2&cursor={c}"),
            None => format!("{path}?limit=2"),
        };
        let page = app.get(&url, Some(&site.token));
        assert_eq!(page.status, 200, "{}", page.body);
        for t in page.body["items"].as_array().expect("items") {
            seen.push(t["id"].as_str().expect("id").to_string());
        }
        match page.body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);
    let reply = patch_status(&app, &site, &site.token, &opened[1], "RESOLVED");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let resolved = app.get(&format!("{path}?status=RESOLVED"), Some(&site.token));
    assert_eq!(resolved.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(resolved.body["items"][0]["id"], opened[1].as_str());
    let open = app.get(&format!("{path}?status=OPEN"), Some(&site.token));
    assert_eq!(open.body["items"].as_array().map(Vec::len), Some(4));
    app.get(&format!("{path}?status=CLOSED"), Some(&site.token))
        .assert_invalid(&["status"]);
}

#[test]
fn status_changes_stamp_resolution_and_honour_if_match() {
    let app = app!();
    let site = app.open_site("ticket-status.example.com");
    publish_flow(&app, &site);
    let ticket = tickets(&app, &site, 1).remove(0);
    let path = format!("/api/v1/sites/{}/tickets/{ticket}", site.site_id);
    // A MEMBER may change a ticket's status.
    let (member_id, member) = app.member_with_id(&site.token, "MEMBER");

    let read = app.get(&path, Some(&member));
    assert_eq!(read.status, 200, "{}", read.body);
    let etag = read.header("etag").expect("ETag").to_string();

    // Resolve straight from OPEN: stamped with the member and the time.
    let resolved = patch_status(&app, &site, &member, &ticket, "RESOLVED");
    assert_eq!(resolved.status, 200, "{}", resolved.body);
    assert_eq!(resolved.body["status"], "RESOLVED");
    assert_eq!(resolved.body["resolvedBy"], member_id.as_str());
    assert!(resolved.body["resolvedAt"].is_string(), "{}", resolved.body);
    let resolved_tag = resolved.header("etag").expect("ETag").to_string();
    assert_ne!(resolved_tag, etag);

    // A write based on the old tag changes nothing: 412.
    let stale = app.send(
        "PATCH",
        &path,
        Some(&site.token),
        Some(&json!({"status": "IN_PROGRESS"}).to_string()),
        &[
            ("If-Match", etag.as_str()),
            ("Content-Type", "application/json"),
        ],
    );
    stale.assert_problem(412, "PRECONDITION_FAILED");
    assert_eq!(app.get(&path, Some(&site.token)).body["status"], "RESOLVED");

    // Setting the status it has changes nothing, not even the tag.
    let again = patch_status(&app, &site, &site.token, &ticket, "RESOLVED");
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.header("etag"), Some(resolved_tag.as_str()));
    assert_eq!(
        again.body["resolvedBy"],
        member_id.as_str(),
        "the stamp stays"
    );

    // Reopen (with the current tag): the stamps are cleared.
    let reopened = app.send(
        "PATCH",
        &path,
        Some(&site.token),
        Some(&json!({"status": "IN_PROGRESS"}).to_string()),
        &[
            ("If-Match", resolved_tag.as_str()),
            ("Content-Type", "application/json"),
        ],
    );
    assert_eq!(reopened.status, 200, "{}", reopened.body);
    assert_eq!(reopened.body["status"], "IN_PROGRESS");
    assert_eq!(reopened.body["resolvedAt"], Value::Null);
    assert_eq!(reopened.body["resolvedBy"], Value::Null);

    patch_status(&app, &site, &site.token, &ticket, "DONE").assert_invalid(&["status"]);
}

#[test]
fn tickets_of_other_tenants_and_sites_are_not_found() {
    let app = app!();
    let site = app.open_site("ticket-isolation.example.com");
    publish_flow(&app, &site);
    let ticket = tickets(&app, &site, 1).remove(0);
    let stranger = app.open_site("ticket-stranger.example.com");
    let sibling = app.site_id(&site.token, "ticket-sibling.example.com");
    let attempts = [
        // Another tenant's token on this site's ticket.
        (site.site_id.clone(), stranger.token.clone()),
        // Another tenant's site id with its own token.
        (stranger.site_id.clone(), stranger.token.clone()),
        // The tenant's other site.
        (sibling.clone(), site.token.clone()),
    ];
    for (site_id, token) in &attempts {
        let path = format!("/api/v1/sites/{site_id}/tickets/{ticket}");
        app.get(&path, Some(token)).assert_problem(404, "NOT_FOUND");
        app.patch(&path, Some(token), &json!({"status": "RESOLVED"}))
            .assert_problem(404, "NOT_FOUND");
    }
    let list = app.get(
        &format!("/api/v1/sites/{sibling}/tickets"),
        Some(&site.token),
    );
    assert_eq!(list.body["items"], json!([]), "{}", list.body);
    app.get(
        &format!("/api/v1/sites/{}/tickets", site.site_id),
        Some(&stranger.token),
    )
    .assert_problem(404, "NOT_FOUND");
    let path = format!("/api/v1/sites/{}/tickets/{ticket}", site.site_id);
    assert_eq!(app.get(&path, None).status, 401);
    assert_eq!(app.get(&path, Some(&site.token)).body["status"], "OPEN");
}
