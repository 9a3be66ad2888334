//! How chatdesk answers a visitor's question, as the visitor sees it (the
//! two messages of `POST /sdk/chat/sessions/{id}/messages`) and as the
//! dashboard sees it afterwards (the content library, the credits).
//!
//! The order of the rules (crates/domain/src/services/visitor.rs): a
//! published item whose name is in the question; else the item the lexical
//! ranker finds relevant; else, with a model, a new Flow drafted for this
//! visitor (one credit); without a model, a SYSTEM notice. The model is an
//! OpenAI-compatible fake ([`FakeModelServer`]) that records what it is
//! sent.

use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use chatdesk::config::LlmSettings;
use chatdesk_domain::services::{GENERATION_FAILED_NOTICE, NO_MODEL_NOTICE};
use chatdesk_llm::testing::{Behaviour, FakeGuide, FakeModelServer, RequestKind};
use serde_json::{json, Value};

use crate::app;
use crate::helpers::{widget_body, OpenSite, Reply, TestApp, Visitor};

/// The model name the server is configured with.
const MODEL: &str = "fake-model";
/// The model API key the server is configured with.
const MODEL_KEY: &str = "sk-test";

/// The server with the fake model configured (800 ms per call, lexical
/// ranker), or `None` when its database is skipped.
fn with_model(fake: &FakeModelServer) -> Option<TestApp> {
    TestApp::try_spawn_with(|config| {
        config.llm = Some(LlmSettings {
            base_url: fake.base_url(),
            api_key: Some(MODEL_KEY.into()),
            model: MODEL.into(),
            timeout: Duration::from_millis(800),
            model_ranks: false,
        });
    })
}

/// The tenant's credits as the dashboard shows them (`GET /me`).
fn credits(app: &TestApp, site: &OpenSite) -> i64 {
    let me = app.get("/api/v1/me", Some(&site.token));
    assert_eq!(me.status, 200, "{}", me.body);
    me.body["tenant"]["credits"]
        .as_i64()
        .unwrap_or_else(|| panic!("credits in {}", me.body))
}

/// An open site (PRO tenant, mapped, published widget) whose tenant has
/// exactly `amount` credits. A new tenant starts with none.
fn site_with_credits(app: &TestApp, domain: &str, amount: i64) -> OpenSite {
    let site = app.open_site(domain);
    assert_eq!(credits(app, &site), 0, "a new tenant starts with 0 credits");
    if amount > 0 {
        app.tenancy()
            .add_credits(site.tenant.id.parse().unwrap(), amount)
            .unwrap();
    }
    assert_eq!(credits(app, &site), amount);
    site
}

/// Adds a content item (`status` DRAFT or PUBLISHED); returns its id.
fn add_content(
    app: &TestApp,
    site: &OpenSite,
    kind: &str,
    name: &str,
    description: &str,
    status: &str,
) -> String {
    let item = app.content(
        &site.token,
        &site.site_id,
        &json!({"kind": kind, "name": name, "description": description, "status": status}),
    );
    assert_eq!(item["generated"], false, "{item}");
    item["id"].as_str().unwrap().to_string()
}

/// Adds a PUBLISHED Flow; returns its id.
fn flow(app: &TestApp, site: &OpenSite, name: &str, description: &str) -> String {
    add_content(app, site, "FLOW", name, description, "PUBLISHED")
}

/// The site's content library as the dashboard lists it.
fn library(app: &TestApp, site: &OpenSite) -> Vec<Value> {
    let reply = app.get(
        &format!("/api/v1/sites/{}/content?limit=100", site.site_id),
        Some(&site.token),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body["nextCursor"].is_null(), "{}", reply.body);
    reply.body["items"].as_array().unwrap().clone()
}

/// Saves the widget through the dashboard API with these settings beside
/// the required ones ([`widget_body`]); the others keep their values.
pub(crate) fn set_widget(app: &TestApp, site: &OpenSite, settings: &Value) -> Value {
    let mut body = widget_body();
    if let (Some(body), Some(settings)) = (body.as_object_mut(), settings.as_object()) {
        body.extend(settings.clone());
    }
    let reply = app.put(
        &format!("/api/v1/sites/{}/widget", site.site_id),
        Some(&site.token),
        &body,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// The session's messages as the widget lists them, oldest first.
fn messages(app: &TestApp, key: &str, session: &(String, String)) -> Vec<Value> {
    let reply = app.sdk(
        "GET",
        &format!("/api/v1/sdk/chat/sessions/{}/messages?limit=100", session.0),
        Visitor::key(key).session(&session.1),
        None,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["items"].as_array().unwrap().clone()
}

/// The reply to a question that was answered (201): checks the visitor's
/// own message and returns the reply message.
#[track_caller]
fn answer(reply: &Reply, question: &str) -> Value {
    assert_eq!(reply.status, 201, "{}", reply.body);
    let asked = &reply.body["userMessage"];
    assert_eq!(asked["role"], "USER", "{asked}");
    assert_eq!(asked["status"], "COMPLETED", "{asked}");
    assert_eq!(asked["content"], question.trim(), "{asked}");
    assert!(asked["contentRef"].is_null(), "{asked}");
    let answered = reply.body["assistantMessage"].clone();
    assert!(answered["id"].is_string(), "{answered}");
    assert_ne!(answered["id"], asked["id"]);
    answered
}

/// Asks `question` in `session` and returns the reply message.
#[track_caller]
fn ask(app: &TestApp, site: &OpenSite, session: &(String, String), question: &str) -> Value {
    answer(&app.ask(&site.key, session, question), question)
}

/// Asserts a reply pointing at an existing item, found without the model.
#[track_caller]
fn assert_matched(reply: &Value, kind: &str, id: &str, name: &str) {
    assert_eq!(reply["role"], "ASSISTANT", "{reply}");
    assert_eq!(reply["status"], "MATCHED_CONTENT", "{reply}");
    assert_eq!(
        reply["contentRef"],
        json!({"kind": kind, "id": id, "name": name}),
        "{reply}"
    );
    assert!(reply["model"].is_null(), "no model wrote it: {reply}");
    assert_eq!(reply["tokensUsed"], 0, "{reply}");
    assert!(
        reply["content"].as_str().unwrap().contains(name),
        "the reply names the item: {reply}"
    );
}

/// Asserts the SYSTEM notice given when nothing matches and no model is
/// configured.
#[track_caller]
fn assert_no_model_notice(reply: &Value) {
    assert_eq!(reply["role"], "SYSTEM", "{reply}");
    assert_eq!(reply["status"], "COMPLETED", "{reply}");
    assert!(reply["contentRef"].is_null(), "{reply}");
    assert!(reply["model"].is_null(), "{reply}");
    assert_eq!(reply["content"], NO_MODEL_NOTICE, "{reply}");
    assert!(
        NO_MODEL_NOTICE.contains("not set up"),
        "the notice says generation is not set up"
    );
}

/// Runs `f(0..n)` on `n` threads released together; the results in order.
pub(crate) fn all_at_once<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let start = Barrier::new(n);
    thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (f, start) = (&f, &start);
                s.spawn(move || {
                    start.wait();
                    f(i)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("request thread"))
            .collect()
    })
}

/// How many times each value occurs, sorted.
fn tally(values: impl IntoIterator<Item = String>) -> Vec<(String, usize)> {
    let mut counts = std::collections::BTreeMap::new();
    for value in values {
        *counts.entry(value).or_insert(0) += 1;
    }
    counts.into_iter().collect()
}

#[test]
fn a_published_name_in_the_question_is_the_answer_and_the_model_is_not_called() {
    let fake = FakeModelServer::start();
    let Some(app) = with_model(&fake) else { return };
    let site = site_with_credits(&app, "names.example", 5);
    let export_invoices = flow(
        &app,
        &site,
        "Export invoices",
        "Download every invoice as a CSV file",
    );
    let export = add_content(
        &app,
        &site,
        "TOOLTIP",
        "Export",
        "The export button",
        "PUBLISHED",
    );
    // A draft is never an answer, however long its name.
    add_content(&app, &site, "FLOW", "Export invoices as CSV", "", "DRAFT");
    let visitor = app.visit(&site.key, "names-visitor");

    // Case and spacing aside; both names occur, the longest wins.
    let reply = ask(&app, &site, &visitor, "how do I EXPORT   invoices?");
    assert_matched(&reply, "FLOW", &export_invoices, "Export invoices");
    // The draft's longer name is in the question; the published one wins.
    let reply = ask(&app, &site, &visitor, "Export invoices as CSV, please");
    assert_matched(&reply, "FLOW", &export_invoices, "Export invoices");
    // Only the Tooltip's name.
    let reply = ask(&app, &site, &visitor, "Where is the Export button?");
    assert_matched(&reply, "TOOLTIP", &export, "Export");

    assert_eq!(fake.requests(), [], "the model is never called");
    assert_eq!(credits(&app, &site), 5, "matching spends no credits");
    let items = library(&app, &site);
    assert_eq!(items.len(), 3, "nothing was made: {items:?}");
    assert!(items.iter().all(|i| i["generated"] == false), "{items:?}");

    // The widget's timeline shows the same answers.
    let timeline = messages(&app, &site.key, &visitor);
    let shown: Vec<(&str, &str, &str)> = timeline
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap(),
                m["status"].as_str().unwrap(),
                m["contentRef"]["name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("USER", "COMPLETED", ""),
            ("ASSISTANT", "MATCHED_CONTENT", "Export invoices"),
            ("USER", "COMPLETED", ""),
            ("ASSISTANT", "MATCHED_CONTENT", "Export invoices"),
            ("USER", "COMPLETED", ""),
            ("ASSISTANT", "MATCHED_CONTENT", "Export"),
        ]
    );
}

#[test]
fn a_near_miss_of_a_name_is_not_a_name_match() {
    // No model: what is not matched gets the SYSTEM notice.
    let app = app!();
    let site = site_with_credits(&app, "near-misses.example", 2);
    let export_invoices = flow(&app, &site, "Export invoices", "");
    // Its description repeats the question's words, so the ranker prefers
    // it to "Export invoices" — unless that name matched first.
    let invoice_exporting = flow(
        &app,
        &site,
        "Invoice exporting",
        "Exporting invoices to a spreadsheet, exporting invoices for your accountant",
    );
    add_content(
        &app,
        &site,
        "TOOLTIP",
        "Billing",
        "Your plan and payment method",
        "PUBLISHED",
    );
    flow(
        &app,
        &site,
        "Invite a teammate",
        "Add people to your workspace",
    );
    let visitor = app.visit(&site.key, "near-miss-visitor");

    // The name itself matches by name …
    let reply = ask(&app, &site, &visitor, "how do I export invoices?");
    assert_matched(&reply, "FLOW", &export_invoices, "Export invoices");
    // … "exporting invoices" is not the name: the ranker decides, and it
    // picks the other Flow.
    let reply = ask(&app, &site, &visitor, "exporting invoices?");
    assert_matched(&reply, "FLOW", &invoice_exporting, "Invoice exporting");
    // "Billing" is not in "rebilling", and no word is shared: no match.
    let reply = ask(&app, &site, &visitor, "I was charged for rebilling");
    assert_no_model_notice(&reply);
    let reply = ask(&app, &site, &visitor, "billinghistory");
    assert_no_model_notice(&reply);

    assert_eq!(credits(&app, &site), 2);
    assert_eq!(library(&app, &site).len(), 4);
}

#[test]
fn descriptive_words_find_an_item_by_rank_without_the_model() {
    let fake = FakeModelServer::start();
    let Some(app) = with_model(&fake) else { return };
    let site = site_with_credits(&app, "ranking.example", 1);
    let billing = flow(
        &app,
        &site,
        "Billing history",
        "download past invoices and bills",
    );
    flow(
        &app,
        &site,
        "Invite a teammate",
        "Add people to your workspace",
    );
    flow(
        &app,
        &site,
        "Change plan",
        "Upgrade or downgrade your subscription",
    );
    add_content(
        &app,
        &site,
        "TOOLTIP",
        "Profile",
        "Your name and avatar",
        "PUBLISHED",
    );
    let visitor = app.visit(&site.key, "ranking-visitor");

    let reply = ask(&app, &site, &visitor, "where can I download my past bills");
    assert_matched(&reply, "FLOW", &billing, "Billing history");
    assert_eq!(fake.requests(), [], "the lexical ranker calls no model");
    assert_eq!(credits(&app, &site), 1);

    // An unrelated question matches nothing: a Flow is drafted for it.
    let reply = ask(&app, &site, &visitor, "how do I reset my password");
    assert_eq!(reply["status"], "GENERATED_CONTENT", "{reply}");
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].kind, RequestKind::Generate);
    assert_eq!(credits(&app, &site), 0);
}

#[test]
fn without_a_model_no_match_is_a_system_notice_and_nothing_is_made_up() {
    let app = app!();
    let site = site_with_credits(&app, "no-model.example", 3);
    flow(
        &app,
        &site,
        "Export invoices",
        "Download every invoice as a CSV file",
    );
    let visitor = app.visit(&site.key, "no-model-visitor");

    let reply = ask(&app, &site, &visitor, "How do I reset my password?");
    assert_no_model_notice(&reply);

    assert_eq!(credits(&app, &site), 3, "no credits spent");
    let items = library(&app, &site);
    assert_eq!(items.len(), 1, "no content created: {items:?}");
    let timeline = messages(&app, &site.key, &visitor);
    assert_eq!(timeline.len(), 2, "{timeline:?}");
    assert_eq!(timeline[1]["role"], "SYSTEM");
    assert_eq!(timeline[1]["content"], NO_MODEL_NOTICE);
}

#[test]
fn no_match_generates_a_flow_shown_only_to_the_visitor_who_asked() {
    let fake = FakeModelServer::start();
    let question = "How do I cancel my subscription?";
    fake.on_generate(
        "cancel my subscription",
        FakeGuide::new(
            "Cancel my subscription",
            "Cancel your plan from the Billing page",
            "Open Settings, then Billing, and press Cancel plan.",
        )
        .with_tokens(77)
        .into(),
    );
    let Some(app) = with_model(&fake) else { return };
    let site = site_with_credits(&app, "generate.example", 3);
    let persona = "Answer as Ada, the cheerful librarian.";
    let widget = set_widget(&app, &site, &json!({"persona": persona}));
    assert_eq!(widget["persona"], persona);
    flow(
        &app,
        &site,
        "Export invoices",
        "Download every invoice as a CSV file",
    );
    let first = app.visit(&site.key, "first-visitor");

    let reply = ask(&app, &site, &first, question);
    assert_eq!(reply["role"], "ASSISTANT", "{reply}");
    assert_eq!(reply["status"], "GENERATED_CONTENT", "{reply}");
    assert_eq!(
        reply["content"],
        "Open Settings, then Billing, and press Cancel plan."
    );
    assert_eq!(reply["model"], MODEL);
    assert_eq!(reply["tokensUsed"], 77);
    assert_eq!(reply["contentRef"]["kind"], "FLOW", "{reply}");
    assert_eq!(reply["contentRef"]["name"], "Cancel my subscription");
    let generated = reply["contentRef"]["id"].as_str().unwrap().to_string();

    // What the model was sent.
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.kind, RequestKind::Generate);
    assert_eq!(
        sent.authorization.as_deref(),
        Some("Bearer sk-test"),
        "the API key as a bearer token"
    );
    assert_eq!(sent.model(), Some(MODEL));
    assert_eq!(sent.question(), Some(question));
    let system = sent.system_prompt().unwrap();
    assert!(system.contains(persona), "the persona is sent: {system}");
    assert!(system.contains("generate.example"), "{system}");

    // The dashboard sees a published Flow held back under "No users".
    let items = library(&app, &site);
    assert_eq!(items.len(), 2, "{items:?}");
    let item = items
        .iter()
        .find(|i| i["id"] == generated.as_str())
        .unwrap();
    assert_eq!(item["kind"], "FLOW");
    assert_eq!(item["name"], "Cancel my subscription");
    assert_eq!(
        item["description"],
        "Cancel your plan from the Billing page"
    );
    assert_eq!(item["status"], "PUBLISHED");
    assert_eq!(item["audiences"], json!(["No users"]));
    assert_eq!(item["generated"], true);
    assert_eq!(item["siteId"], site.site_id.as_str());
    // It keeps where it came from and the model's answer.
    assert_eq!(item["origin"]["sessionId"], first.0.as_str(), "{item}");
    assert_eq!(item["origin"]["messageId"], reply["id"], "{item}");
    assert_eq!(item["origin"]["answer"], reply["content"], "{item}");
    assert_eq!(credits(&app, &site), 2, "one credit spent");

    // The same visitor asking again gets the new Flow by its name.
    let reply = ask(&app, &site, &first, question);
    assert_matched(&reply, "FLOW", &generated, "Cancel my subscription");
    assert_eq!(fake.requests().len(), 1, "no new model call");
    assert_eq!(credits(&app, &site), 2);

    // Another visitor is not shown it ("No users"): a Flow is drafted for
    // them too.
    let second = app.visit(&site.key, "second-visitor");
    let reply = ask(&app, &site, &second, question);
    assert_eq!(reply["status"], "GENERATED_CONTENT", "{reply}");
    let theirs = reply["contentRef"]["id"].as_str().unwrap().to_string();
    assert_ne!(theirs, generated);
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(credits(&app, &site), 1);
    let items = library(&app, &site);
    let made: Vec<&Value> = items.iter().filter(|i| i["generated"] == true).collect();
    assert_eq!(made.len(), 2, "{items:?}");
    assert!(made.iter().all(|i| i["audiences"] == json!(["No users"])));

    // Re-targeted (the "No users" audience removed), the first Flow is
    // shown to everybody.
    let retargeted = app.patch(
        &format!("/api/v1/sites/{}/content/{generated}", site.site_id),
        Some(&site.token),
        &json!({"audiences": []}),
    );
    assert_eq!(retargeted.status, 200, "{}", retargeted.body);
    let third = app.visit(&site.key, "third-visitor");
    let reply = ask(&app, &site, &third, question);
    assert_matched(&reply, "FLOW", &generated, "Cancel my subscription");
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(credits(&app, &site), 1);
}

#[test]
fn with_the_credits_spent_the_visitor_gets_the_widgets_message() {
    let fake = FakeModelServer::start();
    let Some(app) = with_model(&fake) else { return };
    let site = site_with_credits(&app, "credits.example", 1);
    let message = "Our assistant is resting today. Please write to help@credits.example.";
    set_widget(&app, &site, &json!({"insufficientCreditsMessage": message}));
    let visitor = app.visit(&site.key, "credits-visitor");

    let reply = ask(&app, &site, &visitor, "How do I reset my password?");
    assert_eq!(reply["status"], "GENERATED_CONTENT", "{reply}");
    assert_eq!(credits(&app, &site), 0);

    for (who, question) in [
        ("credits-visitor", "Where is the invoice archive?"),
        ("another-visitor", "Can I change the colour theme?"),
    ] {
        let session = app.visit(&site.key, who);
        let reply = ask(&app, &site, &session, question);
        assert_eq!(reply["role"], "ASSISTANT", "{reply}");
        assert_eq!(reply["status"], "INSUFFICIENT_CREDITS", "{reply}");
        assert_eq!(reply["content"], message);
        assert!(reply["contentRef"].is_null(), "{reply}");
        assert_eq!(credits(&app, &site), 0, "never below zero");
    }
    assert_eq!(fake.requests().len(), 1, "the model is called once in all");
    let made = library(&app, &site);
    assert_eq!(made.len(), 1, "{made:?}");
}

#[test]
fn parallel_questions_spend_exactly_the_credits_there_are() {
    let fake = FakeModelServer::start();
    let Some(app) = with_model(&fake) else { return };
    let site = site_with_credits(&app, "parallel-credits.example", 3);
    let sessions: Vec<(String, String)> = (0..8)
        .map(|i| app.visit(&site.key, &format!("parallel-visitor-{i}")))
        .collect();

    let replies = all_at_once(8, |i| {
        let question = format!("Question {i}: how do I calibrate sensor number {i}?");
        let reply = app.ask(&site.key, &sessions[i], &question);
        answer(&reply, &question)["status"]
            .as_str()
            .unwrap()
            .to_string()
    });
    assert_eq!(
        tally(replies),
        [
            ("GENERATED_CONTENT".to_string(), 3),
            ("INSUFFICIENT_CREDITS".to_string(), 5),
        ]
    );
    assert_eq!(credits(&app, &site), 0);
    assert_eq!(fake.requests().len(), 3);
    let made = library(&app, &site);
    assert_eq!(made.len(), 3, "{made:?}");
}

#[test]
fn a_model_failure_is_a_failed_reply_and_the_credit_comes_back() {
    let fake = FakeModelServer::start();
    let Some(app) = with_model(&fake) else { return };
    let site = site_with_credits(&app, "failures.example", 2);
    let cases = [
        ("HTTP 500", Behaviour::error(500, "the model is overloaded")),
        ("HTTP 401", Behaviour::error(401, "invalid API key")),
        ("a body that is not JSON", Behaviour::not_json()),
        ("JSON without choices", Behaviour::no_choices()),
        (
            "a guide without a name",
            Behaviour::content(&json!({"description": "d", "answer": "a"}).to_string()),
        ),
        (
            "a guide with an empty name",
            Behaviour::guide(" ", "d", "a"),
        ),
        (
            "prose, not JSON",
            Behaviour::content("Sure! Here is a guide."),
        ),
        (
            "a reply after the 800 ms timeout",
            Behaviour::delayed(Duration::from_secs(3), Behaviour::Auto),
        ),
        ("a hang-up", Behaviour::Hangup),
    ];
    for (i, (case, behaviour)) in cases.into_iter().enumerate() {
        fake.set_default(behaviour);
        let session = app.visit(&site.key, &format!("failure-visitor-{i}"));
        let question = format!("Case {i}: how do I recalibrate the flux capacitor?");
        let started = Instant::now();
        let reply = app.ask(&site.key, &session, &question);
        let took = started.elapsed();
        let reply = answer(&reply, &question);
        assert_eq!(reply["role"], "ASSISTANT", "{case}: {reply}");
        assert_eq!(reply["status"], "FAILED", "{case}: {reply}");
        assert_eq!(reply["content"], GENERATION_FAILED_NOTICE, "{case}");
        assert!(reply["contentRef"].is_null(), "{case}: {reply}");
        // (Had the server waited out the 3 s delay, the reply would be a
        // generated Flow, not FAILED.)
        eprintln!("{case}: FAILED after {took:?}");
        assert_eq!(
            fake.wait_for(i + 1, Duration::from_secs(5)).len(),
            i + 1,
            "{case}: the model was asked once"
        );
        assert_eq!(credits(&app, &site), 2, "{case}: the credit is refunded");
        // Stored as the visitor saw it, not left ANALYZING.
        let timeline = messages(&app, &site.key, &session);
        assert_eq!(timeline.len(), 2, "{case}: {timeline:?}");
        assert_eq!(timeline[1]["status"], "FAILED", "{case}");
    }
    let made = library(&app, &site);
    assert!(made.is_empty(), "no content created: {made:?}");
}

/// A site with one Flow every question below matches by name (no model
/// needed) and this rate limit per session.
fn limited_site(app: &TestApp, domain: &str, limit: u32) -> OpenSite {
    let site = app.open_site(domain);
    let widget = set_widget(app, &site, &json!({"rateLimitPerSession": limit}));
    assert_eq!(widget["rateLimitPerSession"], limit);
    flow(app, &site, "Export invoices", "");
    site
}

#[test]
fn a_session_past_its_rate_limit_is_told_when_to_come_back() {
    let app = app!();
    let site = limited_site(&app, "rate-limit.example", 3);
    let visitor = app.visit(&site.key, "limited-visitor");
    for n in 1..=3 {
        let reply = app.ask(&site.key, &visitor, &format!("export invoices, try {n}"));
        assert_eq!(reply.status, 201, "question {n}: {}", reply.body);
    }

    let refused = app.ask(&site.key, &visitor, "export invoices, try 4");
    refused.assert_problem(429, "RATE_LIMITED");
    let retry_after: u64 = refused
        .header("Retry-After")
        .unwrap_or_else(|| panic!("Retry-After in {:?}", refused.headers))
        .parse()
        .unwrap();
    assert!(
        (1..=1800).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    // The refused question was not stored.
    assert_eq!(messages(&app, &site.key, &visitor).len(), 6);

    // Another visitor has a limit of their own.
    let other = app.visit(&site.key, "other-visitor");
    let reply = app.ask(&site.key, &other, "export invoices");
    assert_eq!(reply.status, 201, "{}", reply.body);
}

#[test]
fn parallel_questions_in_one_session_stop_at_the_limit() {
    let app = app!();
    let site = limited_site(&app, "parallel-limit.example", 5);
    let visitor = app.visit(&site.key, "eager-visitor");
    let outcomes = all_at_once(12, |i| {
        let reply = app.ask(&site.key, &visitor, &format!("export invoices #{i}"));
        match reply.status {
            201 => "201".to_string(),
            429 => {
                reply.assert_problem(429, "RATE_LIMITED");
                assert!(reply.header("Retry-After").is_some());
                "429".to_string()
            }
            other => format!("{other}: {}", reply.body),
        }
    });
    assert_eq!(
        tally(outcomes),
        [("201".to_string(), 5), ("429".to_string(), 7)]
    );
    assert_eq!(messages(&app, &site.key, &visitor).len(), 10);
}

/// The model is called with no database connection held: with a pool of
/// one connection, the site's other visitors and its team are answered
/// while a slow model is still drafting.
#[test]
fn no_database_connection_waits_on_the_model() {
    let fake = FakeModelServer::start();
    fake.set_default(Behaviour::delayed(
        Duration::from_millis(1500),
        Behaviour::guide("Close my account", "", "Open Settings, then Close account."),
    ));
    let Some(app) = TestApp::try_spawn_with(|config| {
        config.pool_size = 1;
        config.llm = Some(LlmSettings {
            base_url: fake.base_url(),
            api_key: Some(MODEL_KEY.into()),
            model: MODEL.into(),
            timeout: Duration::from_secs(5),
            model_ranks: false,
        });
    }) else {
        return;
    };
    let site = site_with_credits(&app, "slow-model.example.com", 1);
    let asking = app.visit(&site.key, "asker");
    let other = app.visit(&site.key, "other");
    thread::scope(|s| {
        let asked = s.spawn(|| {
            let started = Instant::now();
            let reply = ask(&app, &site, &asking, "How do I close my account?");
            (reply, started.elapsed())
        });
        fake.wait_for(1, Duration::from_secs(5));
        // The model is drafting now; the one connection must be free.
        let started = Instant::now();
        for _ in 0..3 {
            assert_eq!(messages(&app, &site.key, &other).len(), 0);
            assert_eq!(credits(&app, &site), 0, "the credit is spent meanwhile");
        }
        let meanwhile = started.elapsed();
        let (reply, took) = asked.join().unwrap();
        assert_eq!(reply["status"], "GENERATED_CONTENT", "{reply}");
        assert!(
            meanwhile < Duration::from_millis(1000) && took >= Duration::from_millis(1500),
            "other requests took {meanwhile:?} while the model took {took:?}"
        );
    });
}
