//! The isolation matrix: every route of both APIs ([`ROUTES`], checked
//! against the OpenAPI document) tried with every id of the [`World`] in
//! every id parameter, by every member of both tenants (each role), with
//! every pair of site key and session token, and with every wrong kind of
//! credential. Whatever does not belong to the caller must be answered as
//! an id that does not exist, and must change nothing:
//!
//! - an id of another tenant, of another site, of another session, or of
//!   another kind: 404 `NOT_FOUND`; a 403 `ROLE_TOO_WEAK` only under the
//!   caller's own site, and only when an unknown id gets the same answer;
//! - a credential of the wrong kind (a site key or session token as a
//!   member's token, a member's token as a site key, …): 401, or 404 for
//!   a session token that is no session's;
//! - a request in the caller's own scope that names another's things (the
//!   victim's `Idempotency-Key` and body, the victim visitor's
//!   `anonymousId`): answered for the caller alone, never a replay;
//! - no answer shows an id, secret or text the caller may not see;
//! - every site, widget, content item, session with its messages and
//!   votes, ticket with its status, member, API key, session token and
//!   the tenants' credits read the same before and after.
//!
//! Every failure is collected and reported at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde_json::Value;

use super::routes::{documented, tabled, Api, Payload, Route, Slot, ROUTES};
use super::world::{Id, Kind, Made, Marker, World, ROLES};
use crate::app;
use crate::helpers::{send_to, Reply, TestApp};

/// The matrix must never shrink below this many attempts.
const AT_LEAST: usize = 8_500;
/// Client threads sending attempts.
const THREADS: usize = 4;

/// Who sends an attempt, and with which credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// A member's bearer token.
    Member { tenant: usize, role: usize },
    /// A site key as a bearer token.
    SiteKeyAsBearer(usize),
    /// A session token as a bearer token.
    SessionTokenAsBearer(usize),
    /// The SDK's headers (site key and session token) on the dashboard.
    SdkHeaders(usize, usize),
    /// No credentials at all.
    Nobody,
    /// An SDK call.
    Visitor(Key, Token),
}

/// What an SDK call sends as its site key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Site(usize),
    MemberToken(usize),
    SessionToken(usize),
    Missing,
}

/// What an SDK call sends as its session token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Session(usize),
    SiteKey(usize),
    Member(usize),
    Missing,
}

/// What the answer to an attempt must be.
#[derive(Debug, Clone)]
enum Expect {
    /// Answered as an id that does not exist: 404 `NOT_FOUND`, or, when
    /// an oracle path is given (the caller's own site, with unknown ids),
    /// the 403 `ROLE_TOO_WEAK` that path also gets.
    NotFound { oracle: Option<String> },
    /// Credentials refused: 401, or 404 `NOT_FOUND` (an SDK token that is
    /// no session's).
    Refused,
    /// The caller's own business: any answer but a server error or a
    /// replay, showing nothing outside `Visible`.
    Own(Visible),
}

/// What a caller may see.
#[derive(Debug, Clone, Copy)]
enum Visible {
    /// Everything of this tenant.
    Tenant(usize),
    /// This site's public settings (the widget's config).
    Site(usize),
    /// Nothing of the world.
    Nothing,
}

#[derive(Debug, Clone)]
struct Attempt {
    caller: Caller,
    route: &'static Route,
    /// The path as sent and as reported (ids by their labels).
    path: String,
    shown: String,
    body: Option<String>,
    idempotency_key: Option<String>,
    expect: Expect,
}

/// Who asked, with which method, on which path with unknown ids.
type OracleKey = (String, String, String);

/// The matrix's view of the world.
struct Matrix<'w> {
    world: &'w World,
    ids: Vec<Id>,
    markers: Vec<Marker>,
    unknown: String,
    /// How many attempts got each answer (status and code).
    answers: Mutex<BTreeMap<String, usize>>,
}

impl<'w> Matrix<'w> {
    fn new(world: &'w World) -> Self {
        Matrix {
            world,
            ids: world.ids(),
            markers: world.markers(),
            unknown: uuid::Uuid::now_v7().to_string(),
            answers: Mutex::new(BTreeMap::new()),
        }
    }

    fn who(&self, caller: Caller) -> String {
        let w = self.world;
        match caller {
            Caller::Member { tenant, role } => {
                format!("{}'s {}", w.tenants[tenant].label, ROLES[role])
            }
            Caller::SiteKeyAsBearer(s) => {
                format!("{}'s site key as a bearer token", w.sites[s].label)
            }
            Caller::SessionTokenAsBearer(s) => {
                format!("{}'s session token as a bearer token", w.sessions[s].label)
            }
            Caller::SdkHeaders(site, s) => format!(
                "the SDK headers of {} and {}",
                w.sites[site].label, w.sessions[s].label
            ),
            Caller::Nobody => "no credentials".into(),
            Caller::Visitor(key, token) => {
                let key = match key {
                    Key::Site(s) => format!("{}'s key", w.sites[s].label),
                    Key::MemberToken(t) => {
                        format!("{}'s owner token as the key", w.tenants[t].label)
                    }
                    Key::SessionToken(s) => format!("{}'s token as the key", w.sessions[s].label),
                    Key::Missing => "no key".into(),
                };
                let token = match token {
                    Token::Session(s) => format!("{}'s token", w.sessions[s].label),
                    Token::SiteKey(s) => format!("{}'s key as the token", w.sites[s].label),
                    Token::Member(t) => {
                        format!("{}'s owner token as the token", w.tenants[t].label)
                    }
                    Token::Missing => "no token".into(),
                };
                format!("visitor with {key} and {token}")
            }
        }
    }

    /// The request headers of a caller.
    fn headers(&self, caller: Caller) -> Vec<(String, String)> {
        let w = self.world;
        let bearer = |token: &str| ("Authorization".to_string(), format!("Bearer {token}"));
        match caller {
            Caller::Member { tenant, role } => vec![bearer(&w.tenants[tenant].tokens[role])],
            Caller::SiteKeyAsBearer(s) => vec![bearer(&w.sites[s].key)],
            Caller::SessionTokenAsBearer(s) => vec![bearer(&w.sessions[s].token)],
            Caller::SdkHeaders(site, s) => vec![
                ("X-Chatdesk-Site-Key".into(), w.sites[site].key.clone()),
                ("X-Chatdesk-Session".into(), w.sessions[s].token.clone()),
            ],
            Caller::Nobody => Vec::new(),
            Caller::Visitor(key, token) => {
                let mut headers = Vec::new();
                let key = match key {
                    Key::Site(s) => Some(w.sites[s].key.clone()),
                    Key::MemberToken(t) => Some(w.tenants[t].owner().to_string()),
                    Key::SessionToken(s) => Some(w.sessions[s].token.clone()),
                    Key::Missing => {
                        // A member's token where a site key belongs.
                        headers.push(bearer(w.tenants[0].owner()));
                        None
                    }
                };
                if let Some(key) = key {
                    headers.push(("X-Chatdesk-Site-Key".into(), key));
                }
                let token = match token {
                    Token::Session(s) => Some(w.sessions[s].token.clone()),
                    Token::SiteKey(s) => Some(w.sites[s].key.clone()),
                    Token::Member(t) => Some(w.tenants[t].owner().to_string()),
                    Token::Missing => None,
                };
                if let Some(token) = token {
                    headers.push(("X-Chatdesk-Session".into(), token));
                }
                headers
            }
        }
    }

    /// The ids a site's own requests use: the site, its content, its first
    /// session and that session's ticket, and the MEMBER of its tenant.
    fn own_ids(&self, site: usize, slots: &[Slot]) -> Vec<&Id> {
        let w = self.world;
        let session = w
            .sessions
            .iter()
            .position(|s| s.site == site)
            .expect("every site has a session");
        let tenant = w.sites[site].tenant;
        slots
            .iter()
            .map(|slot| {
                self.ids
                    .iter()
                    .find(|id| match slot {
                        Slot::Site => id.kind == Kind::Site && id.site == Some(site),
                        Slot::Content => id.kind == Kind::Content && id.site == Some(site),
                        Slot::Session => id.kind == Kind::Session && id.session == Some(session),
                        Slot::Ticket => id.kind == Kind::Ticket && id.session == Some(session),
                        Slot::Message => {
                            id.kind == Kind::AssistantMessage && id.session == Some(session)
                        }
                        Slot::Member => {
                            id.kind == Kind::Member
                                && id.tenant == tenant
                                && id.label.ends_with("MEMBER")
                        }
                    })
                    .expect("an id for every slot")
            })
            .collect()
    }

    /// The body and `Idempotency-Key` of an attempt on `route` whose ids
    /// are `ids`: a creating request replays the one that made the thing
    /// the ids point at (the site's content, the session's ticket).
    fn payload(
        &self,
        route: &Route,
        ids: &[&Id],
        values: &[&str],
    ) -> (Option<String>, Option<String>) {
        let w = self.world;
        let site = ids.iter().find_map(|id| id.site).unwrap_or(0);
        let session = ids
            .iter()
            .find_map(|id| id.session)
            .or_else(|| w.sessions.iter().position(|s| s.site == site))
            .unwrap_or(0);
        // The victim's key where its answer could be given again (the
        // request it answered); elsewhere a key of the attempt's own, so
        // that one caller's attempts never share a key.
        let made = |made: &Made| {
            let key = if route.fill(values) == made.path {
                made.idempotency_key.clone()
            } else {
                format!("isolation-attempt-{}", uuid::Uuid::new_v4())
            };
            (Some(made.body.to_string()), Some(key))
        };
        match route.payload {
            Payload::None => (None, None),
            Payload::Json(json) => (Some(json.to_string()), None),
            Payload::SiteMade => made(&w.sites[0].made),
            Payload::MemberMade => made(&w.tenants[0].member_made),
            Payload::ContentMade => made(&w.sites[site].content_made),
            Payload::TicketMade => made(&w.sessions[session].ticket_made),
            Payload::VisitorOfVictim => (
                Some(
                    serde_json::json!({"anonymousId": w.sessions[session].anonymous_id})
                        .to_string(),
                ),
                None,
            ),
        }
    }

    fn attempt(
        &self,
        caller: Caller,
        route: &'static Route,
        ids: &[&Id],
        expect: Expect,
    ) -> Attempt {
        let values: Vec<&str> = ids.iter().map(|id| id.value.as_str()).collect();
        let labels: Vec<String> = ids.iter().map(|id| format!("<{}>", id.label)).collect();
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        let (body, idempotency_key) = self.payload(route, ids, &values);
        Attempt {
            caller,
            route,
            path: route.fill(&values),
            shown: route.fill(&labels),
            body,
            idempotency_key,
            expect,
        }
    }

    /// Whether a member of `tenant` may reach each id where it stands.
    fn dashboard_reach(&self, tenant: usize, slots: &[Slot], ids: &[&Id]) -> Vec<bool> {
        let site = slots
            .iter()
            .zip(ids)
            .find(|(slot, _)| **slot == Slot::Site)
            .map(|(_, id)| *id);
        let own_site = site.filter(|id| id.kind == Kind::Site && id.tenant == tenant);
        slots
            .iter()
            .zip(ids)
            .map(|(slot, id)| match slot {
                Slot::Site => own_site.is_some(),
                Slot::Member => id.kind == Kind::Member && id.tenant == tenant,
                Slot::Content | Slot::Session | Slot::Ticket => {
                    let kind = match slot {
                        Slot::Content => Kind::Content,
                        Slot::Session => Kind::Session,
                        _ => Kind::Ticket,
                    };
                    id.kind == kind && own_site.is_some_and(|site| site.site == id.site)
                }
                Slot::Message => false,
            })
            .collect()
    }

    /// Whether a visitor with the key of `site` and the token of
    /// `session` may reach each id where it stands.
    fn sdk_reach(&self, site: usize, session: usize, slots: &[Slot], ids: &[&Id]) -> Vec<bool> {
        let own = self.world.sessions[session].site == site;
        slots
            .iter()
            .zip(ids)
            .map(|(slot, id)| {
                own && id.session == Some(session)
                    && match slot {
                        Slot::Session => id.kind == Kind::Session,
                        Slot::Message => {
                            matches!(id.kind, Kind::UserMessage | Kind::AssistantMessage)
                        }
                        _ => false,
                    }
            })
            .collect()
    }

    /// The id rows to try on a route: every site's own ids (the right ids
    /// of the wrong site), and the ids of the caller's `home` site with
    /// one parameter replaced by every id of the world (a wrong id under
    /// the caller's own site, and every kind of id in every parameter).
    fn id_rows(&self, slots: &[Slot], home: usize) -> Vec<Vec<&Id>> {
        let mut rows: Vec<Vec<&Id>> = (0..self.world.sites.len())
            .map(|site| self.own_ids(site, slots))
            .collect();
        let base = self.own_ids(home, slots);
        for i in 0..slots.len() {
            for id in &self.ids {
                let mut row = base.clone();
                row[i] = id;
                rows.push(row);
            }
        }
        let mut seen = std::collections::HashSet::new();
        rows.retain(|row| seen.insert(row.iter().map(|id| id.value.clone()).collect::<Vec<_>>()));
        rows
    }

    /// The path with every id the caller may not reach replaced by an
    /// unknown one.
    fn oracle(&self, route: &Route, ids: &[&Id], reach: &[bool]) -> String {
        let values: Vec<&str> = ids
            .iter()
            .zip(reach)
            .map(|(id, ok)| {
                if *ok {
                    id.value.as_str()
                } else {
                    self.unknown.as_str()
                }
            })
            .collect();
        route.fill(&values)
    }

    /// Attempts that change nothing when the server is right.
    fn refusals(&self) -> Vec<Attempt> {
        let w = self.world;
        let mut out = Vec::new();
        let members: Vec<Caller> = (0..w.tenants.len())
            .flat_map(|tenant| (0..ROLES.len()).map(move |role| Caller::Member { tenant, role }))
            .collect();
        for route in ROUTES {
            let slots = route.slots();
            match route.api {
                Api::Dashboard => {
                    // Every member, every id row.
                    for caller in &members {
                        let Caller::Member { tenant, .. } = *caller else {
                            continue;
                        };
                        if slots.is_empty() {
                            if route.method == "GET" {
                                out.push(self.attempt(
                                    *caller,
                                    route,
                                    &[],
                                    Expect::Own(Visible::Tenant(tenant)),
                                ));
                            }
                            continue;
                        }
                        let home = w.sites.iter().position(|s| s.tenant == tenant);
                        for ids in self.id_rows(&slots, home.unwrap_or(0)) {
                            let reach = self.dashboard_reach(tenant, &slots, &ids);
                            if reach.iter().all(|ok| *ok) {
                                continue;
                            }
                            let own_site = slots
                                .iter()
                                .zip(&reach)
                                .any(|(slot, ok)| *slot == Slot::Site && *ok);
                            let oracle = own_site.then(|| self.oracle(route, &ids, &reach));
                            out.push(self.attempt(
                                *caller,
                                route,
                                &ids,
                                Expect::NotFound { oracle },
                            ));
                        }
                    }
                    // Credentials of the wrong kind, with V1's own ids.
                    let ids = self.own_ids(0, &slots);
                    for caller in [
                        Caller::SiteKeyAsBearer(0),
                        Caller::SessionTokenAsBearer(0),
                        Caller::SdkHeaders(0, 0),
                        Caller::Nobody,
                    ] {
                        out.push(self.attempt(caller, route, &ids, Expect::Refused));
                    }
                }
                Api::Sdk => {
                    let keys = (0..w.sites.len()).map(Key::Site);
                    let tokens: Vec<Token> = (0..w.sessions.len()).map(Token::Session).collect();
                    if slots.is_empty() {
                        if route.method == "GET" {
                            // The config shows the key's own site only.
                            for key in keys {
                                let Key::Site(site) = key else { continue };
                                for token in tokens.iter().copied().chain([Token::Missing]) {
                                    out.push(self.attempt(
                                        Caller::Visitor(key, token),
                                        route,
                                        &[],
                                        Expect::Own(Visible::Site(site)),
                                    ));
                                }
                            }
                        }
                    } else {
                        // Every key, every token, every id row.
                        for key in keys {
                            let Key::Site(site) = key else { continue };
                            for token in &tokens {
                                let Token::Session(session) = *token else {
                                    continue;
                                };
                                for ids in self.id_rows(&slots, site) {
                                    let reach = self.sdk_reach(site, session, &slots, &ids);
                                    if reach.iter().all(|ok| *ok) {
                                        continue;
                                    }
                                    out.push(self.attempt(
                                        Caller::Visitor(key, *token),
                                        route,
                                        &ids,
                                        Expect::NotFound { oracle: None },
                                    ));
                                }
                            }
                        }
                    }
                    // Credentials of the wrong kind, with S1's own ids.
                    let ids = self.own_ids(0, &slots);
                    let bad_keys = [Key::MemberToken(0), Key::SessionToken(0), Key::Missing];
                    let all_tokens = [
                        Token::Session(0),
                        Token::SiteKey(0),
                        Token::Member(0),
                        Token::Missing,
                    ];
                    for key in bad_keys {
                        for token in all_tokens {
                            out.push(self.attempt(
                                Caller::Visitor(key, token),
                                route,
                                &ids,
                                Expect::Refused,
                            ));
                        }
                    }
                    if !slots.is_empty() {
                        for token in [Token::SiteKey(0), Token::Member(0), Token::Missing] {
                            out.push(self.attempt(
                                Caller::Visitor(Key::Site(0), token),
                                route,
                                &ids,
                                Expect::Refused,
                            ));
                        }
                    }
                }
                Api::Public => {
                    for caller in [
                        Caller::Nobody,
                        Caller::Member { tenant: 0, role: 0 },
                        Caller::SdkHeaders(0, 0),
                    ] {
                        out.push(self.attempt(caller, route, &[], Expect::Own(Visible::Nothing)));
                    }
                }
            }
        }
        out
    }

    /// Creating requests in the caller's own scope that name tenant V's
    /// and site V1's things: V's creating requests replayed with their
    /// `Idempotency-Key` by every other member of both tenants, and V1's
    /// visitors' `anonymousId` on the other sites.
    fn own_scope(&self) -> Vec<Attempt> {
        let w = self.world;
        let mut out = Vec::new();
        for route in ROUTES
            .iter()
            .filter(|r| r.slots().is_empty() && r.method == "POST")
        {
            match route.api {
                Api::Dashboard => {
                    for tenant in 0..w.tenants.len() {
                        for role in 0..ROLES.len() {
                            if (tenant, role) == (0, 0) {
                                // V's owner made them: a retry, not an attempt.
                                continue;
                            }
                            out.push(self.attempt(
                                Caller::Member { tenant, role },
                                route,
                                &[],
                                Expect::Own(Visible::Tenant(tenant)),
                            ));
                        }
                    }
                }
                Api::Sdk => {
                    for site in 1..w.sites.len() {
                        for (session, fx) in w.sessions.iter().enumerate() {
                            if fx.site != 0 {
                                continue;
                            }
                            let ids: Vec<&Id> = self
                                .ids
                                .iter()
                                .filter(|id| {
                                    id.kind == Kind::Session && id.session == Some(session)
                                })
                                .collect();
                            let mut attempt = self.attempt(
                                Caller::Visitor(Key::Site(site), Token::Missing),
                                route,
                                &ids,
                                Expect::Own(Visible::Site(site)),
                            );
                            attempt.shown =
                                format!("{} as <{}'s visitor>", attempt.shown, fx.label);
                            out.push(attempt);
                        }
                    }
                }
                Api::Public => {}
            }
        }
        out
    }

    /// What is wrong with the answer to an attempt, if anything.
    fn judge(
        &self,
        attempt: &Attempt,
        reply: &Reply,
        oracle: impl Fn(&str) -> (u16, String),
    ) -> Option<String> {
        let code = reply.body["code"].as_str().unwrap_or("").to_string();
        let problem = reply.content_type == "application/problem+json";
        let verdict = match &attempt.expect {
            Expect::NotFound { oracle: path } => {
                if reply.status == 404 && code == "NOT_FOUND" && problem {
                    None
                } else if reply.status == 403 && code == "ROLE_TOO_WEAK" && path.is_some() {
                    let path = path.as_deref().unwrap_or_default();
                    let (status, unknown_code) = oracle(path);
                    (status != 403 || unknown_code != code).then(|| {
                        format!("403 {code}, but an unknown id gets {status} {unknown_code}")
                    })
                } else {
                    Some("expected 404 NOT_FOUND".into())
                }
            }
            Expect::Refused => {
                let refused = (reply.status == 401
                    && matches!(
                        code.as_str(),
                        "MISSING_CREDENTIALS" | "INVALID_CREDENTIALS" | "SESSION_TOKEN_REQUIRED"
                    ))
                    || (reply.status == 404 && code == "NOT_FOUND");
                (!(refused && problem)).then(|| "expected 401 (or 404 NOT_FOUND)".to_string())
            }
            Expect::Own(_) => (reply.status >= 500).then(|| "a server error".to_string()),
        };
        if let Some(verdict) = verdict {
            return Some(format!("{} {code}: {verdict}", reply.status));
        }
        if reply.header("Idempotency-Replayed").is_some() {
            return Some(format!("{} replayed another's answer", reply.status));
        }
        let request = format!(
            "{} {} {} {:?}",
            attempt.path,
            attempt.body.as_deref().unwrap_or_default(),
            attempt.idempotency_key.as_deref().unwrap_or_default(),
            self.headers(attempt.caller)
        );
        let answer = format!("{} {:?}", reply.body, reply.headers);
        let shown: Vec<&str> = self
            .markers
            .iter()
            .filter(|m| {
                let visible = match attempt.expect {
                    Expect::Own(Visible::Tenant(t)) => m.tenant == t,
                    Expect::Own(Visible::Site(s)) => m.site == Some(s) && m.session.is_none(),
                    _ => false,
                };
                !visible && !request.contains(&m.text) && answer.contains(&m.text)
            })
            .map(|m| m.text.as_str())
            .collect();
        (!shown.is_empty()).then(|| format!("{} shows {shown:?}", reply.status))
    }

    /// Sends every attempt (from a few threads) and returns what went
    /// wrong, in the attempts' order.
    fn run(&self, app: &TestApp, attempts: &[Attempt]) -> Vec<String> {
        let next = AtomicUsize::new(0);
        let found = Mutex::new(BTreeMap::new());
        let oracles: Mutex<HashMap<OracleKey, (u16, String)>> = Mutex::new(HashMap::new());
        let agent = ureq::AgentBuilder::new()
            .timeout(std::time::Duration::from_secs(30))
            .build();
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(attempt) = attempts.get(i) else {
                        break;
                    };
                    let headers = self.headers(attempt.caller);
                    let send = |path: &str| {
                        let mut all: Vec<(&str, &str)> = headers
                            .iter()
                            .map(|(n, v)| (n.as_str(), v.as_str()))
                            .collect();
                        if let Some(key) = &attempt.idempotency_key {
                            all.push(("Idempotency-Key", key));
                        }
                        send_to(
                            &agent,
                            &app.base,
                            attempt.route.method,
                            path,
                            attempt.body.as_deref(),
                            &all,
                        )
                    };
                    let reply = send(&attempt.path);
                    let answer = format!(
                        "{} {}",
                        reply.status,
                        reply.body["code"].as_str().unwrap_or_default()
                    );
                    *self.answers.lock().unwrap().entry(answer).or_default() += 1;
                    let oracle = |path: &str| {
                        let key = (
                            self.who(attempt.caller),
                            attempt.route.method.to_string(),
                            path.to_string(),
                        );
                        if let Some(known) = oracles.lock().unwrap().get(&key) {
                            return known.clone();
                        }
                        let reply = send(path);
                        let answer = (
                            reply.status,
                            reply.body["code"].as_str().unwrap_or("").to_string(),
                        );
                        oracles.lock().unwrap().insert(key, answer.clone());
                        answer
                    };
                    if let Some(wrong) = self.judge(attempt, &reply, oracle) {
                        found.lock().unwrap().insert(
                            i,
                            format!(
                                "{}: {} {} -> {wrong}",
                                self.who(attempt.caller),
                                attempt.route.method,
                                attempt.shown
                            ),
                        );
                    }
                });
            }
        });
        found.into_inner().unwrap().into_values().collect()
    }
}

/// The parts of two snapshots that differ, by name.
fn changed(
    before: &BTreeMap<String, Value>,
    after: &BTreeMap<String, Value>,
    parts: &[&str],
) -> Vec<String> {
    before
        .iter()
        .filter(|(name, _)| parts.is_empty() || parts.contains(&name.as_str()))
        .filter(|(name, value)| after.get(*name) != Some(*value))
        .map(|(name, value)| {
            format!(
                "{name} changed:\n  before: {value}\n  after:  {}",
                after.get(name).cloned().unwrap_or(Value::Null)
            )
        })
        .collect()
}

/// Fails unless every read of a snapshot was a 200 and every key still
/// resolves to its site, so an unchanged snapshot is not one of errors.
#[track_caller]
fn assert_readable(snapshot: &BTreeMap<String, Value>) {
    fn walk(name: &str, value: &Value, bad: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let (Some(status), true) = (map.get("httpStatus"), map.contains_key("answer")) {
                    if status != 200 {
                        bad.push(format!("{name}: {value}"));
                    }
                }
                if map.get("keyResolvesTo").is_some_and(Value::is_null) {
                    bad.push(format!("{name}: its key resolves to nothing"));
                }
                for (key, inner) in map {
                    walk(&format!("{name}.{key}"), inner, bad);
                }
            }
            Value::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    walk(&format!("{name}[{i}]"), inner, bad);
                }
            }
            _ => {}
        }
    }
    let mut bad = Vec::new();
    for (name, value) in snapshot {
        walk(name, value, &mut bad);
    }
    assert!(
        bad.is_empty(),
        "the world does not read back:\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_id_of_another_tenant_site_or_session_reaches_anything_on_any_route() {
    let app = app!();
    let started = Instant::now();

    // The route table is the server's: every documented path and method.
    let openapi = app.get("/api/v1/openapi.json", None);
    assert_eq!(openapi.status, 200, "{}", openapi.body);
    let documented = documented(&openapi.body);
    let tabled = tabled();
    let missing: Vec<_> = documented.difference(&tabled).collect();
    let stale: Vec<_> = tabled.difference(&documented).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "the isolation matrix's route table must list every documented route:\n\
         documented, not in the table: {missing:?}\nin the table, not documented: {stale:?}"
    );

    let world = World::build(&app);
    let matrix = Matrix::new(&world);
    let built = started.elapsed();

    // Phase 1: what must change nothing at all.
    let refusals = matrix.refusals();
    let before = world.snapshot(&app);
    assert_readable(&before);
    let mut leaks = matrix.run(&app, &refusals);
    let after = world.snapshot(&app);
    leaks.extend(changed(&before, &after, &[]));

    // Phase 2: the callers' own creating requests, naming V's things; V
    // and its site V1 must read the same.
    let own = matrix.own_scope();
    leaks.extend(matrix.run(&app, &own));
    let last = world.snapshot(&app);
    leaks.extend(changed(&after, &last, &["tenant V", "site V1"]));

    let attempts = refusals.len() + own.len();
    let routes: std::collections::BTreeSet<String> = refusals
        .iter()
        .chain(&own)
        .map(|a| a.route.describe())
        .collect();
    println!(
        "isolation matrix: {attempts} attempts on {} routes, {} leaks ({:.1} s, world built in {:.1} s)",
        routes.len(),
        leaks.len(),
        started.elapsed().as_secs_f64(),
        built.as_secs_f64()
    );
    let answers = matrix.answers.lock().unwrap().clone();
    println!("isolation matrix: answers {answers:?}");
    assert_eq!(routes.len(), ROUTES.len(), "every route is tried");
    assert!(
        attempts >= AT_LEAST,
        "the isolation matrix shrank to {attempts} attempts (at least {AT_LEAST})"
    );
    assert!(
        leaks.is_empty(),
        "{} of {attempts} attempts leaked or changed something:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}
