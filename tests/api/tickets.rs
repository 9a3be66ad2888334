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

fn open_ticket(app: &TestApp, site: &OpenSite, session: &(String, String), body: &Value) -> Reply {
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

/// The outbox row of a ticket: status and recipient.
fn outbox(app: &TestApp, ticket: &str) -> (String, Option<String>, String) {
    let mut conn = chatdesk_store::connect(&app.config.database_url).expect("database");
    email_outbox::table
        .filter(email_outbox::ticket_id.eq(ticket))
        .select((
            email_outbox::status,
            email_outbox::recipient,
            email_outbox::message_id,
        ))
        .first(&mut conn)
        .expect("the ticket's outbox row")
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
    let (status, recipient, message_id) = outbox(&app, &ticket);
    assert_eq!(status, "PENDING");
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
    assert_eq!(status, "PENDING");
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
