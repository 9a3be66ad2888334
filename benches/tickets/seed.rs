//! The data: one PRO tenant and one mapped site with a published widget
//! (its support address receives the tickets) and a published Flow, made
//! through the use cases; then visitor sessions, each with a matched
//! answer voted DOWN, through the SDK over HTTP as the widget makes them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use chatdesk_api::Services;
use chatdesk_domain::content::NewContentInput;
use chatdesk_domain::site::NewSiteInput;
use chatdesk_domain::tenant::Plan;
use chatdesk_domain::version::Precondition;
use chatdesk_domain::widget::{NamedSettings, WidgetSettingsInput};
use serde_json::{json, Value};

use crate::Result;

/// The Flow every question names.
const FLOW: &str = "Export invoices";
/// Where the site's tickets are emailed.
pub(crate) const SUPPORT: &str = "support@tickets.bench.example.com";

/// A session ready for a ticket: its id and token.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) token: String,
}

/// The site's key (the SDK's `X-Chatdesk-Site-Key`).
pub(crate) fn seed_site(app: &Services) -> Result<String> {
    let created = app.tenancy.create_tenant(
        "Bench Tickets",
        Plan::Pro,
        "owner@tickets.bench.example.com",
    )?;
    let owner = app.tenancy.authenticate(Some(&created.token))?;
    let site = app.sites.create_site(
        &owner,
        &NewSiteInput {
            domain: "help.tickets.bench.example.com".into(),
            name: "Bench help centre".into(),
            allow_subdomains: false,
            theme: None,
        },
    )?;
    let (key, site) = (site.secret, site.value.id);
    app.sites
        .set_mapping(&owner, site, "COMPLETED", &Precondition::None)?;
    app.widgets.save_widget(
        &owner,
        site,
        &WidgetSettingsInput {
            welcome_message: "Hi! Ask me how to do anything in Bench.".into(),
            disclaimer: None,
            position: "BOTTOM_RIGHT".into(),
            support_email: Some(SUPPORT.into()),
            persona: None,
            insufficient_credits_message: None,
            rate_limit_per_session: None,
            named: NamedSettings::ALL,
        },
        &Precondition::None,
    )?;
    app.widgets.publish_widget(&owner, site)?;
    app.content.create_content(
        &owner,
        site,
        &NewContentInput {
            kind: "FLOW".into(),
            name: FLOW.into(),
            description: Some("Download every invoice of a period as a CSV file.".into()),
            status: Some("PUBLISHED".into()),
            audiences: Vec::new(),
        },
    )?;
    Ok(key)
}

/// A keep-alive HTTP client.
pub(crate) fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build()
}

/// Sends `body`; the answer must have `status`, and its JSON is returned.
pub(crate) fn send(req: ureq::Request, body: Value, status: u16) -> Result<Value, String> {
    match req.send_json(body) {
        Ok(reply) if reply.status() == status => {
            reply.into_json::<Value>().map_err(|e| e.to_string())
        }
        Ok(reply) => {
            let (url, got) = (reply.get_url().to_string(), reply.status());
            let body = reply.into_string().unwrap_or_default();
            Err(format!("{url}: {got} {body}, not {status}"))
        }
        Err(ureq::Error::Status(code, reply)) => {
            let url = reply.get_url().to_string();
            let body = reply.into_string().unwrap_or_default();
            Err(format!("{url}: {code} {body}, not {status}"))
        }
        Err(e) => Err(e.to_string()),
    }
}

fn text(value: &Value, pointer: &str) -> Result<String, String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("no {pointer} in {value}"))
}

/// One visitor: opens a session, asks a question naming the Flow (a
/// matched answer) and votes it DOWN.
fn downvoted(agent: &ureq::Agent, base: &str, key: &str, n: usize) -> Result<Session, String> {
    let opened = send(
        agent
            .post(&format!("{base}/api/v1/sdk/chat/sessions"))
            .set("X-Chatdesk-Site-Key", key),
        json!({
            "anonymousId": format!("anon-bench-{n}-{}", uuid::Uuid::new_v4().simple()),
            "traits": {"name": format!("Visitor {n}")}
        }),
        201,
    )?;
    let session = Session {
        id: text(&opened, "/sessionId")?,
        token: text(&opened, "/sessionToken")?,
    };
    let asked = send(
        agent
            .post(&format!(
                "{base}/api/v1/sdk/chat/sessions/{}/messages",
                session.id
            ))
            .set("X-Chatdesk-Site-Key", key)
            .set("X-Chatdesk-Session", &session.token),
        json!({"content": "How do I export invoices for March?"}),
        201,
    )?;
    if asked.pointer("/assistantMessage/status") != Some(&json!("MATCHED_CONTENT")) {
        return Err(format!("not a matched answer: {asked}"));
    }
    let answer = text(&asked, "/assistantMessage/id")?;
    let voted = send(
        agent
            .put(&format!(
                "{base}/api/v1/sdk/chat/messages/{answer}/feedback"
            ))
            .set("X-Chatdesk-Site-Key", key)
            .set("X-Chatdesk-Session", &session.token),
        json!({"vote": "DOWN"}),
        200,
    )?;
    if voted.pointer("/vote") != Some(&json!("DOWN")) {
        return Err(format!("the DOWN vote was not taken: {voted}"));
    }
    Ok(session)
}

/// `count` down-voted sessions, made by `clients` threads.
pub(crate) fn sessions(
    base: &str,
    key: &str,
    count: usize,
    clients: usize,
) -> Result<Vec<Session>> {
    let next = AtomicUsize::new(0);
    let made = Mutex::new(Vec::with_capacity(count));
    let failed: Mutex<Option<String>> = Mutex::new(None);
    thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                let agent = agent();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        return;
                    }
                    match downvoted(&agent, base, key, n) {
                        Ok(session) => {
                            if let Ok(mut made) = made.lock() {
                                made.push(session);
                            }
                        }
                        Err(e) => {
                            if let Ok(mut failed) = failed.lock() {
                                failed.get_or_insert(e);
                            }
                            next.store(count, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failed
        .into_inner()
        .map_err(|_| "a seeding thread panicked")?
    {
        return Err(format!("seeding a session failed: {e}").into());
    }
    let made = made.into_inner().map_err(|_| "a seeding thread panicked")?;
    if made.len() != count {
        return Err(format!("{} of {count} sessions seeded", made.len()).into());
    }
    Ok(made)
}
