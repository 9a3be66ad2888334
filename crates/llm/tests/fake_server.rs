//! The fake model server itself: rules, defaults, recording, stray paths.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use chatdesk_domain::ports::{AnswerModel, GenerationRequest, ModelError, RankCandidate};
use chatdesk_llm::testing::{Behaviour, FakeModelServer, RequestKind};
use chatdesk_llm::{LlmConfig, OpenAiCompatible};

fn model(server: &FakeModelServer) -> OpenAiCompatible {
    OpenAiCompatible::new(LlmConfig::new(server.base_url(), "fake").with_api_key("k"))
        .expect("valid settings")
}

fn ask(model: &OpenAiCompatible, question: &str) -> Result<String, ModelError> {
    model
        .generate(&GenerationRequest {
            site_name: "Acme".to_owned(),
            site_domain: "acme.example".to_owned(),
            persona: None,
            question: question.to_owned(),
        })
        .map(|reply| reply.value.name)
}

fn rank(model: &OpenAiCompatible, question: &str) -> Result<Option<usize>, ModelError> {
    let candidates = [
        RankCandidate {
            name: "A".to_owned(),
            description: "a".to_owned(),
        },
        RankCandidate {
            name: "B".to_owned(),
            description: "b".to_owned(),
        },
    ];
    model.rank(question, &candidates).map(|reply| reply.value)
}

#[test]
fn base_url_names_the_local_port() {
    let server = FakeModelServer::start();
    assert_eq!(
        server.base_url(),
        format!("http://127.0.0.1:{}/v1", server.addr().port())
    );
}

#[test]
fn rules_pick_the_behaviour_by_question_and_kind() {
    let server = FakeModelServer::start();
    let model = model(&server);
    server.on_question("REFUND", Behaviour::guide("Refunds", "d", "a"));
    server.on_generate("broken", Behaviour::error(500, "down"));
    server.on_rank("broken", Behaviour::choice(Some(2)));
    server.on_question("refund policy", Behaviour::guide("Refund policy", "d", "a"));

    assert_eq!(
        ask(&model, "How do I get a refund?"),
        Ok("Refunds".to_owned())
    );
    // The newer rule wins.
    assert_eq!(
        ask(&model, "What is the Refund Policy?"),
        Ok("Refund policy".to_owned())
    );
    assert_eq!(
        ask(&model, "this is broken"),
        Err(ModelError::Unavailable("HTTP 500: down".to_owned()))
    );
    assert_eq!(rank(&model, "this is broken"), Ok(Some(1)));
    // A question-wide rule also answers rankings (here with a guide: malformed).
    assert!(matches!(
        rank(&model, "refund"),
        Err(ModelError::Malformed(_))
    ));
    // No rule: the default.
    assert_eq!(
        ask(&model, "Where are settings?"),
        Ok("Help: Where are settings?".to_owned())
    );
    assert_eq!(rank(&model, "Where are settings?"), Ok(None));

    server.set_default(Behaviour::error(400, "nope"));
    assert!(matches!(
        ask(&model, "Where are settings?"),
        Err(ModelError::Refused(_))
    ));
    assert_eq!(ask(&model, "refund"), Ok("Refunds".to_owned()));

    server.reset();
    assert_eq!(ask(&model, "refund"), Ok("Help: refund".to_owned()));

    let kinds: Vec<RequestKind> = server.requests().iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            RequestKind::Generate,
            RequestKind::Generate,
            RequestKind::Generate,
            RequestKind::Rank,
            RequestKind::Rank,
            RequestKind::Generate,
            RequestKind::Rank,
            RequestKind::Generate,
            RequestKind::Generate,
            RequestKind::Generate,
        ]
    );
    server.clear_requests();
    assert!(server.requests().is_empty());
}

#[test]
fn automatic_guides_are_short_single_line_names() {
    let server = FakeModelServer::start();
    let long = format!("How   do I\n{}?", "really ".repeat(20));

    let name = ask(&model(&server), &long).expect("a guide");

    assert!(name.starts_with("Help: How do I really"), "{name}");
    assert!(name.chars().count() <= 60, "{name}");
    assert!(!name.contains('\n'));
}

#[test]
fn records_requests_before_a_delay() {
    let server = FakeModelServer::start();
    server.set_default(Behaviour::delayed(
        Duration::from_millis(300),
        Behaviour::Auto,
    ));
    let model = model(&server);

    let asking = std::thread::spawn(move || ask(&model, "slow one"));
    let requests = server.wait_for(1, Duration::from_secs(5));

    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].question(), Some("slow one"));
    assert_eq!(requests[0].bearer(), Some("k"));
    let answer = asking.join().expect("no panic");
    assert_eq!(answer, Ok("Help: slow one".to_owned()));
}

#[test]
fn other_paths_get_a_404_and_are_recorded() {
    let server = FakeModelServer::start();
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream
        .write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abc\r\n\r\n")
        .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");

    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
    assert!(answer.contains("no route for GET /v1/models"), "{answer}");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/models");
    assert_eq!(requests[0].bearer(), Some("abc"));
    assert_eq!(requests[0].kind, RequestKind::Other);
}

#[test]
fn garbage_gets_a_400() {
    let server = FakeModelServer::start();
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream.write_all(b"HELLO\r\n\r\n").expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");

    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(server.requests().is_empty());
}

#[test]
fn dropping_stops_the_server_even_mid_delay() {
    let server = FakeModelServer::start();
    server.set_default(Behaviour::delayed(Duration::from_secs(30), Behaviour::Auto));
    let addr = server.addr();
    let model = model(&server);
    let asking = std::thread::spawn(move || ask(&model, "x"));
    server.wait_for(1, Duration::from_secs(5));

    let started = Instant::now();
    drop(server);

    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(matches!(
        asking.join().expect("no panic"),
        Err(ModelError::Unavailable(_))
    ));
    assert!(TcpStream::connect(addr).is_err());
}
