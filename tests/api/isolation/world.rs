//! The world the isolation matrix runs in: two PRO tenants, V (sites V1
//! and V2) and A (site A1), each with a member of every role; every site
//! mapped with a published widget and a published Flow; four visitor
//! sessions (S1 and S1b on V1, S2 on V2, SA on A1), each with a question,
//! a matched answer voted DOWN and a support ticket. Every creating request
//! carried an `Idempotency-Key`, kept with its body so the matrix can
//! replay it from elsewhere. Everything is made through the API.

use std::collections::BTreeMap;

use chatdesk_domain::ports::SiteRepository;
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::tenant::Plan;
use serde_json::{json, Value};

use crate::helpers::{Reply, TestApp, Visitor};

/// The roles, strongest first.
pub const ROLES: [&str; 4] = ["OWNER", "ADMIN", "MANAGER", "MEMBER"];

/// What an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Site,
    Widget,
    Content,
    Session,
    /// A visitor's question.
    UserMessage,
    /// An answer, which takes votes.
    AssistantMessage,
    Ticket,
    Member,
}

/// One id of the world and where it lives.
#[derive(Debug, Clone)]
pub struct Id {
    pub kind: Kind,
    pub value: String,
    /// E.g. "V1's content", for the report.
    pub label: String,
    pub tenant: usize,
    pub site: Option<usize>,
    pub session: Option<usize>,
}

/// A creating request made while the world was built, with its
/// `Idempotency-Key`, to replay from elsewhere.
#[derive(Debug, Clone)]
pub struct Made {
    pub path: String,
    pub idempotency_key: String,
    pub body: Value,
}

#[derive(Debug, Clone)]
pub struct TenantFx {
    pub label: &'static str,
    pub id: String,
    /// A token per role, in the order of [`ROLES`].
    pub tokens: Vec<String>,
    /// A member id per role, in the order of [`ROLES`].
    pub members: Vec<String>,
    pub emails: Vec<String>,
    /// The ADMIN member's creation.
    pub member_made: Made,
}

impl TenantFx {
    pub fn owner(&self) -> &str {
        &self.tokens[0]
    }
}

#[derive(Debug, Clone)]
pub struct SiteFx {
    pub label: &'static str,
    pub tenant: usize,
    pub id: String,
    pub key: String,
    pub widget: String,
    pub content: String,
    pub content_name: String,
    pub welcome: String,
    pub made: Made,
    pub content_made: Made,
}

#[derive(Debug, Clone)]
pub struct SessionFx {
    pub label: &'static str,
    pub site: usize,
    pub id: String,
    pub token: String,
    pub anonymous_id: String,
    pub question: String,
    pub user_message: String,
    pub answer: String,
    pub ticket: String,
    pub ticket_made: Made,
}

/// The whole world.
#[derive(Debug, Clone)]
pub struct World {
    pub tenants: Vec<TenantFx>,
    pub sites: Vec<SiteFx>,
    pub sessions: Vec<SessionFx>,
}

/// A string the server must show to nobody outside its scope.
#[derive(Debug, Clone)]
pub struct Marker {
    pub text: String,
    pub tenant: usize,
    pub site: Option<usize>,
    pub session: Option<usize>,
}

/// A short random tag, so every name and text of the world is unique.
fn tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

fn idempotency_key(what: &str) -> String {
    format!("isolation-{what}-{}", uuid::Uuid::new_v4())
}

fn str_of(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

#[track_caller]
fn created(reply: &Reply) -> &Value {
    assert!(
        reply.status == 201 || reply.status == 200,
        "{} {}",
        reply.status,
        reply.body
    );
    &reply.body
}

/// Sends a creating POST with an `Idempotency-Key`.
fn make(app: &TestApp, token: &str, made: &Made) -> Reply {
    app.send(
        "POST",
        &made.path,
        Some(token),
        Some(&made.body.to_string()),
        &[("Idempotency-Key", made.idempotency_key.as_str())],
    )
}

fn build_tenant(app: &TestApp, label: &'static str) -> TenantFx {
    let tenant = app.tenant(Plan::Pro);
    let me = app.get("/api/v1/me", Some(&tenant.token));
    let mut tokens = vec![tenant.token.clone()];
    let mut members = vec![tenant.owner_id.clone()];
    let mut emails = vec![str_of(&me.body["member"]["email"])];
    let mut member_made = None;
    for role in &ROLES[1..] {
        let made = Made {
            path: "/api/v1/members".into(),
            idempotency_key: idempotency_key("member"),
            body: json!({
                "email": format!("{}-{}@{label}.example.com", role.to_lowercase(), tag()),
                "role": role,
            }),
        };
        let reply = make(app, &tenant.token, &made);
        let body = created(&reply);
        tokens.push(str_of(&body["token"]));
        members.push(str_of(&body["member"]["id"]));
        emails.push(str_of(&made.body["email"]));
        member_made.get_or_insert(made);
    }
    TenantFx {
        label,
        id: tenant.id,
        tokens,
        members,
        emails,
        member_made: member_made.expect("an ADMIN was added"),
    }
}

fn build_site(app: &TestApp, tenants: &[TenantFx], tenant: usize, label: &'static str) -> SiteFx {
    let owner = tenants[tenant].owner().to_string();
    let made = Made {
        path: "/api/v1/sites".into(),
        idempotency_key: idempotency_key("site"),
        body: json!({
            "domain": format!("{}-{}.example.com", label.to_lowercase(), tag()),
            "name": format!("Site {label}"),
            "allowSubdomains": false,
        }),
    };
    let reply = make(app, &owner, &made);
    let body = created(&reply);
    let id = str_of(&body["site"]["id"]);
    let key = str_of(&body["apiKey"]);
    app.set_mapping(&owner, &id, "COMPLETED");
    let welcome = format!("Welcome to {label} {}", tag());
    let reply = app.put(
        &format!("/api/v1/sites/{id}/widget"),
        Some(&owner),
        &json!({"welcomeMessage": welcome, "position": "BOTTOM_RIGHT"}),
    );
    let widget = str_of(&created(&reply)["id"]);
    let reply = app.post_empty(&format!("/api/v1/sites/{id}/widget/publish"), Some(&owner));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let content_name = format!("Flow {label} {}", tag());
    let content_made = Made {
        path: format!("/api/v1/sites/{id}/content"),
        idempotency_key: idempotency_key("content"),
        body: json!({
            "kind": "FLOW",
            "name": content_name,
            "description": format!("How {label}'s visitors do it."),
            "status": "PUBLISHED",
            "audiences": [],
        }),
    };
    let reply = make(app, &owner, &content_made);
    let content = str_of(&created(&reply)["id"]);
    SiteFx {
        label,
        tenant,
        id,
        key,
        widget,
        content,
        content_name,
        welcome,
        made,
        content_made,
    }
}

fn build_session(app: &TestApp, sites: &[SiteFx], site: usize, label: &'static str) -> SessionFx {
    let s = &sites[site];
    let anonymous_id = format!("anon-{label}-{}", tag());
    let reply = app.sdk(
        "POST",
        "/api/v1/sdk/chat/sessions",
        Visitor::key(&s.key),
        Some(&json!({
            "anonymousId": anonymous_id,
            "traits": {"email": format!("visitor-{}@{}.example.org", tag(), label.to_lowercase())},
        })),
    );
    let body = created(&reply);
    let session = (str_of(&body["sessionId"]), str_of(&body["sessionToken"]));
    let question = format!("How do I use {}? ({label})", s.content_name);
    let reply = app.ask(&s.key, &session, &question);
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(
        reply.body["assistantMessage"]["status"], "MATCHED_CONTENT",
        "{}",
        reply.body
    );
    let user_message = str_of(&reply.body["userMessage"]["id"]);
    let answer = str_of(&reply.body["assistantMessage"]["id"]);
    let reply = app.vote(&s.key, &session.1, &answer, "DOWN");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let ticket_made = Made {
        path: format!("/api/v1/sdk/chat/sessions/{}/tickets", session.0),
        idempotency_key: idempotency_key("ticket"),
        body: json!({
            "subject": format!("Ticket of {label} {}", tag()),
            "body": format!("{label} needs help."),
        }),
    };
    let reply = app.send(
        "POST",
        &ticket_made.path,
        None,
        Some(&ticket_made.body.to_string()),
        &[
            ("X-Chatdesk-Site-Key", s.key.as_str()),
            ("X-Chatdesk-Session", session.1.as_str()),
            ("Idempotency-Key", ticket_made.idempotency_key.as_str()),
        ],
    );
    let ticket = str_of(&created(&reply)["id"]);
    SessionFx {
        label,
        site,
        id: session.0,
        token: session.1,
        anonymous_id,
        question,
        user_message,
        answer,
        ticket,
        ticket_made,
    }
}

impl World {
    /// Builds the world, and waits until every ticket's email has been
    /// handled by the delivery worker (so the tickets no longer change).
    pub fn build(app: &TestApp) -> World {
        let tenants = vec![build_tenant(app, "V"), build_tenant(app, "A")];
        let sites = vec![
            build_site(app, &tenants, 0, "V1"),
            build_site(app, &tenants, 0, "V2"),
            build_site(app, &tenants, 1, "A1"),
        ];
        let sessions = vec![
            build_session(app, &sites, 0, "S1"),
            build_session(app, &sites, 0, "S1b"),
            build_session(app, &sites, 1, "S2"),
            build_session(app, &sites, 2, "SA"),
        ];
        let world = World {
            tenants,
            sites,
            sessions,
        };
        world.wait_for_deliveries(app);
        world
    }

    fn wait_for_deliveries(&self, app: &TestApp) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        for session in &self.sessions {
            loop {
                let reply = app.get(&self.ticket_path(session), Some(self.owner_of(session)));
                assert_eq!(reply.status, 200, "{}", reply.body);
                if reply.body["delivery"]["status"] != "PENDING" {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the ticket of {} is still PENDING: {}",
                    session.label,
                    reply.body
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }

    pub fn site_of(&self, session: &SessionFx) -> &SiteFx {
        &self.sites[session.site]
    }

    fn owner_of(&self, session: &SessionFx) -> &str {
        self.tenants[self.site_of(session).tenant].owner()
    }

    fn ticket_path(&self, session: &SessionFx) -> String {
        format!(
            "/api/v1/sites/{}/tickets/{}",
            self.site_of(session).id,
            session.ticket
        )
    }

    /// Every id of the world: each site's, widget's and content item's,
    /// each session's with its two messages and ticket, each member's.
    pub fn ids(&self) -> Vec<Id> {
        let mut ids = Vec::new();
        for (i, site) in self.sites.iter().enumerate() {
            for (kind, value, what) in [
                (Kind::Site, &site.id, "site"),
                (Kind::Widget, &site.widget, "widget"),
                (Kind::Content, &site.content, "content"),
            ] {
                ids.push(Id {
                    kind,
                    value: value.clone(),
                    label: format!("{}'s {what}", site.label),
                    tenant: site.tenant,
                    site: Some(i),
                    session: None,
                });
            }
        }
        for (i, session) in self.sessions.iter().enumerate() {
            let site = self.site_of(session);
            for (kind, value, what) in [
                (Kind::Session, &session.id, "session"),
                (Kind::UserMessage, &session.user_message, "question"),
                (Kind::AssistantMessage, &session.answer, "answer"),
                (Kind::Ticket, &session.ticket, "ticket"),
            ] {
                ids.push(Id {
                    kind,
                    value: value.clone(),
                    label: format!("{}'s {what}", session.label),
                    tenant: site.tenant,
                    site: Some(session.site),
                    session: Some(i),
                });
            }
        }
        for (t, tenant) in self.tenants.iter().enumerate() {
            for (role, member) in ROLES.iter().zip(&tenant.members) {
                ids.push(Id {
                    kind: Kind::Member,
                    value: member.clone(),
                    label: format!("{}'s {role}", tenant.label),
                    tenant: t,
                    site: None,
                    session: None,
                });
            }
        }
        ids
    }

    /// Every id, secret and text of the world with its scope.
    pub fn markers(&self) -> Vec<Marker> {
        let mut markers: Vec<Marker> = self
            .ids()
            .into_iter()
            .map(|id| Marker {
                text: id.value,
                tenant: id.tenant,
                site: id.site,
                session: id.session,
            })
            .collect();
        for (t, tenant) in self.tenants.iter().enumerate() {
            let texts = std::iter::once(&tenant.id)
                .chain(&tenant.tokens)
                .chain(&tenant.emails);
            markers.extend(texts.map(|text| Marker {
                text: text.clone(),
                tenant: t,
                site: None,
                session: None,
            }));
        }
        for (i, site) in self.sites.iter().enumerate() {
            for text in [&site.key, &site.welcome, &site.content_name] {
                markers.push(Marker {
                    text: text.clone(),
                    tenant: site.tenant,
                    site: Some(i),
                    session: None,
                });
            }
        }
        for (i, session) in self.sessions.iter().enumerate() {
            let site = self.site_of(session);
            for text in [
                &session.token,
                &session.anonymous_id,
                &session.question,
                &str_of(&session.ticket_made.body["subject"]),
            ] {
                markers.push(Marker {
                    text: text.clone(),
                    tenant: site.tenant,
                    site: Some(session.site),
                    session: Some(i),
                });
            }
        }
        markers
    }

    /// Everything of the world its owners and visitors can see, per
    /// tenant and per site (through the dashboard as each site's owner,
    /// and through the SDK with each site's key and each session's own
    /// token), plus whether each key still resolves to its site in the
    /// store and each member's token still signs in.
    pub fn snapshot(&self, app: &TestApp) -> BTreeMap<String, Value> {
        let mut parts = BTreeMap::new();
        let get = |path: &str, token: &str| -> Value {
            let reply = app.get(path, Some(token));
            json!({"httpStatus": reply.status, "answer": reply.body})
        };
        for tenant in &self.tenants {
            let owner = tenant.owner();
            let signed_in: Vec<Value> = tenant
                .tokens
                .iter()
                .map(|token| {
                    let me = app.get("/api/v1/me", Some(token));
                    json!({"httpStatus": me.status, "answer": me.body["member"]})
                })
                .collect();
            parts.insert(
                format!("tenant {}", tenant.label),
                json!({
                    "me": get("/api/v1/me", owner),
                    "members": get("/api/v1/members?limit=100", owner),
                    "sites": get("/api/v1/sites?limit=100", owner),
                    "tokens": signed_in,
                }),
            );
        }
        let store = app.store();
        for (i, site) in self.sites.iter().enumerate() {
            let owner = self.tenants[site.tenant].owner();
            let base = format!("/api/v1/sites/{}", site.id);
            let mut sessions = Vec::new();
            for session in self.sessions.iter().filter(|s| s.site == i) {
                let messages = app.sdk(
                    "GET",
                    &format!(
                        "/api/v1/sdk/chat/sessions/{}/messages?limit=100",
                        session.id
                    ),
                    Visitor::key(&site.key).session(&session.token),
                    None,
                );
                sessions.push(json!({
                    "detail": get(&format!("{base}/conversations/{}", session.id), owner),
                    "ticket": get(&format!("{base}/tickets/{}", session.ticket), owner),
                    "sdkMessages": {"httpStatus": messages.status, "answer": messages.body},
                }));
            }
            let config = app.sdk(
                "GET",
                "/api/v1/sdk/chat/config",
                Visitor::key(&site.key),
                None,
            );
            let resolves = store
                .find_by_api_key(&SecretHash::of(&site.key))
                .expect("the store answers")
                .map(|found| found.id.to_string());
            parts.insert(
                format!("site {}", site.label),
                json!({
                    "site": get(&base, owner),
                    "widget": get(&format!("{base}/widget"), owner),
                    "content": get(&format!("{base}/content?limit=100"), owner),
                    "conversations": get(&format!("{base}/conversations?limit=100"), owner),
                    "tickets": get(&format!("{base}/tickets?limit=100"), owner),
                    "sessions": sessions,
                    "config": {"httpStatus": config.status, "answer": config.body},
                    "keyResolvesTo": resolves,
                }),
            );
        }
        parts
    }
}
