//! The widget SDK's use cases ([`VisitorService`]) over mocks of the
//! visitor repository and the model: what a visitor sees, and which ports
//! were (or were not) called.
//!
//! The mocks live behind the `testing` feature:
//! `cargo nextest run -p chatdesk-domain --features testing`.
#![cfg(feature = "testing")]

use std::sync::{Arc, Mutex};

use chrono::Duration;

use chatdesk_domain::answer::{AnswerIndex, Candidate};
use chatdesk_domain::content::{Audience, ContentItem, ContentKind, ContentStatus, GeneratedFrom};
use chatdesk_domain::conversation::{
    ContentRef, FollowUp, MessageRole, MessageStatus, TimelineEntry, Vote,
};
use chatdesk_domain::ids::{ContentId, MessageId, SessionId};
use chatdesk_domain::ports::{
    AnswerModel, AskContext, Exchange, ExchangeOutcome, GeneratedGuide, GenerationOutcome,
    GenerationRequest, ModelError, ModelReply, OpenSession, OpenedSession, Page, PageRequest,
    RankCandidate, VoteOutcome,
};
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::services::{
    clean_guide, Answered, RankerChoice, VisitorService, GENERATED_ANSWER_MAX,
    GENERATION_FAILED_NOTICE, NO_MODEL_NOTICE,
};
use chatdesk_domain::site::MappingStatus;
use chatdesk_domain::tenant::Plan;
use chatdesk_domain::testing::builders::{
    a_content_item, a_message, a_session, a_site, a_widget, t0,
};
use chatdesk_domain::testing::{fixed_clock, random_ids, MockAnswerModel, MockVisitorRepository};
use chatdesk_domain::visitor::{SiteGate, VisitorIdentity, VisitorInput};
use chatdesk_domain::widget::{GateClosed, WidgetStatus};
use chatdesk_domain::{Entity, Error, ErrorKind};

/// The site key the widget sends.
const KEY: &str = "cd_live_sitekey";
/// The session token the widget holds.
const TOKEN: &str = "cd_sess_sessiontoken";
/// What the mock model calls itself.
const MODEL_NAME: &str = "gpt-test";

fn key() -> SecretHash {
    SecretHash::of(KEY)
}

/// What the calls of one kind received, for assertions after the call.
type Seen<T> = Arc<Mutex<Vec<T>>>;

fn seen<T: Clone>(log: &Seen<T>) -> Vec<T> {
    log.lock().expect("no test thread panicked").clone()
}

/// A mapped site of a PRO tenant with an ACTIVE widget, and a session of
/// it as the store finds it by its token.
#[derive(Clone)]
struct World {
    gate: SiteGate,
    context: AskContext,
}

impl World {
    fn new() -> World {
        let site = a_site().mapping_status(MappingStatus::Completed).build();
        let widget = a_widget()
            .site_id(site.id)
            .status(WidgetStatus::Active)
            .build();
        let session = a_session()
            .site_id(site.id)
            .with(|s| s.widget_id = widget.id)
            .build();
        World {
            context: AskContext {
                session,
                tenant_id: site.tenant_id,
                content_version: 1,
            },
            gate: SiteGate {
                site,
                plan: Plan::Pro,
                widget: Some(widget),
            },
        }
    }

    /// Changes the widget's settings.
    fn settings(
        mut self,
        change: impl FnOnce(&mut chatdesk_domain::widget::WidgetSettings),
    ) -> Self {
        if let Some(widget) = self.gate.widget.as_mut() {
            change(&mut widget.settings);
        }
        self
    }

    fn session_id(&self) -> SessionId {
        self.context.session.id
    }

    /// A published item of the site.
    fn item(&self, kind: ContentKind, name: &str, description: &str) -> ContentItem {
        a_content_item()
            .site_id(self.gate.site.id)
            .kind(kind)
            .name(name.into())
            .with(|i| i.description = description.into())
            .build()
    }

    /// An AI-made Flow held back under "No users" for `session`.
    fn generated(&self, session: SessionId, name: &str) -> ContentItem {
        ContentItem::generated_flow(
            ContentId(uuid::Uuid::now_v7()),
            self.gate.site.id,
            name.into(),
            "Made for one visitor".into(),
            GeneratedFrom {
                session_id: session,
                message_id: MessageId(uuid::Uuid::now_v7()),
                answer: "Open Billing, then Export.".into(),
            },
            t0(),
        )
    }
}

/// The store finds the session of [`TOKEN`] (sent with [`KEY`]).
fn finds_session(repo: &mut MockVisitorRepository, context: &AskContext) {
    let context = context.clone();
    repo.expect_find_session()
        .withf(|k, token| *k == key() && *token == SecretHash::of(TOKEN))
        .returning(move |_, _| Ok(Some(context.clone())));
}

/// The site's published content.
fn publishes(repo: &mut MockVisitorRepository, world: &World, items: Vec<ContentItem>) {
    let site = world.gate.site.id;
    repo.expect_published_content()
        .withf(move |s| *s == site)
        .returning(move |_| Ok(items.clone()));
}

/// Records exchanges as the store does: the reply stored is the paid one,
/// or the unpaid one when `paid` is false and there is one.
fn records(repo: &mut MockVisitorRepository, paid: bool) -> Seen<Exchange> {
    let log = Seen::default();
    let kept = log.clone();
    repo.expect_record_exchange().returning(move |exchange| {
        kept.lock().expect("unpoisoned").push(exchange.clone());
        let reply = match (&exchange.unpaid_reply, paid) {
            (Some(unpaid), false) => unpaid.clone(),
            _ => exchange.reply.clone(),
        };
        Ok(ExchangeOutcome::Recorded {
            reply,
            paid: paid || exchange.unpaid_reply.is_none(),
        })
    });
    log
}

/// Finishes generations.
fn finishes(repo: &mut MockVisitorRepository) -> Seen<GenerationOutcome> {
    let log = Seen::default();
    let kept = log.clone();
    repo.expect_finish_generation().returning(move |outcome| {
        kept.lock().expect("unpoisoned").push(outcome.clone());
        Ok(())
    });
    log
}

/// A model that may only say its name; each test adds what it expects.
fn model() -> MockAnswerModel {
    let mut model = MockAnswerModel::new();
    model
        .expect_model_name()
        .return_const(MODEL_NAME.to_string());
    model
}

fn service(repo: MockVisitorRepository, model: Option<MockAnswerModel>) -> VisitorService {
    VisitorService::new(
        fixed_clock(),
        random_ids(),
        Arc::new(repo),
        model.map(|m| Arc::new(m) as Arc<dyn AnswerModel>),
    )
}

fn ask(service: &VisitorService, world: &World, question: &str) -> Result<Answered, Error> {
    service.ask(
        &world.gate,
        &key(),
        Some(TOKEN),
        world.session_id(),
        question,
    )
}

fn guide(name: &str, description: &str, answer: &str) -> ModelReply<GeneratedGuide> {
    ModelReply {
        value: GeneratedGuide {
            name: name.into(),
            description: description.into(),
            answer: answer.into(),
        },
        model: MODEL_NAME.into(),
        tokens_used: 321,
    }
}

/// The question as the visitor's message: USER, COMPLETED, trimmed, no
/// content reference.
fn assert_question(answered: &Answered, world: &World, text: &str) {
    let question = &answered.question;
    assert_eq!(question.role, MessageRole::User);
    assert_eq!(question.status, MessageStatus::Completed);
    assert_eq!(question.content, text);
    assert_eq!(question.session_id, world.session_id());
    assert_eq!(question.site_id, world.gate.site.id);
    assert_eq!(question.content_ref, None);
    assert_eq!(question.created_at, t0());
}

// ---------------------------------------------------------------- sessions

fn anonymous() -> VisitorInput {
    VisitorInput {
        anonymous_id: "anon-1".into(),
        ..VisitorInput::default()
    }
}

#[test]
fn a_closed_gate_opens_no_session() {
    /// Closes the gate of a world.
    type Close = fn(&mut World);
    let cases: [(Close, GateClosed); 4] = [
        (
            |w| w.gate.site.mapping_status = MappingStatus::InProgress,
            GateClosed::SiteNotMapped,
        ),
        (|w| w.gate.plan = Plan::Starter, GateClosed::FeatureLocked),
        (|w| w.gate.widget = None, GateClosed::WidgetDisabled),
        (
            |w| {
                if let Some(widget) = w.gate.widget.as_mut() {
                    widget.status = WidgetStatus::Paused;
                    widget.published_at = Some(t0());
                }
            },
            GateClosed::WidgetPaused,
        ),
    ];
    for (close, reason) in cases {
        let mut world = World::new();
        close(&mut world);
        let mut repo = MockVisitorRepository::new();
        repo.expect_open_session().never();
        let service = service(repo, None);
        let error = service
            .open_session(&world.gate, &key(), &anonymous())
            .expect_err("closed");
        assert_eq!(error, Error::GateClosed(reason));
        assert_eq!(error.code(), reason.as_str());
    }
}

#[test]
fn an_unverified_or_invalid_visitor_opens_no_session() {
    let secret = chatdesk_domain::secret::IssuedSecret::new(
        chatdesk_domain::secret::SecretKind::IdentitySecret,
        [5; chatdesk_domain::secret::SECRET_BYTES],
    );
    let cases = [
        (
            VisitorInput {
                external_id: Some("user-42".into()),
                user_hash: Some("00".repeat(32)),
                ..anonymous()
            },
            "IDENTITY_NOT_VERIFIED",
        ),
        (
            VisitorInput {
                external_id: Some("user-42".into()),
                ..anonymous()
            },
            "IDENTITY_NOT_VERIFIED",
        ),
        (
            VisitorInput {
                anonymous_id: String::new(),
                ..anonymous()
            },
            "VALIDATION_FAILED",
        ),
    ];
    for (input, code) in cases {
        let mut world = World::new();
        world.gate.site.identity_secret_hash = Some(secret.hash.clone());
        let mut repo = MockVisitorRepository::new();
        repo.expect_open_session().never();
        let service = service(repo, None);
        let error = service
            .open_session(&world.gate, &key(), &input)
            .expect_err(code);
        assert_eq!(error.code(), code, "{input:?}");
    }
}

#[test]
fn opening_a_session_hands_the_store_everything_and_the_visitor_a_token() {
    let world = World::new();
    let mut repo = MockVisitorRepository::new();
    let requests: Seen<OpenSession> = Seen::default();
    let kept = requests.clone();
    let session = world.context.session.clone();
    repo.expect_open_session()
        .times(1)
        .returning(move |request| {
            kept.lock().expect("unpoisoned").push(request.clone());
            Ok(OpenedSession {
                session: session.clone(),
                created: true,
            })
        });
    let service = service(repo, None);

    let input = VisitorInput {
        anonymous_id: " anon-1 ".into(),
        external_id: Some("user-42".into()),
        traits: Some(serde_json::json!({"email": "ada@example.com"})),
        user_hash: None,
    };
    let opened = service
        .open_session(&world.gate, &key(), &input)
        .expect("opens");

    assert_eq!(opened.value.session, world.context.session);
    assert!(opened.value.created);
    assert!(opened.secret.starts_with("cd_sess_"), "{}", opened.secret);
    assert!(opened.secret.len() > "cd_sess_".len() + 32);

    let requests = seen(&requests);
    let [request] = requests.as_slice() else {
        panic!("one request, got {requests:?}");
    };
    let widget = world.gate.widget.as_ref().expect("a widget");
    assert_eq!(request.site_id, world.gate.site.id);
    assert_eq!(request.widget_id, widget.id);
    assert_eq!(request.key, key());
    assert_eq!(
        request.identity,
        VisitorIdentity {
            anonymous_id: "anon-1".into(),
            external_id: Some("user-42".into()),
            traits: serde_json::json!({"email": "ada@example.com"})
                .as_object()
                .cloned(),
            verified: false,
        }
    );
    assert_eq!(request.token, SecretHash::of(&opened.secret));
    assert!(request.token.verify(&opened.secret));
    assert_eq!(request.now, t0());
    assert_eq!(request.idle_cutoff, t0() - Duration::minutes(30));
    assert_eq!(request.start_cutoff, t0() - Duration::hours(4));
    assert_ne!(request.new_session_id.0, request.new_visitor_id.0);
}

#[test]
fn each_session_gets_its_own_token() {
    let world = World::new();
    let mut repo = MockVisitorRepository::new();
    let session = world.context.session.clone();
    let tokens: Seen<SecretHash> = Seen::default();
    let kept = tokens.clone();
    repo.expect_open_session()
        .times(2)
        .returning(move |request| {
            kept.lock().expect("unpoisoned").push(request.token.clone());
            Ok(OpenedSession {
                session: session.clone(),
                created: false,
            })
        });
    let service = service(repo, None);
    let first = service
        .open_session(&world.gate, &key(), &anonymous())
        .expect("opens");
    let second = service
        .open_session(&world.gate, &key(), &anonymous())
        .expect("resumes");
    assert!(!second.value.created);
    assert_ne!(first.secret, second.secret);
    assert_eq!(
        seen(&tokens),
        [
            SecretHash::of(&first.secret),
            SecretHash::of(&second.secret)
        ]
    );
}

/// A use case that needs the session's token.
#[derive(Debug, Clone, Copy)]
enum Call {
    Messages,
    Ask,
    Vote,
}

const CALLS: [Call; 3] = [Call::Messages, Call::Ask, Call::Vote];

/// Calls a session's use case with `token` for the session `path`.
fn call(
    service: &VisitorService,
    world: &World,
    call: Call,
    token: Option<&str>,
    path: SessionId,
) -> Result<(), Error> {
    let page = PageRequest {
        limit: 25,
        after: None,
    };
    match call {
        Call::Messages => service.messages(&key(), token, path, &page).map(|_| ()),
        Call::Ask => service
            .ask(
                &world.gate,
                &key(),
                token,
                path,
                "How do I invite a teammate?",
            )
            .map(|_| ()),
        Call::Vote => service
            .vote(&key(), token, MessageId(uuid::Uuid::now_v7()), "UP")
            .map(|_| ()),
    }
}

/// A repository on which nothing past the session check may be called.
fn repo_past_the_session_check_untouched() -> MockVisitorRepository {
    let mut repo = MockVisitorRepository::new();
    repo.expect_list_messages().never();
    repo.expect_published_content().never();
    repo.expect_record_exchange().never();
    repo.expect_finish_generation().never();
    repo.expect_vote().never();
    repo
}

#[test]
fn a_session_call_without_a_token_is_refused_before_the_store_is_asked() {
    for call_kind in CALLS {
        for token in [None, Some(""), Some("   "), Some("\t\n")] {
            let world = World::new();
            let mut repo = repo_past_the_session_check_untouched();
            repo.expect_find_session().never();
            let service = service(repo, None);
            let error =
                call(&service, &world, call_kind, token, world.session_id()).expect_err("no token");
            assert_eq!(
                error,
                Error::SessionTokenRequired,
                "{call_kind:?} {token:?}"
            );
            assert_eq!(error.code(), "SESSION_TOKEN_REQUIRED");
            assert_eq!(error.kind(), ErrorKind::Unauthorized);
        }
    }
}

#[test]
fn an_unknown_token_finds_no_session() {
    for call_kind in CALLS {
        let world = World::new();
        let mut repo = repo_past_the_session_check_untouched();
        repo.expect_find_session()
            .times(1)
            .withf(|k, token| *k == key() && *token == SecretHash::of("cd_sess_unknown"))
            .returning(|_, _| Ok(None));
        let service = service(repo, None);
        let error = call(
            &service,
            &world,
            call_kind,
            Some("cd_sess_unknown"),
            world.session_id(),
        )
        .expect_err("unknown token");
        assert_eq!(error, Error::NotFound(Entity::Session), "{call_kind:?}");
        assert_eq!(error.kind(), ErrorKind::NotFound);
    }
}

#[test]
fn the_token_of_another_session_than_the_paths_finds_nothing() {
    for call_kind in [Call::Messages, Call::Ask] {
        let world = World::new();
        let mut repo = repo_past_the_session_check_untouched();
        finds_session(&mut repo, &world.context);
        let service = service(repo, None);
        let other = a_session().site_id(world.gate.site.id).build().id;
        let error =
            call(&service, &world, call_kind, Some(TOKEN), other).expect_err("another session");
        assert_eq!(error, Error::NotFound(Entity::Session), "{call_kind:?}");
    }
}

#[test]
fn store_errors_finding_the_session_reach_the_caller() {
    for call_kind in CALLS {
        let world = World::new();
        let mut repo = repo_past_the_session_check_untouched();
        repo.expect_find_session()
            .returning(|_, _| Err(Error::DatabaseUnavailable));
        let service = service(repo, None);
        let error = call(&service, &world, call_kind, Some(TOKEN), world.session_id())
            .expect_err("store down");
        assert_eq!(error, Error::DatabaseUnavailable, "{call_kind:?}");
    }
}

#[test]
fn the_token_is_trimmed_before_it_is_looked_up() {
    let world = World::new();
    let mut repo = MockVisitorRepository::new();
    finds_session(&mut repo, &world.context);
    let entries = vec![TimelineEntry {
        message: a_message().session_id(world.session_id()).build(),
        vote: Some(Vote::Up),
    }];
    let page = Page {
        items: entries.clone(),
        next: None,
    };
    let session = world.session_id();
    repo.expect_list_messages()
        .times(1)
        .withf(move |s, p| *s == session && p.limit == 10 && p.after.is_none())
        .returning(move |_, _| Ok(page.clone()));
    let service = service(repo, None);
    let got = service
        .messages(
            &key(),
            Some(&format!("  {TOKEN}\n")),
            world.session_id(),
            &PageRequest {
                limit: 10,
                after: None,
            },
        )
        .expect("listed");
    assert_eq!(got.items, entries);
    assert_eq!(got.next, None);
}

// -------------------------------------------------------------------- ask

#[test]
fn an_invalid_question_is_refused_before_anything_else() {
    for question in ["", "   ", "\n\t", &"x".repeat(2001)] {
        let world = World::new();
        let mut repo = repo_past_the_session_check_untouched();
        repo.expect_find_session().never();
        let service = service(repo, None);
        let error = ask(&service, &world, question).expect_err("invalid");
        assert_eq!(error.code(), "VALIDATION_FAILED", "{question:?}");
        let fields: Vec<_> = error.field_errors().iter().map(|f| &f.field).collect();
        assert_eq!(fields, ["content"], "{question:?}");
    }
}

#[test]
fn a_closed_gate_answers_no_question() {
    // 2000 characters is a valid question: the gate is what refuses it.
    for question in ["How do I invite a teammate?", &"x".repeat(2000)] {
        let mut world = World::new();
        if let Some(widget) = world.gate.widget.as_mut() {
            widget.status = WidgetStatus::Paused;
            widget.published_at = Some(t0());
        }
        let mut repo = repo_past_the_session_check_untouched();
        repo.expect_find_session().never();
        let service = service(repo, None);
        let error = ask(&service, &world, question).expect_err("closed");
        assert_eq!(error, Error::GateClosed(GateClosed::WidgetPaused));
        assert_eq!(error.code(), "WIDGET_PAUSED");
    }
}

#[test]
fn a_session_at_its_question_limit_is_rate_limited() {
    // (the widget's limit, questions asked, minutes idle, seconds to wait or
    // None when the question goes through)
    let table: [(u32, u32, i64, Option<u64>); 6] = [
        (20, 20, 10, Some(1200)),
        (20, 25, 0, Some(1800)),
        (3, 3, 29, Some(60)),
        (1, 1, 30, Some(1)),
        (20, 19, 0, None),
        (3, 0, 0, None),
    ];
    for (limit, asked, idle, wait) in table {
        let mut world = World::new().settings(|s| s.rate_limit_per_session = limit);
        world.context.session.question_count = asked;
        world.context.session.last_active_at = t0() - Duration::minutes(idle);
        let mut repo = MockVisitorRepository::new();
        finds_session(&mut repo, &world.context);
        let item = world.item(ContentKind::Flow, "Invite a teammate", "");
        let case = format!("limit {limit}, asked {asked}, idle {idle} min");
        match wait {
            Some(retry_after_secs) => {
                repo.expect_published_content().never();
                repo.expect_record_exchange().never();
                let service = service(repo, None);
                let error = ask(&service, &world, "How do I invite a teammate?").expect_err(&case);
                assert_eq!(
                    error,
                    Error::RateLimited {
                        limit,
                        retry_after_secs
                    },
                    "{case}"
                );
                assert_eq!(error.code(), "RATE_LIMITED");
                assert_eq!(error.kind(), ErrorKind::RateLimited);
            }
            None => {
                publishes(&mut repo, &world, vec![item]);
                let exchanges = records(&mut repo, true);
                let service = service(repo, None);
                ask(&service, &world, "How do I invite a teammate?").expect(&case);
                let exchanges = seen(&exchanges);
                assert_eq!(exchanges.len(), 1, "{case}");
                assert_eq!(exchanges[0].limit, limit, "{case}");
            }
        }
    }
}

#[test]
fn the_store_refusing_past_the_limit_is_rate_limited() {
    let world = World::new().settings(|s| s.rate_limit_per_session = 5);
    let mut repo = MockVisitorRepository::new();
    finds_session(&mut repo, &world.context);
    publishes(
        &mut repo,
        &world,
        vec![world.item(ContentKind::Flow, "Invite a teammate", "")],
    );
    repo.expect_record_exchange().times(1).returning(|_| {
        Ok(ExchangeOutcome::RateLimited {
            last_active_at: t0() - Duration::minutes(25),
        })
    });
    repo.expect_finish_generation().never();
    let service = service(repo, None);
    let error = ask(&service, &world, "How do I invite a teammate?").expect_err("limited");
    assert_eq!(
        error,
        Error::RateLimited {
            limit: 5,
            retry_after_secs: 300
        }
    );
}

#[test]
fn a_question_naming_an_item_is_answered_with_it_without_the_model() {
    // (items, question, the item it points at, by index)
    type Case = (
        &'static str,
        Vec<(ContentKind, &'static str, &'static str)>,
        usize,
    );
    let table: Vec<Case> = vec![
        (
            "  How do I Invite   a TEAMMATE?  ",
            vec![(
                ContentKind::Flow,
                "Invite a teammate",
                "Where the invite button is",
            )],
            0,
        ),
        (
            "where is the export csv button",
            vec![
                (ContentKind::Flow, "Invite a teammate", ""),
                (ContentKind::Tooltip, "Export CSV", "The export button"),
            ],
            1,
        ),
        (
            // The longest name wins.
            "how to export invoices as csv",
            vec![
                (ContentKind::Flow, "Export invoices", ""),
                (ContentKind::Flow, "Export invoices as CSV", ""),
            ],
            1,
        ),
        (
            // No name: the lexical ranker picks the item.
            "where are my invoices",
            vec![
                (
                    ContentKind::Flow,
                    "Invite a teammate",
                    "Add people to your workspace",
                ),
                (
                    ContentKind::Flow,
                    "Download invoice",
                    "Get a PDF of any invoice",
                ),
            ],
            1,
        ),
    ];
    for with_model in [false, true] {
        for (question, items, pick) in &table {
            let world = World::new();
            let items: Vec<ContentItem> = items
                .iter()
                .map(|(kind, name, description)| world.item(*kind, name, description))
                .collect();
            let picked = items[*pick].clone();
            let mut repo = MockVisitorRepository::new();
            finds_session(&mut repo, &world.context);
            publishes(&mut repo, &world, items);
            let exchanges = records(&mut repo, true);
            repo.expect_finish_generation().never();
            let model = with_model.then(|| {
                let mut model = model();
                model.expect_generate().never();
                model.expect_rank().never();
                model
            });
            let service = service(repo, model);

            let answered = ask(&service, &world, question).expect("answered");

            let case = format!("{question:?} with a model: {with_model}");
            assert_question(&answered, &world, question.trim());
            let reply = &answered.reply;
            assert_eq!(reply.role, MessageRole::Assistant, "{case}");
            assert_eq!(reply.status, MessageStatus::MatchedContent, "{case}");
            assert_eq!(
                reply.content_ref,
                Some(ContentRef {
                    kind: picked.kind,
                    id: picked.id,
                    name: picked.name.clone(),
                }),
                "{case}"
            );
            assert!(
                reply.content.contains(&picked.name),
                "{case}: {}",
                reply.content
            );
            assert_eq!(reply.model, None, "{case}");
            assert_eq!(reply.tokens_used, Some(0), "{case}");
            assert_eq!(reply.session_id, world.session_id(), "{case}");
            assert_ne!(reply.id, answered.question.id, "{case}");

            let exchanges = seen(&exchanges);
            let [exchange] = exchanges.as_slice() else {
                panic!("{case}: one exchange, got {exchanges:?}");
            };
            assert_eq!(exchange.cost, 0, "{case}");
            assert_eq!(exchange.unpaid_reply, None, "{case}");
            assert_eq!(exchange.key, key(), "{case}");
            assert_eq!(exchange.tenant_id, world.context.tenant_id, "{case}");
            assert_eq!(exchange.limit, 20, "{case}");
            assert_eq!(&exchange.question, &answered.question, "{case}");
            assert_eq!(&exchange.reply, reply, "{case}");
        }
    }
}

#[test]
fn with_no_match_and_no_model_the_reply_is_a_notice() {
    let world = World::new();
    let mut repo = MockVisitorRepository::new();
    finds_session(&mut repo, &world.context);
    publishes(
        &mut repo,
        &world,
        vec![world.item(
            ContentKind::Flow,
            "Invite a teammate",
            "Where the invite button is",
        )],
    );
    let exchanges = records(&mut repo, true);
    repo.expect_finish_generation().never();
    let service = service(repo, None);

    let answered = ask(&service, &world, "How do I reset my password?").expect("answered");

    assert_question(&answered, &world, "How do I reset my password?");
    let reply = &answered.reply;
    assert_eq!(reply.role, MessageRole::System);
    assert_eq!(reply.status, MessageStatus::Completed);
    assert_eq!(reply.content, NO_MODEL_NOTICE);
    assert_eq!(reply.content_ref, None);
    assert_eq!(reply.model, None);
    let exchanges = seen(&exchanges);
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0].cost, 0);
    assert_eq!(exchanges[0].unpaid_reply, None);
}

#[test]
fn a_tenant_out_of_credits_gets_the_widgets_message_and_no_model_call() {
    let world = World::new().settings(|s| {
        s.insufficient_credits_message = "We are out of answers today.".into();
    });
    let mut repo = MockVisitorRepository::new();
    finds_session(&mut repo, &world.context);
    publishes(&mut repo, &world, Vec::new());
    let exchanges = records(&mut repo, false);
    repo.expect_finish_generation().never();
    let mut model = model();
    model.expect_generate().never();
    model.expect_rank().never();
    let service = service(repo, Some(model));

    let answered = ask(&service, &world, "How do I reset my password?").expect("answered");

    let reply = &answered.reply;
    assert_eq!(reply.role, MessageRole::Assistant);
    assert_eq!(reply.status, MessageStatus::InsufficientCredits);
    assert_eq!(reply.content, "We are out of answers today.");
    assert_eq!(reply.content_ref, None);
    let exchanges = seen(&exchanges);
    let [exchange] = exchanges.as_slice() else {
        panic!("one exchange, got {exchanges:?}");
    };
    assert_eq!(exchange.cost, 1);
    assert_eq!(exchange.reply.status, MessageStatus::Analyzing);
    assert_eq!(exchange.reply.role, MessageRole::Assistant);
    let unpaid = exchange.unpaid_reply.as_ref().expect("an unpaid reply");
    assert_eq!(unpaid.status, MessageStatus::InsufficientCredits);
    assert_eq!(unpaid.content, "We are out of answers today.");
    assert_eq!(unpaid.id, exchange.reply.id);
}

#[test]
fn a_paid_generation_publishes_a_flow_for_this_visitor_and_points_at_it() {
    let world = World::new().settings(|s| s.persona = Some("Answer like a librarian.".into()));
    let mut repo = MockVisitorRepository::new();
    finds_session(&mut repo, &world.context);
    publishes(
        &mut repo,
        &world,
        vec![world.item(
            ContentKind::Flow,
            "Invite a teammate",
            "Where the invite button is",
        )],
    );
    let exchanges = records(&mut repo, true);
    let outcomes = finishes(&mut repo);
    let mut model = model();
    let expected = GenerationRequest {
        site_name: "Example".into(),
        site_domain: "example.com".into(),
        persona: Some("Answer like a librarian.".into()),
        question: "How do I reset my password?".into(),
    };
    model
        .expect_generate()
        .times(1)
        .withf(move |request| *request == expected)
        .returning(|_| {
            Ok(guide(
                " Reset your\npassword ",
                "Where the reset link is",
                "Open Settings, then Security,\nthen Reset.",
            ))
        });
    model.expect_rank().never();
    let service = service(repo, Some(model));

    let answered = ask(&service, &world, "  How do I reset my password?\n").expect("answered");

    assert_question(&answered, &world, "How do I reset my password?");
    let exchanges = seen(&exchanges);
    let [exchange] = exchanges.as_slice() else {
        panic!("one exchange, got {exchanges:?}");
    };
    assert_eq!(exchange.cost, 1);
    assert_eq!(exchange.reply.status, MessageStatus::Analyzing);
    let analyzing_id = exchange.reply.id;

    let outcomes = seen(&outcomes);
    let [GenerationOutcome::Generated { item, reply }] = outcomes.as_slice() else {
        panic!("one generated outcome, got {outcomes:?}");
    };
    assert_eq!(item.site_id, world.gate.site.id);
    assert_eq!(item.kind, ContentKind::Flow);
    assert_eq!(item.status, ContentStatus::Published);
    assert_eq!(item.audiences, [Audience::no_users()]);
    assert!(item.generated);
    assert_eq!(item.name, "Reset your password");
    assert_eq!(item.description, "Where the reset link is");
    assert_eq!(
        item.origin,
        Some(GeneratedFrom {
            session_id: world.session_id(),
            message_id: analyzing_id,
            answer: "Open Settings, then Security,\nthen Reset.".into(),
        })
    );
    assert_eq!(item.created_at, t0());

    assert_eq!(reply, &answered.reply);
    assert_eq!(reply.id, analyzing_id);
    assert_eq!(reply.role, MessageRole::Assistant);
    assert_eq!(reply.status, MessageStatus::GeneratedContent);
    assert_eq!(reply.content, "Open Settings, then Security,\nthen Reset.");
    assert_eq!(
        reply.content_ref,
        Some(ContentRef {
            kind: ContentKind::Flow,
            id: item.id,
            name: "Reset your password".into(),
        })
    );
    assert_eq!(reply.model.as_deref(), Some(MODEL_NAME));
    assert_eq!(reply.tokens_used, Some(321));
}

#[test]
fn a_failed_generation_is_refunded_and_the_visitor_told() {
    type Generate = fn() -> Result<ModelReply<GeneratedGuide>, ModelError>;
    let cases: [(&str, Generate); 6] = [
        ("unavailable", || {
            Err(ModelError::Unavailable("timed out".into()))
        }),
        ("refused", || Err(ModelError::Refused("bad key".into()))),
        ("malformed", || {
            Err(ModelError::Malformed("not JSON".into()))
        }),
        ("a guide with no name", || {
            Ok(guide("", "A description", "An answer"))
        }),
        ("a guide whose name is invisible", || {
            Ok(guide(" \u{200B}\n", "A description", "An answer"))
        }),
        ("a guide with no answer", || {
            Ok(guide("A name", "", " \u{0} "))
        }),
    ];
    for (case, generate) in cases {
        let world = World::new();
        let mut repo = MockVisitorRepository::new();
        finds_session(&mut repo, &world.context);
        publishes(&mut repo, &world, Vec::new());
        let exchanges = records(&mut repo, true);
        let outcomes = finishes(&mut repo);
        let mut model = model();
        model
            .expect_generate()
            .times(1)
            .returning(move |_| generate());
        let service = service(repo, Some(model));

        let answered = ask(&service, &world, "How do I reset my password?").expect(case);

        let analyzing_id = seen(&exchanges)[0].reply.id;
        let reply = &answered.reply;
        assert_eq!(reply.id, analyzing_id, "{case}");
        assert_eq!(reply.role, MessageRole::Assistant, "{case}");
        assert_eq!(reply.status, MessageStatus::Failed, "{case}");
        assert_eq!(reply.content, GENERATION_FAILED_NOTICE, "{case}");
        assert_eq!(reply.content_ref, None, "{case}");
        assert_eq!(reply.model.as_deref(), Some(MODEL_NAME), "{case}");
        assert_eq!(
            seen(&outcomes),
            [GenerationOutcome::Failed {
                reply: reply.clone(),
                tenant_id: world.context.tenant_id,
                refund: 1,
            }],
            "{case}"
        );
    }
}

#[test]
fn a_store_error_finishing_a_generation_reaches_the_caller() {
    let world = World::new();
    let mut repo = MockVisitorRepository::new();
    finds_session(&mut repo, &world.context);
    publishes(&mut repo, &world, Vec::new());
    let _exchanges = records(&mut repo, true);
    // Tried once and again after each of the three waits, then given up.
    repo.expect_finish_generation()
        .times(4)
        .returning(|_| Err(Error::DatabaseUnavailable));
    let mut model = model();
    model
        .expect_generate()
        .times(1)
        .returning(|_| Ok(guide("Reset your password", "", "Open Settings.")));
    let service = service(repo, Some(model));
    let error = ask(&service, &world, "How do I reset my password?").expect_err("store down");
    assert_eq!(error, Error::DatabaseUnavailable);
}

#[test]
fn a_generation_outlives_a_database_blip() {
    let world = World::new();
    let mut repo = MockVisitorRepository::new();
    finds_session(&mut repo, &world.context);
    publishes(&mut repo, &world, Vec::new());
    let _exchanges = records(&mut repo, true);
    let mut calls = 0;
    repo.expect_finish_generation()
        .times(2)
        .returning(move |_| {
            calls += 1;
            if calls == 1 {
                Err(Error::DatabaseUnavailable)
            } else {
                Ok(())
            }
        });
    let mut model = model();
    model
        .expect_generate()
        .times(1)
        .returning(|_| Ok(guide("Reset your password", "", "Open Settings.")));
    let service = service(repo, Some(model));
    let answered = ask(&service, &world, "How do I reset my password?").expect("stored");
    assert_eq!(answered.reply.status, MessageStatus::GeneratedContent);
}

#[test]
fn an_ended_or_idle_session_takes_no_question() {
    // (minutes idle, ended)
    for (idle, ended) in [(31, false), (45, false), (24 * 60, false), (0, true)] {
        let mut world = World::new();
        world.context.session.last_active_at = t0() - Duration::minutes(idle);
        if ended {
            world.context.session.ended_at = Some(t0());
        }
        let mut repo = MockVisitorRepository::new();
        finds_session(&mut repo, &world.context);
        repo.expect_record_exchange().never();
        let service = service(repo, None);
        let error = ask(&service, &world, "How do I invite a teammate?")
            .expect_err("the widget must open a new session");
        assert_eq!(
            error,
            Error::NotFound(Entity::Session),
            "{idle} min, ended {ended}"
        );
    }
}

#[test]
fn the_content_index_is_rebuilt_only_when_the_content_version_changes() {
    // (the content version each ask sees, how often the content is read)
    let table: [(&[i64], usize); 5] = [
        (&[1], 1),
        (&[1, 1], 1),
        (&[1, 2], 2),
        (&[1, 2, 2, 2], 2),
        // A version older than the cached index's (a read that raced a
        // change) uses the newer index.
        (&[1, 2, 1, 3], 3),
    ];
    for (versions, reads) in table {
        let world = World::new();
        let mut repo = MockVisitorRepository::new();
        let queue = Mutex::new(versions.to_vec());
        let context = world.context.clone();
        repo.expect_find_session().returning(move |_, _| {
            let mut queue = queue.lock().expect("unpoisoned");
            let content_version = queue.remove(0);
            Ok(Some(AskContext {
                content_version,
                ..context.clone()
            }))
        });
        let items = vec![world.item(ContentKind::Flow, "Invite a teammate", "")];
        repo.expect_published_content()
            .times(reads)
            .returning(move |_| Ok(items.clone()));
        let _exchanges = records(&mut repo, true);
        let service = service(repo, None);
        for _ in versions {
            let answered = ask(&service, &world, "How do I invite a teammate?").expect("answered");
            assert_eq!(answered.reply.status, MessageStatus::MatchedContent);
        }
    }
}

/// Questions that all find the site's index stale wait for one build and
/// share it, rather than each reading the whole library.
#[test]
fn concurrent_questions_build_a_sites_index_once() {
    let world = World::new();
    let mut repo = MockVisitorRepository::new();
    let context = world.context.clone();
    repo.expect_find_session()
        .returning(move |_, _| Ok(Some(context.clone())));
    let items = vec![world.item(ContentKind::Flow, "Invite a teammate", "")];
    repo.expect_published_content()
        .times(1)
        .returning(move |_| {
            // Slow enough for the other questions to arrive meanwhile.
            std::thread::sleep(std::time::Duration::from_millis(100));
            Ok(items.clone())
        });
    let _exchanges = records(&mut repo, true);
    let service = service(repo, None);
    let start = std::sync::Barrier::new(8);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                start.wait();
                let answered =
                    ask(&service, &world, "How do I invite a teammate?").expect("answered");
                assert_eq!(answered.reply.status, MessageStatus::MatchedContent);
            });
        }
    });
}

#[test]
fn a_new_content_version_shows_new_items() {
    let world = World::new();
    let mut repo = MockVisitorRepository::new();
    let versions = Mutex::new(vec![1, 1, 2]);
    let context = world.context.clone();
    repo.expect_find_session().returning(move |_, _| {
        let content_version = versions.lock().expect("unpoisoned").remove(0);
        Ok(Some(AskContext {
            content_version,
            ..context.clone()
        }))
    });
    // The library gains "Export invoices" after the first read.
    let before = vec![world.item(ContentKind::Flow, "Invite a teammate", "")];
    let after = vec![
        before[0].clone(),
        world.item(ContentKind::Flow, "Export invoices", ""),
    ];
    let reads = Mutex::new(vec![before, after]);
    repo.expect_published_content()
        .times(2)
        .returning(move |_| Ok(reads.lock().expect("unpoisoned").remove(0)));
    let _exchanges = records(&mut repo, true);
    let service = service(repo, None);
    let statuses: Vec<MessageStatus> = (0..3)
        .map(|_| {
            ask(&service, &world, "How do I export invoices?")
                .expect("answered")
                .reply
                .status
        })
        .collect();
    assert_eq!(
        statuses,
        [
            MessageStatus::Completed,
            MessageStatus::Completed,
            MessageStatus::MatchedContent
        ]
    );
}

#[test]
fn a_flow_made_for_another_visitor_is_not_their_answer() {
    let world = World::new();
    let other_session = a_session().site_id(world.gate.site.id).build().id;
    // (whose Flow it is, the reply's status)
    let table = [
        (world.session_id(), MessageStatus::MatchedContent),
        (other_session, MessageStatus::Completed),
    ];
    for (made_for, status) in table {
        let flow = world.generated(made_for, "Export invoices as CSV");
        let mut repo = MockVisitorRepository::new();
        finds_session(&mut repo, &world.context);
        publishes(&mut repo, &world, vec![flow.clone()]);
        let _exchanges = records(&mut repo, true);
        let service = service(repo, None);
        let answered = ask(&service, &world, "How do I export invoices as CSV?").expect("answered");
        assert_eq!(answered.reply.status, status);
        if status == MessageStatus::MatchedContent {
            assert_eq!(answered.reply.content_ref.map(|r| r.id), Some(flow.id));
        } else {
            assert_eq!(answered.reply.content, NO_MODEL_NOTICE);
        }
    }
}

#[test]
fn drafts_are_never_an_answer() {
    let world = World::new();
    let draft = a_content_item()
        .site_id(world.gate.site.id)
        .status(ContentStatus::Draft)
        .build();
    let mut repo = MockVisitorRepository::new();
    finds_session(&mut repo, &world.context);
    publishes(&mut repo, &world, vec![draft]);
    let _exchanges = records(&mut repo, true);
    let service = service(repo, None);
    let answered = ask(&service, &world, "How do I invite a teammate?").expect("answered");
    assert_eq!(answered.reply.content, NO_MODEL_NOTICE);
}

// ------------------------------------------------------------ model ranker

/// Items for the model ranker: two about invoices, one unrelated.
fn ranked_items(world: &World) -> Vec<ContentItem> {
    vec![
        world.item(
            ContentKind::Flow,
            "Export invoices",
            "Download your invoices as a CSV file",
        ),
        world.item(
            ContentKind::Flow,
            "Download receipts",
            "Get a PDF of any payment receipt",
        ),
        world.item(
            ContentKind::Flow,
            "Invite a teammate",
            "Add people to your workspace",
        ),
    ]
}

/// The candidates the lexical ranker shortlists for the model.
fn shortlist(world: &World, items: &[ContentItem], question: &str) -> Vec<Candidate> {
    let index = AnswerIndex::build(items.iter().filter_map(Candidate::from_item).collect());
    index
        .shortlist(question, world.session_id(), 8)
        .into_iter()
        .map(|r| r.candidate.clone())
        .collect()
}

fn model_ranking_service(
    world: &World,
    items: Vec<ContentItem>,
    model: MockAnswerModel,
    paid: bool,
) -> (VisitorService, Seen<Exchange>) {
    let mut repo = MockVisitorRepository::new();
    finds_session(&mut repo, &world.context);
    publishes(&mut repo, world, items);
    let exchanges = records(&mut repo, paid);
    repo.expect_finish_generation().never();
    let service = service(repo, Some(model)).with_ranker(RankerChoice::Model);
    (service, exchanges)
}

#[test]
fn the_model_ranker_is_skipped_when_a_name_matches() {
    let world = World::new();
    let items = ranked_items(&world);
    let mut model = model();
    model.expect_rank().never();
    model.expect_generate().never();
    let (service, exchanges) = model_ranking_service(&world, items.clone(), model, true);
    let answered = ask(&service, &world, "how do i export invoices").expect("answered");
    assert_eq!(answered.reply.status, MessageStatus::MatchedContent);
    assert_eq!(answered.reply.content_ref.map(|r| r.id), Some(items[0].id));
    assert_eq!(answered.reply.model, None);
    assert_eq!(answered.reply.tokens_used, Some(0));
    assert_eq!(seen(&exchanges)[0].cost, 0);
}

#[test]
fn the_model_ranker_picks_among_the_shortlist() {
    let world = World::new();
    let items = ranked_items(&world);
    let question = "where can I download my invoices";
    let shortlisted = shortlist(&world, &items, question);
    assert!(shortlisted.len() >= 2, "{shortlisted:?}");
    let offered: Vec<RankCandidate> = shortlisted
        .iter()
        .map(|c| RankCandidate {
            name: c.name.clone(),
            description: c.description.clone(),
        })
        .collect();
    let mut model = model();
    model
        .expect_rank()
        .times(1)
        .withf(move |q, candidates| q == question && candidates == offered.as_slice())
        .returning(|_, _| {
            Ok(ModelReply {
                value: Some(1),
                model: "gpt-rank".into(),
                tokens_used: 17,
            })
        });
    model.expect_generate().never();
    let (service, exchanges) = model_ranking_service(&world, items, model, true);

    let answered = ask(&service, &world, question).expect("answered");

    let chosen = &shortlisted[1];
    assert_eq!(answered.reply.status, MessageStatus::MatchedContent);
    assert_eq!(
        answered.reply.content_ref,
        Some(ContentRef {
            kind: chosen.kind,
            id: chosen.id,
            name: chosen.name.clone(),
        })
    );
    assert_eq!(answered.reply.model.as_deref(), Some("gpt-rank"));
    assert_eq!(answered.reply.tokens_used, Some(17));
    assert_eq!(seen(&exchanges)[0].cost, 0);
}

#[test]
fn when_the_model_ranker_declines_the_question_goes_to_generation() {
    // (what the model answers: none, or an index past the shortlist)
    for choice in [None, Some(99)] {
        let world = World::new();
        let items = ranked_items(&world);
        let mut model = model();
        model.expect_rank().times(1).returning(move |_, _| {
            Ok(ModelReply {
                value: choice,
                model: "gpt-rank".into(),
                tokens_used: 9,
            })
        });
        // Out of credits, so the no-match path ends before generating.
        model.expect_generate().never();
        let (service, exchanges) = model_ranking_service(&world, items, model, false);
        let answered = ask(&service, &world, "where can I download my invoices").expect("answered");
        assert_eq!(
            answered.reply.status,
            MessageStatus::InsufficientCredits,
            "{choice:?}"
        );
        let exchanges = seen(&exchanges);
        assert_eq!(exchanges[0].cost, 1, "{choice:?}");
        assert_eq!(exchanges[0].reply.status, MessageStatus::Analyzing);
    }
}

#[test]
fn with_nothing_shortlisted_the_model_is_not_asked_to_rank() {
    let world = World::new();
    let items = ranked_items(&world);
    let mut model = model();
    model.expect_rank().never();
    model.expect_generate().never();
    let (service, exchanges) = model_ranking_service(&world, items, model, false);
    let answered = ask(&service, &world, "reset my password").expect("answered");
    assert_eq!(answered.reply.status, MessageStatus::InsufficientCredits);
    assert_eq!(seen(&exchanges)[0].cost, 1);
}

fn failing_ranker() -> MockAnswerModel {
    let mut model = model();
    model
        .expect_rank()
        .times(1)
        .returning(|_, _| Err(ModelError::Unavailable("timed out".into())));
    model.expect_generate().never();
    model
}

#[test]
fn when_the_model_cannot_rank_the_lexical_choice_answers() {
    let world = World::new();
    let items = ranked_items(&world);
    let question = "where can I download my invoices";
    let index = AnswerIndex::build(items.iter().filter_map(Candidate::from_item).collect());
    let lexical = index
        .rank(question, world.session_id())
        .expect("the lexical ranker has a choice")
        .candidate
        .clone();
    let (service, exchanges) = model_ranking_service(&world, items, failing_ranker(), true);

    let answered = ask(&service, &world, question).expect("answered");

    assert_eq!(answered.reply.status, MessageStatus::MatchedContent);
    assert_eq!(answered.reply.content_ref.map(|r| r.id), Some(lexical.id));
    assert_eq!(answered.reply.model, None);
    assert_eq!(answered.reply.tokens_used, Some(0));
    assert_eq!(seen(&exchanges)[0].cost, 0);
}

#[test]
fn when_the_model_cannot_rank_the_lexical_choice_answers_even_if_it_is_not_the_top_score() {
    // Two items share only common words with the question, so they score
    // highest but are not relevant; the third shares a rare word and is
    // the lexical ranker's choice.
    let world = World::new();
    let items = vec![
        world.item(ContentKind::Flow, "CSV data export for billing", ""),
        world.item(ContentKind::Flow, "Billing data export to CSV", ""),
        world.item(
            ContentKind::Flow,
            "Download PDF",
            "Get any invoice as a file",
        ),
    ];
    let question = "billing data export csv invoice";
    let index = AnswerIndex::build(items.iter().filter_map(Candidate::from_item).collect());
    assert_eq!(index.match_name(question, world.session_id()), None);
    let lexical = index
        .rank(question, world.session_id())
        .expect("the lexical ranker has a choice")
        .candidate
        .id;
    assert_eq!(lexical, items[2].id);
    let top = shortlist(&world, &items, question)[0].id;
    assert_ne!(
        top, lexical,
        "the case needs a top score that is not relevant"
    );
    let (service, _exchanges) = model_ranking_service(&world, items, failing_ranker(), true);

    let answered = ask(&service, &world, question).expect("answered");

    assert_eq!(answered.reply.content_ref.map(|r| r.id), Some(lexical));
}

#[test]
fn when_the_model_cannot_rank_and_nothing_is_relevant_the_question_goes_to_generation() {
    let world = World::new();
    // Every item shares the question's only word: it is common, never relevant.
    let items = vec![
        world.item(ContentKind::Flow, "Export data", ""),
        world.item(ContentKind::Flow, "Export users", ""),
        world.item(ContentKind::Flow, "Export invoices", ""),
    ];
    let (service, exchanges) = model_ranking_service(&world, items, failing_ranker(), false);
    let answered = ask(&service, &world, "export").expect("answered");
    assert_eq!(answered.reply.status, MessageStatus::InsufficientCredits);
    assert_eq!(seen(&exchanges)[0].cost, 1);
}

#[test]
fn the_model_ranker_without_a_model_is_the_lexical_one() {
    let world = World::new();
    let mut repo = MockVisitorRepository::new();
    finds_session(&mut repo, &world.context);
    let items = ranked_items(&world);
    let expected = items[0].id;
    publishes(&mut repo, &world, items);
    let _exchanges = records(&mut repo, true);
    let service = service(repo, None).with_ranker(RankerChoice::Model);
    let answered = ask(&service, &world, "where are my invoices").expect("answered");
    assert_eq!(answered.reply.status, MessageStatus::MatchedContent);
    assert_eq!(answered.reply.content_ref.map(|r| r.id), Some(expected));
}

// ------------------------------------------------------------------- vote

#[test]
fn a_vote_that_is_neither_up_nor_down_is_refused() {
    for vote in ["SIDEWAYS", "", "UPDOWN"] {
        let mut repo = repo_past_the_session_check_untouched();
        repo.expect_find_session().never();
        let service = service(repo, None);
        let error = service
            .vote(&key(), Some(TOKEN), MessageId(uuid::Uuid::now_v7()), vote)
            .expect_err("invalid vote");
        assert_eq!(error.code(), "VALIDATION_FAILED", "{vote:?}");
        let fields: Vec<_> = error.field_errors().iter().map(|f| &f.field).collect();
        assert_eq!(fields, ["vote"], "{vote:?}");
    }
}

#[test]
fn a_vote_is_recorded_and_a_down_vote_offers_a_ticket() {
    // (vote, what it is, whether a ticket is offered)
    let table = [("UP", Vote::Up, false), ("DOWN", Vote::Down, true)];
    for (raw, vote, offers_ticket) in table {
        let world = World::new();
        let message = MessageId(uuid::Uuid::now_v7());
        let session = world.session_id();
        let mut repo = MockVisitorRepository::new();
        finds_session(&mut repo, &world.context);
        repo.expect_vote()
            .times(1)
            .withf(move |s, m, v, _, now| {
                *s == session && *m == message && *v == vote && *now == t0()
            })
            .returning(|_, _, _, _, _| Ok(VoteOutcome { previous: None }));
        let service = service(repo, None);
        let voted = service
            .vote(&key(), Some(TOKEN), message, raw)
            .expect("voted");
        assert_eq!(voted.vote, vote);
        assert_eq!(
            voted.follow_ups.contains(&FollowUp::OpenTicket),
            offers_ticket,
            "{raw}"
        );
        if vote == Vote::Up {
            assert!(voted.follow_ups.is_empty());
        }
    }
}

#[test]
fn the_stores_refusal_of_a_vote_reaches_the_visitor() {
    let table = [
        (Error::NotAnAssistantMessage, "NOT_AN_ASSISTANT_MESSAGE"),
        (Error::NotFound(Entity::Message), "NOT_FOUND"),
        (Error::DatabaseUnavailable, "DATABASE_UNAVAILABLE"),
    ];
    for (refusal, code) in table {
        let world = World::new();
        let mut repo = MockVisitorRepository::new();
        finds_session(&mut repo, &world.context);
        let returned = refusal.clone();
        repo.expect_vote()
            .times(1)
            .returning(move |_, _, _, _, _| Err(returned.clone()));
        let service = service(repo, None);
        let error = service
            .vote(&key(), Some(TOKEN), MessageId(uuid::Uuid::now_v7()), "DOWN")
            .expect_err(code);
        assert_eq!(error, refusal);
        assert_eq!(error.code(), code);
    }
}

// ------------------------------------------------------------ clean_guide

#[test]
fn a_drafted_guide_is_cleaned() {
    let e120 = "é".repeat(120);
    // (name, description, answer) in, and out
    type Guide = (String, String, String);
    let s = |a: &str, b: &str, c: &str| -> Guide { (a.into(), b.into(), c.into()) };
    let table: Vec<(&str, Guide, Guide)> = vec![
        (
            "clean text stays",
            s("Export invoices", "Downloads them", "Open Billing."),
            s("Export invoices", "Downloads them", "Open Billing."),
        ),
        (
            "the name on one line, its spaces collapsed",
            s("  Export\n\tinvoices \r\n as  CSV ", "", "a"),
            s("Export invoices as CSV", "", "a"),
        ),
        (
            "control characters dropped everywhere",
            s(
                "Export\u{0}\u{7}invoices",
                "Line\u{0} one\r\nline\u{1b} two",
                "Step\u{7} 1\nStep 2\tthen\u{8} 3",
            ),
            s(
                "Exportinvoices",
                "Line one\nline two",
                "Step 1\nStep 2\tthen 3",
            ),
        ),
        (
            "invisible formatting dropped",
            s(
                "Export\u{200B} invoices\u{FEFF}",
                "\u{202E}desc",
                "\u{2066}answer\u{2069}",
            ),
            s("Export invoices", "desc", "answer"),
        ),
        (
            "the name cut to 120 characters",
            s(&"x".repeat(200), "", "a"),
            s(&"x".repeat(120), "", "a"),
        ),
        (
            "characters, not bytes",
            s(&"é".repeat(130), "", "a"),
            s(&e120, "", "a"),
        ),
        (
            "a cut name is trimmed again",
            s(&format!("{} tail", "a".repeat(119)), "", "a"),
            s(&"a".repeat(119), "", "a"),
        ),
        (
            "the description cut to 2000",
            s("n", &"d".repeat(2500), "a"),
            s("n", &"d".repeat(2000), "a"),
        ),
        (
            "the answer cut to 4000",
            s("n", "", &"a".repeat(5000)),
            s("n", "", &"a".repeat(GENERATED_ANSWER_MAX)),
        ),
        (
            "surrounding white space trimmed",
            s(" n ", "\n d \n", "\n\n a \n"),
            s("n", "d", "a"),
        ),
    ];
    for (case, (name, description, answer), (w_name, w_description, w_answer)) in table {
        let reply = ModelReply {
            value: GeneratedGuide {
                name,
                description,
                answer,
            },
            model: " gpt-test\n".into(),
            tokens_used: 77,
        };
        let cleaned = clean_guide(reply).expect(case);
        assert_eq!(
            cleaned,
            ModelReply {
                value: GeneratedGuide {
                    name: w_name,
                    description: w_description,
                    answer: w_answer,
                },
                model: "gpt-test".into(),
                tokens_used: 77,
            },
            "{case}"
        );
        assert_eq!(GENERATED_ANSWER_MAX, 4000);
    }
}

#[test]
fn a_drafted_guide_without_a_name_or_an_answer_is_malformed() {
    let table = [
        ("", "d", "a"),
        ("   ", "d", "a"),
        ("\n\t\r", "d", "a"),
        ("\u{200B}\u{FEFF}", "d", "a"),
        ("\u{0}\u{7}", "d", "a"),
        ("n", "d", ""),
        ("n", "d", " \n\t "),
        ("n", "d", "\u{0}\u{200B}"),
        ("", "", ""),
    ];
    for (name, description, answer) in table {
        let reply = guide(name, description, answer);
        assert!(
            matches!(clean_guide(reply), Err(ModelError::Malformed(_))),
            "{name:?} {description:?} {answer:?}"
        );
    }
}
