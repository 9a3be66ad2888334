//! `OpenAiCompatible` against the fake OpenAI-compatible server.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use chatdesk_domain::ports::{
    AnswerModel, GeneratedGuide, GenerationRequest, ModelError, ModelReply, RankCandidate,
};
use chatdesk_llm::testing::{Behaviour, FakeGuide, FakeModelServer, RequestKind, Usage};
use chatdesk_llm::{LlmConfig, OpenAiCompatible};
use serde_json::json;

const KEY: &str = "sk-test-0123456789abcdef";

fn model(server: &FakeModelServer) -> OpenAiCompatible {
    OpenAiCompatible::new(LlmConfig::new(server.base_url(), "gpt-test").with_api_key(KEY))
        .expect("valid settings")
}

fn question(text: &str) -> GenerationRequest {
    GenerationRequest {
        site_name: "Acme".to_owned(),
        site_domain: "acme.example".to_owned(),
        persona: Some("Answer like a cheerful librarian.".to_owned()),
        question: text.to_owned(),
    }
}

fn candidates() -> Vec<RankCandidate> {
    ["Export invoices", "Invite a teammate", "Change your plan"]
        .iter()
        .map(|name| RankCandidate {
            name: (*name).to_owned(),
            description: format!("How to {}", name.to_lowercase()),
        })
        .collect()
}

fn malformed(result: Result<impl std::fmt::Debug, ModelError>) -> String {
    match result {
        Err(ModelError::Malformed(reason)) => reason,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

/// A local port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[test]
fn generates_a_guide() {
    let server = FakeModelServer::start();
    server.set_default(
        FakeGuide::new(
            "Export invoices",
            "Download invoices as CSV",
            "Open Billing, then Export.",
        )
        .with_model("gpt-test-2024")
        .with_tokens(321)
        .into(),
    );

    let reply = model(&server).generate(&question("How can I export my invoices?"));

    assert_eq!(
        reply,
        Ok(ModelReply {
            value: GeneratedGuide {
                name: "Export invoices".to_owned(),
                description: "Download invoices as CSV".to_owned(),
                answer: "Open Billing, then Export.".to_owned(),
            },
            model: "gpt-test-2024".to_owned(),
            tokens_used: 321,
        })
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.authorization.as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(sent.content_type.as_deref(), Some("application/json"));
    assert_eq!(sent.kind, RequestKind::Generate);
    assert_eq!(sent.model(), Some("gpt-test"));
    assert_eq!(sent.body["response_format"], json!({"type": "json_object"}));
    let temperature = sent.body["temperature"].as_f64().expect("a temperature");
    assert!((0.0..=0.5).contains(&temperature), "{temperature}");
    assert_eq!(sent.messages().len(), 2);
    assert_eq!(sent.question(), Some("How can I export my invoices?"));
    let system = sent.system_prompt().expect("a system prompt");
    assert!(system.contains("Acme"), "{system}");
    assert!(system.contains("acme.example"), "{system}");
    assert!(system.contains("Flow"), "{system}");
    assert!(system.contains("JSON"), "{system}");
    assert!(
        system.contains(
            "<extra-instructions>\nAnswer like a cheerful librarian.\n</extra-instructions>"
        ),
        "{system}"
    );
}

#[test]
fn generation_without_persona_or_key() {
    let server = FakeModelServer::start();
    let model = OpenAiCompatible::new(LlmConfig::new(format!("{}/", server.base_url()), "local"))
        .expect("valid settings");

    let reply = model
        .generate(&GenerationRequest {
            persona: None,
            ..question("Where is the dark mode switch?")
        })
        .expect("a guide");

    // The fake's automatic guide, with the requested model echoed.
    assert_eq!(reply.value.name, "Help: Where is the dark mode switch?");
    assert_eq!(reply.model, "local");
    assert_eq!(reply.tokens_used, 42);
    let sent = &server.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.authorization, None);
    let system = sent.system_prompt().expect("a system prompt");
    assert!(!system.contains("extra-instructions"), "{system}");
}

#[test]
fn fenced_json_is_read() {
    let server = FakeModelServer::start();
    server.set_default(
        FakeGuide::new("Invite", "Add a teammate", "Open Team.")
            .fenced()
            .into(),
    );

    let reply = model(&server)
        .generate(&question("invite?"))
        .expect("a guide");

    assert_eq!(reply.value.name, "Invite");
    assert_eq!(reply.value.answer, "Open Team.");
    server.set_default(Behaviour::content(
        "```json\n{\"name\": \"N\", \"description\": \"\", \"answer\": \"A\"}\n```",
    ));
    let reply = model(&server).generate(&question("x")).expect("a guide");
    assert_eq!(
        (reply.value.name.as_str(), reply.value.answer.as_str()),
        ("N", "A")
    );
}

#[test]
fn counts_tokens() {
    let server = FakeModelServer::start();
    let cases = [
        (Usage::default(), 42),
        (Usage::total(7), 7),
        (Usage::split(100, 23), 123),
        (Usage::none(), 0),
    ];
    for (usage, want) in cases {
        server.set_default(FakeGuide::new("N", "D", "A").with_usage(usage).into());
        let reply = model(&server).generate(&question("x")).expect("a guide");
        assert_eq!(reply.tokens_used, want, "{usage:?}");
    }
}

#[test]
fn model_name_falls_back_to_the_configured_one() {
    let server = FakeModelServer::start();
    server.set_default(Behaviour::Raw {
        status: 200,
        body: json!({"choices": [{"message": {"content": "{\"choice\": 2}"}}]}).to_string(),
    });

    let reply = model(&server).rank("invite someone", &candidates());

    assert_eq!(
        reply,
        Ok(ModelReply {
            value: Some(1),
            model: "gpt-test".to_owned(),
            tokens_used: 0
        })
    );
    assert_eq!(model(&server).model_name(), "gpt-test");
}

#[test]
fn ranks_candidates() {
    let server = FakeModelServer::start();
    server.on_rank("invite", Behaviour::choice(Some(2)));
    server.on_rank("plan", Behaviour::choice(Some(3)));
    server.on_rank("weather", Behaviour::choice(None));
    let model = model(&server);

    let cases = [
        ("How do I invite someone?", Some(1)),
        ("Upgrade my plan", Some(2)),
        ("What's the weather?", None),
        // No rule: Auto answers a ranking with {"choice": null}.
        ("Something else", None),
    ];
    for (question, want) in cases {
        let reply = model.rank(question, &candidates()).expect("a choice");
        assert_eq!(reply.value, want, "{question}");
        assert_eq!(reply.tokens_used, 42);
    }
    let sent = &server.requests()[0];
    assert_eq!(sent.kind, RequestKind::Rank);
    assert_eq!(sent.question(), Some("How do I invite someone?"));
    assert_eq!(sent.body["response_format"], json!({"type": "json_object"}));
    let system = sent.system_prompt().expect("a system prompt");
    for line in [
        "1. Export invoices — How to export invoices",
        "2. Invite a teammate — How to invite a teammate",
        "3. Change your plan — How to change your plan",
    ] {
        assert!(system.contains(line), "{system}");
    }
}

#[test]
fn ranking_nothing_asks_nobody() {
    let server = FakeModelServer::start();

    let reply = model(&server).rank("anything", &[]);

    assert_eq!(
        reply,
        Ok(ModelReply {
            value: None,
            model: "gpt-test".to_owned(),
            tokens_used: 0
        })
    );
    assert!(server.requests().is_empty());
}

#[test]
fn choices_out_of_range_or_not_integers_are_malformed() {
    let server = FakeModelServer::start();
    let model = model(&server);
    let cases = [
        (json!(0), "not between 1 and 3"),
        (json!(4), "not between 1 and 3"),
        (json!(-2), "not between 1 and 3"),
        (json!(1.5), "not an integer"),
        (json!("2"), "not a number or null"),
        (json!([1]), "not a number or null"),
    ];
    for (choice, want) in cases {
        server.set_default(Behaviour::Choice(choice.clone()));
        let reason = malformed(model.rank("q", &candidates()));
        assert!(reason.contains(want), "{choice}: {reason}");
    }
}

#[test]
fn malformed_replies() {
    let server = FakeModelServer::start();
    let model = model(&server);
    let cases = [
        (Behaviour::not_json(), "not JSON"),
        (Behaviour::no_choices(), "no choices"),
        (
            Behaviour::Raw {
                status: 200,
                body: json!({"choices": [{"message": {"role": "assistant"}}]}).to_string(),
            },
            "no text content",
        ),
        (
            Behaviour::content("Sure! Open Billing and click Export."),
            "not a JSON object",
        ),
        (
            Behaviour::content(r#"{"title": "Export", "text": "Open Billing"}"#),
            "no \"name\"",
        ),
        (
            Behaviour::guide("", "d", "Open Billing."),
            "\"name\" is empty",
        ),
        (Behaviour::guide("Export", "d", "  "), "\"answer\" is empty"),
        (Behaviour::choice(Some(1)), "no \"name\""),
    ];
    for (behaviour, want) in cases {
        server.set_default(behaviour.clone());
        let reason = malformed(model.generate(&question("export")));
        assert!(reason.contains(want), "{behaviour:?}: {reason}");
    }
    // A ranking answered with a guide is malformed too.
    server.set_default(Behaviour::guide("N", "D", "A"));
    let reason = malformed(model.rank("q", &candidates()));
    assert!(reason.contains("no \"choice\""), "{reason}");
}

#[test]
fn oversized_reply_is_malformed() {
    let server = FakeModelServer::start();
    server.set_default(Behaviour::guide("N", "D", &"a".repeat(1024 * 1024 + 1)));

    let reason = malformed(model(&server).generate(&question("x")));

    assert!(reason.contains("larger than 1024 KiB"), "{reason}");
}

#[test]
fn unauthorized_is_refused_without_the_key() {
    let server = FakeModelServer::start();
    server.set_default(Behaviour::Error {
        status: 401,
        message: format!(
            "Incorrect API key provided: {KEY}. You can find your API key at the dashboard."
        ),
        code: Some("invalid_api_key".to_owned()),
    });

    let error = model(&server)
        .generate(&question("x"))
        .expect_err("refused");

    let ModelError::Refused(reason) = &error else {
        panic!("expected Refused, got {error:?}")
    };
    assert!(reason.contains("HTTP 401"), "{reason}");
    assert!(
        reason.contains("Incorrect API key provided: ***."),
        "{reason}"
    );
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains(KEY), "{shown}");
    }
}

#[test]
fn statuses_map_to_errors() {
    let server = FakeModelServer::start();
    let model = model(&server);
    let quota = Behaviour::Error {
        status: 429,
        message: "You exceeded your current quota".to_owned(),
        code: Some("insufficient_quota".to_owned()),
    };
    let cases = [
        (
            Behaviour::error(500, "The server had an error"),
            ModelError::Unavailable("HTTP 500: The server had an error".to_owned()),
        ),
        (
            Behaviour::error(503, "overloaded"),
            ModelError::Unavailable("HTTP 503: overloaded".to_owned()),
        ),
        (
            Behaviour::error(429, "Rate limit reached"),
            ModelError::Unavailable("HTTP 429: Rate limit reached".to_owned()),
        ),
        (
            quota,
            ModelError::Refused("HTTP 429: You exceeded your current quota".to_owned()),
        ),
        (
            Behaviour::error(404, "The model `gpt-test` does not exist"),
            ModelError::Refused("HTTP 404: The model `gpt-test` does not exist".to_owned()),
        ),
        (
            Behaviour::error(400, "Invalid 'messages'"),
            ModelError::Refused("HTTP 400: Invalid 'messages'".to_owned()),
        ),
        (
            Behaviour::Raw {
                status: 502,
                body: "<html>Bad gateway</html>".to_owned(),
            },
            ModelError::Unavailable("HTTP 502".to_owned()),
        ),
        (
            Behaviour::Raw {
                status: 302,
                body: String::new(),
            },
            ModelError::Refused("HTTP 302: the API redirects; check LLM_BASE_URL".to_owned()),
        ),
    ];
    for (behaviour, want) in cases {
        server.set_default(behaviour.clone());
        assert_eq!(
            model.generate(&question("x")).map(|r| r.value),
            Err(want.clone()),
            "{behaviour:?}"
        );
        server.set_default(behaviour.clone());
        assert_eq!(
            model.rank("x", &candidates()).map(|r| r.value),
            Err(want),
            "{behaviour:?}"
        );
    }
}

#[test]
fn slow_model_times_out() {
    let server = FakeModelServer::start();
    server.set_default(Behaviour::delayed(Duration::from_secs(5), Behaviour::Auto));
    let timeout = Duration::from_millis(300);
    let model =
        OpenAiCompatible::new(LlmConfig::new(server.base_url(), "gpt-test").with_timeout(timeout))
            .expect("valid settings");

    let started = Instant::now();
    let error = model.generate(&question("x")).expect_err("timed out");
    let elapsed = started.elapsed();

    let ModelError::Unavailable(reason) = &error else {
        panic!("expected Unavailable, got {error:?}")
    };
    assert!(reason.contains("did not answer within 300ms"), "{reason}");
    assert!(elapsed >= timeout, "{elapsed:?}");
    assert!(
        elapsed < timeout + Duration::from_millis(700),
        "{elapsed:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn closed_port_is_unavailable() {
    let model = OpenAiCompatible::new(LlmConfig::new(
        format!("http://127.0.0.1:{}/v1", closed_port()),
        "gpt-test",
    ))
    .expect("valid settings");

    let started = Instant::now();
    let error = model.generate(&question("x")).expect_err("refused");

    let ModelError::Unavailable(reason) = &error else {
        panic!("expected Unavailable, got {error:?}")
    };
    assert!(reason.contains("could not connect"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(
        model.rank("x", &candidates()),
        Err(ModelError::Unavailable(_))
    ));
}

#[test]
fn hang_up_is_unavailable() {
    let server = FakeModelServer::start();
    server.set_default(Behaviour::Hangup);

    let result = model(&server).generate(&question("x"));

    assert!(
        matches!(result, Err(ModelError::Unavailable(_))),
        "{result:?}"
    );
}

#[test]
fn bad_settings_are_refused() {
    for url in [
        "ftp://127.0.0.1/v1",
        "127.0.0.1:8080/v1",
        "http://",
        "http://user:pw@host/v1",
    ] {
        let result = OpenAiCompatible::new(LlmConfig::new(url, "m"));
        assert!(
            matches!(
                result,
                Err(chatdesk_llm::ConfigError::InvalidBaseUrl { .. })
            ),
            "{url}: {result:?}"
        );
    }
    let result = OpenAiCompatible::new(LlmConfig::new("http://[::1/v1", "m"));
    assert!(
        matches!(
            result,
            Err(chatdesk_llm::ConfigError::InvalidBaseUrl { .. })
        ),
        "{result:?}"
    );
    let result = OpenAiCompatible::new(LlmConfig::new("https://api.example/v1", "m"));
    assert_eq!(
        result
            .map(|m| m.endpoint().to_owned())
            .map_err(|e| e.to_string()),
        Ok("https://api.example/v1/chat/completions".to_owned())
    );
}
