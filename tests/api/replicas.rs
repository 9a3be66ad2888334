//! Two chatdesk server processes on one PostgreSQL database, as replicas
//! behind a load balancer run: server A is the test's own [`TestApp`],
//! server B a second OS process (`chatdesk serve`) on the same database.
//!
//! Run with `CHATDESK_TEST_BACKEND=postgres` (SQLite is one process's
//! embedded database, so these tests skip there); a PostgreSQL that cannot
//! be reached skips them too, unless `CI=true`, as for every HTTP test.

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::answers::{all_at_once, set_widget};
use crate::helpers::{send_to, OpenSite, Reply, TestApp, Visitor};

/// How long a second server process may take to answer `/healthz`.
const STARTUP: Duration = Duration::from_secs(60);
/// How often a replica's config is polled for a change.
const POLL: Duration = Duration::from_millis(50);
/// How long a dashboard change may take to reach the other replica (the
/// product says about a second).
const DASHBOARD_DEADLINE: Duration = Duration::from_secs(2);
/// How long a change made with the CLI may take to reach every replica.
const CLI_DEADLINE: Duration = Duration::from_secs(10);

/// A `chatdesk serve` process on the test's database; killed when dropped.
struct Replica {
    child: Child,
    base: String,
    agent: ureq::Agent,
    log: PathBuf,
}

/// A port no one listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

impl Replica {
    /// Starts `chatdesk serve` on `app`'s database and waits for `/healthz`.
    fn start(app: &TestApp) -> Replica {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "chatdesk-replica-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let out = File::create(&log).expect("create the replica's log");
        let err = out.try_clone().expect("share the replica's log");
        let child = Command::new(env!("CARGO_BIN_EXE_chatdesk"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", &app.config.database_url)
            .env("DATABASE_POOL_SIZE", "4")
            .env("HTTP_WORKERS", "2")
            .env("RUST_LOG", "warn")
            .env_remove("LLM_BASE_URL")
            .env_remove("LLM_API_KEY")
            .env_remove("LLM_MODEL")
            .env_remove("SMTP_URL")
            .env_remove("RESEND_API_KEY")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("chatdesk serve starts");
        let mut replica = Replica {
            child,
            base: format!("http://127.0.0.1:{port}"),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(30))
                .build(),
            log,
        };
        replica.wait_until_healthy();
        replica
    }

    fn wait_until_healthy(&mut self) {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the second server exited ({status}) before it was healthy:\n{}",
                    self.log_text()
                );
            }
            let health = self
                .agent
                .get(&format!("{}/healthz", self.base))
                .timeout(Duration::from_secs(2))
                .call();
            if health.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(
                started.elapsed() < STARTUP,
                "the second server was not healthy within {STARTUP:?}:\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a request with these headers and optional JSON body.
    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let body = body.map(Value::to_string);
        send_to(
            &self.agent,
            &self.base,
            method,
            path,
            body.as_deref(),
            headers,
        )
    }

    /// Sends an SDK request.
    fn sdk(&self, method: &str, path: &str, visitor: Visitor, body: Option<&Value>) -> Reply {
        self.send(method, path, body, &visitor.headers())
    }

    /// Asks a question in a session.
    fn ask(&self, key: &str, session: &(String, String), question: &str) -> Reply {
        self.sdk(
            "POST",
            &format!("/api/v1/sdk/chat/sessions/{}/messages", session.0),
            Visitor::key(key).session(&session.1),
            Some(&json!({ "content": question })),
        )
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Server A (this process) and server B (a second process) on one
/// PostgreSQL database, or `None` when the tests do not run on PostgreSQL.
/// Declare them in this order, so B stops before A drops the database.
fn two_replicas() -> Option<(TestApp, Replica)> {
    if std::env::var("CHATDESK_TEST_BACKEND").as_deref() != Ok("postgres") {
        eprintln!(
            "skipping: replicas share a PostgreSQL database (CHATDESK_TEST_BACKEND=postgres)"
        );
        return None;
    }
    let app = TestApp::try_spawn()?;
    let replica = Replica::start(&app);
    Some((app, replica))
}

/// `GET /sdk/chat/config` with a key on server A.
fn config_a(app: &TestApp, key: &str) -> Reply {
    app.sdk("GET", "/api/v1/sdk/chat/config", Visitor::key(key), None)
}

/// `GET /sdk/chat/config` with a key on server B.
fn config_b(b: &Replica, key: &str) -> Reply {
    b.sdk("GET", "/api/v1/sdk/chat/config", Visitor::key(key), None)
}

/// What the config says: `OPEN`, or the reason it is closed.
fn gate_of(reply: &Reply) -> String {
    if reply.status != 200 {
        return format!("HTTP {}", reply.status);
    }
    match reply.body["enabled"].as_bool() {
        Some(true) => "OPEN".to_string(),
        _ => reply.body["reason"].as_str().unwrap_or("?").to_string(),
    }
}

/// Polls `check` every [`POLL`] until it holds or `deadline` passes;
/// returns how long it took, or what it last saw.
fn until(
    deadline: Duration,
    mut check: impl FnMut() -> Result<(), String>,
) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let seen = check();
        if seen.is_ok() {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= deadline {
            return Err(seen.err().unwrap_or_default());
        }
        thread::sleep(POLL);
    }
}

/// Polls B's config until it says `expected`, within `deadline`; prints
/// the delay observed.
#[track_caller]
fn b_shows(b: &Replica, key: &str, expected: &str, change: &str, deadline: Duration) {
    let waited = until(deadline, || {
        let seen = gate_of(&config_b(b, key));
        if seen == expected {
            Ok(())
        } else {
            Err(seen)
        }
    });
    match waited {
        Ok(delay) => eprintln!("{change}: server B showed {expected} after {delay:?}"),
        Err(seen) => {
            panic!("{change}: server B still showed {seen} after {deadline:?}, expected {expected}")
        }
    }
}

/// Opens a visitor's session on server B.
fn open_session_b(b: &Replica, key: &str, anonymous_id: &str) -> Reply {
    b.sdk(
        "POST",
        "/api/v1/sdk/chat/sessions",
        Visitor::key(key),
        Some(&json!({ "anonymousId": anonymous_id })),
    )
}

#[test]
fn the_rate_limit_holds_across_two_servers() {
    let Some((app, b)) = two_replicas() else {
        return;
    };
    let site: OpenSite = app.open_site("replica-limit.example");
    let widget = set_widget(&app, &site, &json!({"rateLimitPerSession": 6}));
    assert_eq!(widget["rateLimitPerSession"], 6);
    app.content(
        &site.token,
        &site.site_id,
        &json!({"kind": "FLOW", "name": "Export invoices", "status": "PUBLISHED"}),
    );
    let visitor = app.visit(&site.key, "replica-visitor");

    let outcomes = all_at_once(20, |i| {
        let question = format!("export invoices #{i}");
        let reply = if i % 2 == 0 {
            app.ask(&site.key, &visitor, &question)
        } else {
            b.ask(&site.key, &visitor, &question)
        };
        match reply.status {
            201 => {
                assert_eq!(
                    reply.body["assistantMessage"]["status"], "MATCHED_CONTENT",
                    "{}",
                    reply.body
                );
                201
            }
            429 => {
                reply.assert_problem(429, "RATE_LIMITED");
                429
            }
            other => panic!("question {i}: {other} {}", reply.body),
        }
    });
    let answered = outcomes.iter().filter(|&&s| s == 201).count();
    let limited = outcomes.iter().filter(|&&s| s == 429).count();
    assert_eq!((answered, limited), (6, 14), "{outcomes:?}");

    let listed = b.sdk(
        "GET",
        &format!("/api/v1/sdk/chat/sessions/{}/messages?limit=100", visitor.0),
        Visitor::key(&site.key).session(&visitor.1),
        None,
    );
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 12);
}

#[test]
fn dashboard_changes_on_one_server_reach_the_other_within_a_second() {
    let Some((app, b)) = two_replicas() else {
        return;
    };
    let site = app.open_site("replica-config.example");
    // Both servers have the open config cached.
    assert_eq!(gate_of(&config_a(&app, &site.key)), "OPEN");
    assert_eq!(gate_of(&config_b(&b, &site.key)), "OPEN");
    let widget_path = format!("/api/v1/sites/{}/widget", site.site_id);

    let paused = app.post_empty(&format!("{widget_path}/pause"), Some(&site.token));
    assert_eq!(paused.status, 200, "{}", paused.body);
    assert_eq!(
        gate_of(&config_a(&app, &site.key)),
        "WIDGET_PAUSED",
        "at once on the server that made the change"
    );
    b_shows(&b, &site.key, "WIDGET_PAUSED", "pause", DASHBOARD_DEADLINE);

    let published = app.post_empty(&format!("{widget_path}/publish"), Some(&site.token));
    assert_eq!(published.status, 200, "{}", published.body);
    assert_eq!(gate_of(&config_a(&app, &site.key)), "OPEN");
    b_shows(&b, &site.key, "OPEN", "publish", DASHBOARD_DEADLINE);

    // A new key: the old one stops opening sessions on B at once (that
    // checks the database), and its config goes within the deadline.
    let regenerated = app.post_empty(
        &format!("/api/v1/sites/{}/api-key", site.site_id),
        Some(&site.token),
    );
    assert_eq!(regenerated.status, 200, "{}", regenerated.body);
    let new_key = regenerated.body["apiKey"].as_str().unwrap().to_string();
    open_session_b(&b, &site.key, "old-key-visitor").assert_problem(401, "INVALID_CREDENTIALS");
    let old = config_a(&app, &site.key);
    assert_eq!(old.status, 401, "at once on A: {}", old.body);
    b_shows(
        &b,
        &site.key,
        "HTTP 401",
        "key regeneration",
        DASHBOARD_DEADLINE,
    );
    assert_eq!(
        gate_of(&config_b(&b, &new_key)),
        "OPEN",
        "the new key at once"
    );
    let opened = open_session_b(&b, &new_key, "new-key-visitor");
    assert_eq!(opened.status, 201, "{}", opened.body);
}

#[test]
fn a_plan_changed_with_the_cli_locks_the_chat_on_both_servers_within_ten_seconds() {
    let Some((app, b)) = two_replicas() else {
        return;
    };
    let site = app.open_site("replica-cli.example");
    assert_eq!(gate_of(&config_a(&app, &site.key)), "OPEN");
    assert_eq!(gate_of(&config_b(&b, &site.key)), "OPEN");

    let out = Command::new(env!("CARGO_BIN_EXE_chatdesk"))
        .args(["tenant", "set-plan", &site.tenant.id, "STARTER"])
        .env("DATABASE_URL", &app.config.database_url)
        .env_remove("RUST_LOG")
        .output()
        .expect("chatdesk runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let started = Instant::now();
    let mut delays: [Option<Duration>; 2] = [None, None];
    let waited = until(CLI_DEADLINE, || {
        let seen = [
            gate_of(&config_a(&app, &site.key)),
            gate_of(&config_b(&b, &site.key)),
        ];
        for (delay, seen) in delays.iter_mut().zip(&seen) {
            if delay.is_none() && seen == "FEATURE_LOCKED" {
                *delay = Some(started.elapsed());
            }
        }
        if delays.iter().all(Option::is_some) {
            Ok(())
        } else {
            Err(format!("A {}, B {}", seen[0], seen[1]))
        }
    });
    eprintln!(
        "set-plan STARTER: FEATURE_LOCKED on A after {:?}, on B after {:?}",
        delays[0], delays[1]
    );
    if let Err(seen) = waited {
        panic!("after {CLI_DEADLINE:?} the servers showed {seen}, expected FEATURE_LOCKED on both");
    }
    for opened in [
        app.sdk(
            "POST",
            "/api/v1/sdk/chat/sessions",
            Visitor::key(&site.key),
            Some(&json!({"anonymousId": "starter-visitor"})),
        ),
        open_session_b(&b, &site.key, "starter-visitor"),
    ] {
        opened.assert_problem(403, "FEATURE_LOCKED");
    }
}
