//! `make run`'s demo: `chatdesk serve --demo` run as a process, as `make
//! run` runs it, on the test's database. An empty database gets the demo;
//! a second start issues new credentials and adds nothing; a database in
//! use is never seeded or changed; the demo page embeds the widget under a
//! strict Content-Security-Policy.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chatdesk_domain::tenant::Plan;
use serde_json::Value;

use crate::app;
use crate::helpers::{send_to, Reply, TestApp};

/// What the demo page's origin is when served on its default address.
const PAGE_ORIGIN: &str = "http://localhost:8081";

/// A running `chatdesk serve --demo`; killed when dropped.
struct DemoProcess {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    /// The API's base URL, as printed.
    base: String,
    agent: ureq::Agent,
}

fn collect(stream: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut text = into.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
}

impl DemoProcess {
    /// Starts the demo on `database_url` with both servers on free ports,
    /// and waits until it has printed what to do.
    fn start(database_url: &str) -> DemoProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chatdesk"));
        command
            .args([
                "serve",
                "--demo",
                "--bind",
                "127.0.0.1:0",
                "--demo-bind",
                "127.0.0.1:0",
            ])
            .env("DATABASE_URL", database_url)
            .env("HTTP_WORKERS", "1")
            .env("DATABASE_POOL_SIZE", "4")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in [
            "CHATDESK_DEMO",
            "DEMO_BIND_ADDR",
            "BIND_ADDR",
            "SMTP_URL",
            "RESEND_API_KEY",
            "LLM_BASE_URL",
            "LLM_API_KEY",
            "LLM_MODEL",
            "LOG_FORMAT",
            "RUST_LOG",
        ] {
            command.env_remove(name);
        }
        let mut child = command.spawn().expect("chatdesk starts");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        collect(child.stdout.take().expect("stdout"), stdout.clone());
        collect(child.stderr.take().expect("stderr"), stderr.clone());
        let deadline = Instant::now() + Duration::from_secs(120);
        let printed = loop {
            let out = stdout.lock().unwrap().clone();
            let err = stderr.lock().unwrap().clone();
            if let Some(done) = [&out, &err]
                .into_iter()
                .find(|text| text.contains("stop with Ctrl-C"))
            {
                break done.clone();
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("chatdesk serve --demo ended ({status}): {err}");
            }
            assert!(Instant::now() < deadline, "no banner in time: {err}");
            thread::sleep(Duration::from_millis(50));
        };
        let base = after(&printed, "chatdesk is serving on ")
            .expect("the API's address is printed")
            .trim_end_matches(['.', ','])
            .to_string();
        DemoProcess {
            child,
            stdout,
            stderr,
            base,
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(30))
                .build(),
        }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The owner's token from the printed `Authorization: Bearer …` line.
    fn token(&self) -> String {
        after(&self.stdout(), "Authorization: Bearer ").expect("the owner's token is printed")
    }

    /// The printed demo site's key.
    fn key(&self) -> String {
        after(&self.stdout(), "The demo site's widget key: ").expect("the site's key is printed")
    }

    /// The printed `SITE_ID=…`.
    fn site_id(&self) -> String {
        after(&self.stdout(), "SITE_ID=").expect("the site's id is printed")
    }

    /// The printed URL of the demo page.
    fn page_url(&self) -> String {
        after(&self.stdout(), "A customer's page with the widget: ")
            .expect("the demo page's URL is printed")
    }

    fn get(&self, path: &str, token: &str) -> Reply {
        let bearer = format!("Bearer {token}");
        send_to(
            &self.agent,
            &self.base,
            "GET",
            path,
            None,
            &[("Authorization", &bearer)],
        )
    }

    /// The widget's config as the demo page's browser asks for it.
    fn widget_config(&self, key: &str) -> Reply {
        send_to(
            &self.agent,
            &self.base,
            "GET",
            "/api/v1/sdk/chat/config",
            None,
            &[("X-Chatdesk-Site-Key", key), ("Origin", PAGE_ORIGIN)],
        )
    }

    /// A path of the demo page's server (reached on 127.0.0.1, where it
    /// listens; the printed URL names it `localhost`).
    fn page(&self, path: &str) -> Reply {
        let url = self.page_url();
        let port = url
            .trim_start_matches("http://localhost:")
            .trim_end_matches('/');
        send_to(
            &self.agent,
            &format!("http://127.0.0.1:{port}"),
            "GET",
            path,
            None,
            &[],
        )
    }
}

impl Drop for DemoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The word that follows `marker` in `text`.
fn after(text: &str, marker: &str) -> Option<String> {
    let start = text.find(marker)? + marker.len();
    text[start..]
        .split_whitespace()
        .next()
        .map(|word| word.trim_matches('"').to_string())
}

fn items(reply: &Reply) -> Vec<Value> {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["items"].as_array().expect("items").clone()
}

/// How many of each thing the demo's site holds, as its owner sees them.
fn counts(demo: &DemoProcess, token: &str, site: &str) -> [usize; 5] {
    [
        items(&demo.get("/api/v1/sites", token)).len(),
        items(&demo.get("/api/v1/members", token)).len(),
        items(&demo.get(&format!("/api/v1/sites/{site}/content"), token)).len(),
        items(&demo.get(&format!("/api/v1/sites/{site}/conversations"), token)).len(),
        items(&demo.get(&format!("/api/v1/sites/{site}/tickets"), token)).len(),
    ]
}

fn tenant_count(app: &TestApp) -> usize {
    let store = std::sync::Arc::new(app.store());
    chatdesk::operator(&store)
        .oldest_tenants(100)
        .expect("tenants")
        .len()
}

#[test]
fn the_demo_seeds_an_empty_database_with_conversations_votes_and_a_ticket() {
    let app = app!();
    assert_eq!(tenant_count(&app), 0);
    let demo = DemoProcess::start(&app.config.database_url);
    let token = demo.token();
    let site = demo.site_id();

    let me = demo.get("/api/v1/me", &token);
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["tenant"]["name"], "Demo Outfitters");
    assert_eq!(me.body["tenant"]["plan"], "PRO");
    assert_eq!(me.body["tenant"]["credits"], 500);
    assert_eq!(me.body["member"]["email"], "owner@demo.chatdesk.test");
    assert_eq!(me.body["member"]["role"], "OWNER");

    let sites = items(&demo.get("/api/v1/sites", &token));
    assert_eq!(sites.len(), 1, "{sites:?}");
    assert_eq!(sites[0]["id"], site.as_str());
    assert_eq!(sites[0]["domain"], "localhost");
    assert_eq!(sites[0]["mappingStatus"], "COMPLETED");

    let widget = demo.get(&format!("/api/v1/sites/{site}/widget"), &token);
    assert_eq!(widget.status, 200, "{}", widget.body);
    assert_eq!(widget.body["status"], "ACTIVE");
    assert!(widget.body["publishedAt"].is_string(), "{}", widget.body);
    assert!(!widget.body["welcomeMessage"].as_str().unwrap().is_empty());
    assert!(!widget.body["disclaimer"].as_str().unwrap().is_empty());

    let guides = items(&demo.get(
        &format!("/api/v1/sites/{site}/content?status=PUBLISHED"),
        &token,
    ));
    let named: Vec<(String, String)> = guides
        .iter()
        .map(|g| (g["kind"].to_string(), g["name"].to_string()))
        .collect();
    assert_eq!(guides.len(), 5, "{named:?}");
    assert!(named.contains(&("\"FLOW\"".into(), "\"Track my order\"".into())));
    assert!(named.contains(&("\"TOOLTIP\"".into(), "\"Size guide\"".into())));

    // The Conversations tab: three visitors, votes either way, one ticket.
    let conversations = items(&demo.get(&format!("/api/v1/sites/{site}/conversations"), &token));
    assert_eq!(conversations.len(), 3, "{conversations:?}");
    let ups: i64 = conversations
        .iter()
        .map(|c| c["upVotes"].as_i64().unwrap())
        .sum();
    let downs: i64 = conversations
        .iter()
        .map(|c| c["downVotes"].as_i64().unwrap())
        .sum();
    assert_eq!((ups, downs), (2, 2), "{conversations:?}");
    let happy = items(&demo.get(
        &format!("/api/v1/sites/{site}/conversations?feedback=UP_ONLY"),
        &token,
    ));
    assert_eq!(happy.len(), 1);
    assert_eq!(happy[0]["externalId"], "customer-1001");
    let escalated = items(&demo.get(
        &format!("/api/v1/sites/{site}/conversations?escalated=true"),
        &token,
    ));
    assert_eq!(escalated.len(), 1, "{escalated:?}");
    let ticket_id = escalated[0]["ticketId"]
        .as_str()
        .expect("ticket id")
        .to_string();

    let detail = demo.get(
        &format!(
            "/api/v1/sites/{site}/conversations/{}",
            escalated[0]["id"].as_str().unwrap()
        ),
        &token,
    );
    assert_eq!(detail.status, 200, "{}", detail.body);
    let messages = detail.body["messages"].as_array().unwrap();
    assert_eq!(messages[1]["role"], "ASSISTANT");
    assert_eq!(messages[1]["status"], "MATCHED_CONTENT");
    assert_eq!(messages[1]["contentRef"]["name"], "Return an item");
    assert_eq!(messages[1]["feedback"], "DOWN");
    assert_eq!(detail.body["ticket"]["id"], ticket_id.as_str());

    let tickets = items(&demo.get(&format!("/api/v1/sites/{site}/tickets"), &token));
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    assert_eq!(tickets[0]["id"], ticket_id.as_str());
    assert_eq!(tickets[0]["status"], "OPEN");
    assert_eq!(tickets[0]["email"], "ben@example.com");
    assert_eq!(tickets[0]["subject"], "The return label does not print");

    // The widget opens for the demo page's origin, across origins.
    let config = demo.widget_config(&demo.key());
    assert_eq!(config.status, 200, "{}", config.body);
    assert_eq!(config.body["enabled"], true, "{}", config.body);
    assert_eq!(
        config.header("access-control-allow-origin"),
        Some(PAGE_ORIGIN)
    );
    assert!(demo.page_url().starts_with("http://localhost:"));
}

#[test]
fn the_demo_page_embeds_the_widget_under_a_strict_policy() {
    let app = app!();
    let demo = DemoProcess::start(&app.config.database_url);
    let base = demo.base.clone();
    let key = demo.key();

    let page = demo.page("/");
    assert_eq!(page.status, 200);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    let html = page.body.as_str().expect("an HTML body");
    let snippet =
        format!("<script src=\"{base}/widget.js\" data-site-key=\"{key}\" async></script>");
    assert!(html.contains(&snippet), "{html}");
    assert!(
        html.contains("<script src=\"/demo.js\"></script>"),
        "{html}"
    );
    // Every script is a file: none has a body.
    assert_eq!(html.matches("<script").count(), 2, "{html}");
    assert_eq!(html.matches("></script>").count(), 2, "{html}");

    let policy = page
        .header("content-security-policy")
        .expect("a CSP header");
    let directives: Vec<&str> = policy.split(';').map(str::trim).collect();
    for expected in [
        "default-src 'none'".to_string(),
        format!("script-src 'self' {base}"),
        format!("connect-src {base}"),
        "style-src 'self'".to_string(),
        "base-uri 'none'".to_string(),
        "frame-ancestors 'none'".to_string(),
    ] {
        assert!(
            directives.contains(&expected.as_str()),
            "{expected} in {policy}"
        );
    }
    assert!(!policy.contains("unsafe"), "{policy}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));

    let script = demo.page("/demo.js");
    assert_eq!(script.status, 200);
    assert!(
        script.content_type.starts_with("text/javascript"),
        "{}",
        script.content_type
    );
    let script = script.body.as_str().expect("a script");
    assert!(script.contains("'on', 'content'"), "{script}");
    assert!(script.contains("'on', 'ready'"), "{script}");
    let style = demo.page("/demo.css");
    assert_eq!(style.status, 200);
    assert!(
        style.content_type.starts_with("text/css"),
        "{}",
        style.content_type
    );
    assert_eq!(demo.page("/favicon.ico").status, 204);
    assert_eq!(demo.page("/elsewhere").status, 404);
}

#[test]
fn a_second_start_issues_new_credentials_and_adds_nothing() {
    let app = app!();
    let first = DemoProcess::start(&app.config.database_url);
    let (old_token, old_key, site) = (first.token(), first.key(), first.site_id());
    let before = counts(&first, &old_token, &site);
    assert_eq!(before, [1, 1, 5, 3, 1]);
    drop(first);

    let second = DemoProcess::start(&app.config.database_url);
    assert!(
        second.stdout().contains("issued its owner a new token"),
        "{}",
        second.stdout()
    );
    let (token, key) = (second.token(), second.key());
    assert_ne!(token, old_token);
    assert_ne!(key, old_key);
    assert_eq!(second.site_id(), site);
    assert_eq!(second.get("/api/v1/me", &token).status, 200);
    second
        .get("/api/v1/me", &old_token)
        .assert_problem(401, "INVALID_CREDENTIALS");
    assert_eq!(second.widget_config(&old_key).status, 401);
    let config = second.widget_config(&key);
    assert_eq!(config.body["enabled"], true, "{}", config.body);
    assert_eq!(counts(&second, &token, &site), before);
    assert_eq!(tenant_count(&app), 1);
    let page = second.page("/");
    assert!(
        page.body
            .as_str()
            .unwrap()
            .contains(&format!("data-site-key=\"{key}\"")),
        "{}",
        page.body
    );
}

/// A database holding another tenant is never seeded or changed.
#[track_caller]
fn assert_untouched(demo: &DemoProcess) {
    let err = demo.stderr();
    assert!(err.contains("nothing was seeded or changed"), "{err}");
    let out = demo.stdout();
    assert!(!out.contains("Bearer cd_pat_"), "{out}");
    assert!(!out.contains("cd_live_"), "{out}");
    assert!(!out.contains("http://localhost:"), "{out}");
}

#[test]
fn a_database_in_use_is_never_seeded_or_changed() {
    let app = app!();
    // A tenant named like the demo's, but not the demo's owner.
    let created = app
        .tenancy()
        .create_tenant("Demo Outfitters", Plan::Pro, "boss@shop.test")
        .expect("tenant");
    let token = created.token;
    let made = app.site(&token, "localhost");
    let site = made["site"]["id"].as_str().unwrap().to_string();
    let before = [
        app.get("/api/v1/me", Some(&token)).body,
        app.get("/api/v1/sites", Some(&token)).body,
        app.get("/api/v1/members", Some(&token)).body,
        app.get(&format!("/api/v1/sites/{site}/content"), Some(&token))
            .body,
    ];

    let demo = DemoProcess::start(&app.config.database_url);
    assert_untouched(&demo);
    assert_eq!(tenant_count(&app), 1);
    let after = [
        demo.get("/api/v1/me", &token).body,
        demo.get("/api/v1/sites", &token).body,
        demo.get("/api/v1/members", &token).body,
        demo.get(&format!("/api/v1/sites/{site}/content"), &token)
            .body,
    ];
    assert_eq!(after, before);
}

#[test]
fn the_demo_beside_another_tenant_is_left_as_it_is() {
    let app = app!();
    let first = DemoProcess::start(&app.config.database_url);
    let (token, key, site) = (first.token(), first.key(), first.site_id());
    let before = counts(&first, &token, &site);
    drop(first);
    // The README's walk-through makes its own tenant beside the demo's.
    let acme = app.tenant(Plan::Pro);

    let second = DemoProcess::start(&app.config.database_url);
    assert_untouched(&second);
    // The demo's credentials of the first start still work.
    assert_eq!(second.get("/api/v1/me", &token).status, 200);
    assert_eq!(second.widget_config(&key).body["enabled"], true);
    assert_eq!(counts(&second, &token, &site), before);
    assert_eq!(second.get("/api/v1/me", &acme.token).status, 200);
    assert_eq!(tenant_count(&app), 2);
}
