//! `TestApp`: the real server on an ephemeral port over a fresh database,
//! with typed request helpers.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use chatdesk::config::Config;
use chatdesk::Application;
use chatdesk_domain::tenant::Plan;
use chatdesk_store::testing::TestDatabase;
use serde_json::{json, Value};

/// A response as a client sees it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts a problem+json error with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(
            self.content_type, "application/problem+json",
            "body: {}",
            self.body
        );
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert_eq!(self.body["status"], status);
        assert!(
            self.body["title"].is_string()
                && self.body["detail"].is_string()
                && self.body["type"].is_string()
        );
    }

    /// Asserts a 422 naming exactly these fields.
    #[track_caller]
    pub fn assert_invalid(&self, fields: &[&str]) {
        self.assert_problem(422, "VALIDATION_FAILED");
        let named: Vec<&str> = self.body["errors"]
            .as_array()
            .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(named, fields, "body: {}", self.body);
    }
}

/// A tenant made for a test, with its owner's token.
#[derive(Debug, Clone)]
pub struct TestTenant {
    pub id: String,
    pub owner_id: String,
    pub token: String,
}

/// The server under test; stopped when dropped.
pub struct TestApp {
    pub base: String,
    pub config: Config,
    handle: actix_web::dev::ServerHandle,
    agent: ureq::Agent,
    _db: TestDatabase,
}

/// The backend the HTTP tests run on: `CHATDESK_TEST_BACKEND=postgres`
/// selects PostgreSQL, anything else SQLite.
fn test_database() -> Option<TestDatabase> {
    match std::env::var("CHATDESK_TEST_BACKEND").as_deref() {
        Ok("postgres") => TestDatabase::postgres(),
        _ => Some(TestDatabase::sqlite()),
    }
}

impl TestApp {
    /// Starts the server, or `None` when its database is unavailable and
    /// skipping is allowed (outside CI).
    pub fn try_spawn() -> Option<TestApp> {
        Self::try_spawn_with(|_| {})
    }

    /// Like [`TestApp::try_spawn`], changing the config first.
    pub fn try_spawn_with(change: impl FnOnce(&mut Config)) -> Option<TestApp> {
        let db = test_database()?;
        let mut config = Config::from_env(Some(db.url().to_string())).expect("config");
        config.smtp_url = None;
        config.resend_api_key = None;
        config.pool_size = 4;
        config.workers = Some(2);
        change(&mut config);
        let (tx, rx) = mpsc::channel();
        let thread_config = config.clone();
        thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                match Application::build(&thread_config, "127.0.0.1:0") {
                    Ok(app) => {
                        let _ = tx.send(Ok((app.port(), app.handle())));
                        let _ = app.run().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        });
        let (port, handle) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server started in time")
            .expect("server built");
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .build();
        Some(TestApp {
            base: format!("http://127.0.0.1:{port}"),
            config,
            handle,
            agent,
            _db: db,
        })
    }

    /// The use cases over a second connection to the same database, for
    /// set-up (tenants are made by the CLI, not the API).
    pub fn tenancy(&self) -> chatdesk_domain::services::TenancyService {
        let store = chatdesk::open_store(&self.config).expect("store");
        chatdesk::tenancy(&std::sync::Arc::new(store))
    }

    /// A store over the same database, to check what the API cannot show.
    pub fn store(&self) -> chatdesk_store::Store {
        chatdesk::open_store(&self.config).expect("store")
    }

    /// Makes a tenant with an owner.
    pub fn tenant(&self, plan: Plan) -> TestTenant {
        let n = uuid::Uuid::new_v4().simple().to_string();
        let created = self
            .tenancy()
            .create_tenant(
                &format!("Tenant {}", &n[..8]),
                plan,
                &format!("owner-{n}@example.com"),
            )
            .expect("tenant");
        TestTenant {
            id: created.tenant.id.to_string(),
            owner_id: created.owner.id.to_string(),
            token: created.token,
        }
    }

    /// Adds a member of `role` to the tenant of `owner_token`; returns its token.
    pub fn member(&self, owner_token: &str, role: &str) -> String {
        self.member_with_id(owner_token, role).1
    }

    /// Sends `n` requests at once, one a thread; returns each reply's
    /// status and problem code (empty on success), in request order.
    pub fn in_parallel(
        &self,
        n: usize,
        request: impl Fn(usize) -> Reply + Sync,
    ) -> Vec<(u16, String)> {
        thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let request = &request;
                    s.spawn(move || {
                        let reply = request(i);
                        (
                            reply.status,
                            reply.body["code"].as_str().unwrap_or("").to_string(),
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("request thread"))
                .collect()
        })
    }

    /// Sends a request with optional bearer token, JSON body and headers.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let bearer = token.map(|token| format!("Bearer {token}"));
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(bearer) = &bearer {
            all.push(("Authorization", bearer));
        }
        send_to(&self.agent, &self.base, method, path, body, &all)
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send("GET", path, token, None, &[])
    }

    pub fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.send("DELETE", path, token, None, &[])
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.send("POST", path, token, Some(&body.to_string()), &[])
    }

    pub fn post_empty(&self, path: &str, token: Option<&str>) -> Reply {
        self.send("POST", path, token, None, &[])
    }

    pub fn put(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.send("PUT", path, token, Some(&body.to_string()), &[])
    }

    pub fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.send("PATCH", path, token, Some(&body.to_string()), &[])
    }

    /// Creates a site; returns its JSON (`site`, `apiKey`).
    pub fn site(&self, token: &str, domain: &str) -> Value {
        let reply = self.post(
            "/api/v1/sites",
            Some(token),
            &json!({"domain": domain, "name": "Docs", "allowSubdomains": false}),
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body
    }

    /// Creates a site whose mapping is COMPLETED; returns its id.
    pub fn mapped_site(&self, token: &str, domain: &str) -> String {
        let id = self.site(token, domain)["site"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let reply = self.put(
            &format!("/api/v1/sites/{id}/mapping"),
            Some(token),
            &json!({"status": "COMPLETED"}),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        id
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop the server before its database goes away.
        let handle = self.handle.clone();
        let _ = thread::spawn(move || {
            actix_web::rt::System::new().block_on(handle.stop(false));
        })
        .join();
    }
}

/// Sends a request to the server at `base` with these headers and an
/// optional JSON body, and reads its answer (a status of any kind is an
/// answer; a transport failure fails the test).
pub fn send_to(
    agent: &ureq::Agent,
    base: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = agent.request(method, &format!("{base}{path}"));
    for (name, value) in headers {
        req = req.set(name, value);
    }
    let result = match body {
        Some(body) => req
            .set("Content-Type", "application/json")
            .send_string(body),
        None => req.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {base}{path}: {e}"),
    };
    let status = response.status();
    let content_type = response.header("content-type").unwrap_or("").to_string();
    let headers = response
        .headers_names()
        .into_iter()
        .filter_map(|n| response.header(&n).map(|v| (n.clone(), v.to_string())))
        .collect();
    let text = response.into_string().expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply {
        status,
        content_type,
        headers,
        body,
    }
}

/// Starts the app or returns from the test when its database is skipped.
#[macro_export]
macro_rules! app {
    () => {
        match $crate::helpers::TestApp::try_spawn() {
            Some(app) => app,
            None => return,
        }
    };
}

/// A minimal valid widget body for `PUT /sites/{siteId}/widget`.
pub fn widget_body() -> Value {
    json!({"welcomeMessage": "Hi! How can we help?", "position": "BOTTOM_RIGHT"})
}

impl TestApp {
    /// Adds a member of `role` through the API; returns its id and token.
    pub fn member_with_id(&self, owner_token: &str, role: &str) -> (String, String) {
        let n = uuid::Uuid::new_v4().simple().to_string();
        let reply = self.post(
            "/api/v1/members",
            Some(owner_token),
            &json!({"email": format!("{role}-{n}@example.com").to_lowercase(), "role": role}),
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
        (
            reply.body["member"]["id"].as_str().expect("id").to_string(),
            reply.body["token"].as_str().expect("token").to_string(),
        )
    }

    /// Creates a site; returns its id.
    pub fn site_id(&self, token: &str, domain: &str) -> String {
        self.site(token, domain)["site"]["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// Sets a site's mapping status (the token must be ADMIN or stronger).
    pub fn set_mapping(&self, token: &str, site_id: &str, status: &str) {
        let reply = self.put(
            &format!("/api/v1/sites/{site_id}/mapping"),
            Some(token),
            &json!({"status": status}),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
    }

    /// Creates (or updates) a site's widget with [`widget_body`]; returns it.
    pub fn widget(&self, token: &str, site_id: &str) -> Value {
        let reply = self.put(
            &format!("/api/v1/sites/{site_id}/widget"),
            Some(token),
            &widget_body(),
        );
        assert!(reply.status == 201 || reply.status == 200, "{}", reply.body);
        reply.body
    }

    /// Adds a content item to a site; returns it.
    pub fn content(&self, token: &str, site_id: &str, body: &Value) -> Value {
        let reply = self.post(
            &format!("/api/v1/sites/{site_id}/content"),
            Some(token),
            body,
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body
    }

    /// Changes a tenant's plan behind the API's back (as the CLI does).
    pub fn set_plan(&self, tenant: &TestTenant, plan: Plan) {
        self.tenancy()
            .set_plan(tenant.id.parse().expect("tenant id"), plan)
            .expect("set plan");
    }
}

/// `value` with every timestamp (a string field whose name ends in `At`)
/// cut to whole microseconds, to compare bodies whatever precision each
/// answer shows.
pub fn at_micros(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, v)| {
                    let v = match v.as_str() {
                        Some(s) if key.ends_with("At") => Value::String(micros(s)),
                        _ => at_micros(v),
                    };
                    (key.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(at_micros).collect()),
        other => other.clone(),
    }
}

/// An RFC 3339 UTC instant with its fraction cut or padded to six digits.
pub fn micros(instant: &str) -> String {
    let bare = instant.trim_end_matches('Z').trim_end_matches("+00:00");
    let (whole, fraction) = bare.split_once('.').unwrap_or((bare, ""));
    let mut digits: String = fraction.chars().take(6).collect();
    while digits.len() < 6 {
        digits.push('0');
    }
    format!("{whole}.{digits}Z")
}

/// Runs `a` and `b` on two threads released together; returns both results.
pub fn at_once<A: Send, B: Send>(
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    let start = std::sync::Barrier::new(2);
    thread::scope(|s| {
        let first = s.spawn(|| {
            start.wait();
            a()
        });
        let second = s.spawn(|| {
            start.wait();
            b()
        });
        (
            first.join().expect("first thread"),
            second.join().expect("second thread"),
        )
    })
}

/// The fewest rounds a race test runs, however slow the machine: the time
/// budget only stops rounds beyond these.
pub const MIN_ROUNDS: usize = 30;

/// Rounds of a race test: 100 (or `CHATDESK_RACE_ROUNDS`, for a longer
/// soak; never fewer than [`MIN_ROUNDS`]). The first [`MIN_ROUNDS`] always
/// run; further rounds run while they fit in 8 s (80 ms a round when more
/// are asked for). Each round's check is recorded, and [`Rounds::finish`]
/// fails the test naming every round whose check failed.
pub struct Rounds {
    name: &'static str,
    max: usize,
    budget: Duration,
    started: std::time::Instant,
    done: usize,
    failures: Vec<String>,
}

impl Rounds {
    pub fn new(name: &'static str) -> Rounds {
        let max: usize = std::env::var("CHATDESK_RACE_ROUNDS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100)
            .max(MIN_ROUNDS);
        let per_round = Duration::from_millis(80);
        let budget =
            (per_round * u32::try_from(max).unwrap_or(u32::MAX)).max(Duration::from_secs(8));
        Rounds {
            name,
            max,
            budget,
            started: std::time::Instant::now(),
            done: 0,
            failures: Vec::new(),
        }
    }

    /// The next round's number, or `None` when the rounds are used up, or
    /// when at least [`MIN_ROUNDS`] ran and the time is used up.
    pub fn next_round(&mut self) -> Option<usize> {
        let more = self.done < MIN_ROUNDS
            || (self.done < self.max && self.started.elapsed() < self.budget);
        more.then_some(self.done)
    }

    /// Records the outcome of the round [`Rounds::next_round`] gave.
    pub fn record(&mut self, outcome: Result<(), String>) {
        if let Err(failure) = outcome {
            self.failures
                .push(format!("round {}: {failure}", self.done));
        }
        self.done += 1;
    }

    /// Fails unless every round held and at least [`MIN_ROUNDS`] ran.
    #[track_caller]
    pub fn finish(self) {
        assert!(
            self.done >= MIN_ROUNDS,
            "{}: only {} rounds ran, at least {MIN_ROUNDS} are required",
            self.name,
            self.done
        );
        assert!(
            self.failures.is_empty(),
            "{}: {} of {} rounds failed:\n{}",
            self.name,
            self.failures.len(),
            self.done,
            self.failures.join("\n")
        );
        eprintln!(
            "{}: {} rounds held in {:?}",
            self.name,
            self.done,
            self.started.elapsed()
        );
    }
}

/// `Err(message)` unless `actual == expected`.
pub fn expect_eq<T: PartialEq + std::fmt::Debug>(
    what: &str,
    actual: T,
    expected: T,
) -> Result<(), String> {
    if actual == expected {
        Ok(())
    } else {
        Err(format!("{what}: {actual:?}, expected {expected:?}"))
    }
}

/// A PRO tenant's mapped site with a published widget, ready for visitors.
#[derive(Debug, Clone)]
pub struct OpenSite {
    /// The tenant.
    pub tenant: TestTenant,
    /// The owner's dashboard token.
    pub token: String,
    /// The site's id.
    pub site_id: String,
    /// The site's API key.
    pub key: String,
    /// The site's domain (browser calls come from `https://{domain}`).
    pub domain: String,
}

impl OpenSite {
    /// The site's own origin.
    pub fn origin(&self) -> String {
        format!("https://{}", self.domain)
    }
}

/// An SDK call: the site key, a session token and an `Origin`, each optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct Visitor<'a> {
    pub key: Option<&'a str>,
    pub session: Option<&'a str>,
    pub origin: Option<&'a str>,
}

impl<'a> Visitor<'a> {
    /// Calls with this site key only.
    pub fn key(key: &'a str) -> Self {
        Visitor {
            key: Some(key),
            ..Visitor::default()
        }
    }

    /// The same call with a session token.
    pub fn session(self, token: &'a str) -> Self {
        Visitor {
            session: Some(token),
            ..self
        }
    }

    /// The call's headers.
    pub fn headers(&self) -> Vec<(&'a str, &'a str)> {
        [
            ("X-Chatdesk-Site-Key", self.key),
            ("X-Chatdesk-Session", self.session),
            ("Origin", self.origin),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect()
    }

    /// The same call from a browser on `origin`.
    pub fn origin(self, origin: &'a str) -> Self {
        Visitor {
            origin: Some(origin),
            ..self
        }
    }
}

impl TestApp {
    /// A PRO tenant's site on `domain`, mapped, with a published widget.
    pub fn open_site(&self, domain: &str) -> OpenSite {
        let tenant = self.tenant(Plan::Pro);
        let created = self.site(&tenant.token, domain);
        let site_id = created["site"]["id"].as_str().expect("id").to_string();
        let key = created["apiKey"].as_str().expect("apiKey").to_string();
        self.set_mapping(&tenant.token, &site_id, "COMPLETED");
        self.widget(&tenant.token, &site_id);
        let reply = self.post_empty(
            &format!("/api/v1/sites/{site_id}/widget/publish"),
            Some(&tenant.token),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        OpenSite {
            token: tenant.token.clone(),
            tenant,
            site_id,
            key,
            domain: domain.to_string(),
        }
    }

    /// Sends an SDK request (`body` as JSON when given).
    pub fn sdk(&self, method: &str, path: &str, visitor: Visitor, body: Option<&Value>) -> Reply {
        let body = body.map(Value::to_string);
        self.send(method, path, None, body.as_deref(), &visitor.headers())
    }

    /// Opens (or resumes) an anonymous visitor's session; returns the
    /// session id and a token for it.
    pub fn visit(&self, key: &str, anonymous_id: &str) -> (String, String) {
        let reply = self.sdk(
            "POST",
            "/api/v1/sdk/chat/sessions",
            Visitor::key(key),
            Some(&json!({ "anonymousId": anonymous_id })),
        );
        assert!(reply.status == 201 || reply.status == 200, "{}", reply.body);
        (
            reply.body["sessionId"]
                .as_str()
                .expect("sessionId")
                .to_string(),
            reply.body["sessionToken"]
                .as_str()
                .expect("sessionToken")
                .to_string(),
        )
    }

    /// Asks a question in a session.
    pub fn ask(&self, key: &str, session: &(String, String), question: &str) -> Reply {
        self.sdk(
            "POST",
            &format!("/api/v1/sdk/chat/sessions/{}/messages", session.0),
            Visitor::key(key).session(&session.1),
            Some(&json!({ "content": question })),
        )
    }

    /// Votes on a message with a session's token.
    pub fn vote(&self, key: &str, token: &str, message_id: &str, vote: &str) -> Reply {
        self.sdk(
            "PUT",
            &format!("/api/v1/sdk/chat/messages/{message_id}/feedback"),
            Visitor::key(key).session(token),
            Some(&json!({ "vote": vote })),
        )
    }
}

impl TestApp {
    /// Stops this server (its delivery worker stops with it) and starts a
    /// new one on the same database, with the config changed by `change`,
    /// as an operator restarting chatdesk would; `base` is the new
    /// server's address.
    pub fn restart_with(&mut self, change: impl FnOnce(&mut Config)) {
        let old = self.handle.clone();
        let _ = thread::spawn(move || {
            actix_web::rt::System::new().block_on(old.stop(false));
        })
        .join();
        change(&mut self.config);
        let (tx, rx) = mpsc::channel();
        let thread_config = self.config.clone();
        thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                match Application::build(&thread_config, "127.0.0.1:0") {
                    Ok(app) => {
                        let _ = tx.send(Ok((app.port(), app.handle())));
                        let _ = app.run().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        });
        let (port, handle) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server restarted in time")
            .expect("server rebuilt");
        self.base = format!("http://127.0.0.1:{port}");
        self.handle = handle;
    }
}
