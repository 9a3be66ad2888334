//! Test support: [`FakeModelServer`], a tiny OpenAI-compatible server (std
//! only) with scripted replies that records what it is sent, for this
//! crate's tests and for end-to-end tests of the whole server.
//!
//! ```
//! use chatdesk_domain::ports::{AnswerModel, GenerationRequest};
//! use chatdesk_llm::testing::{Behaviour, FakeModelServer};
//! use chatdesk_llm::{LlmConfig, OpenAiCompatible};
//!
//! let server = FakeModelServer::start();
//! // Questions mentioning "refund" get this guide; others the default.
//! server.on_question("refund", Behaviour::guide("Refunds", "Ask for a refund", "Open Billing."));
//! server.on_question("broken", Behaviour::error(500, "overloaded"));
//!
//! let model = OpenAiCompatible::new(LlmConfig::new(server.base_url(), "fake-model")).unwrap();
//! let request = GenerationRequest {
//!     site_name: "Acme".into(),
//!     site_domain: "acme.example".into(),
//!     persona: None,
//!     question: "How do I get a refund?".into(),
//! };
//! assert_eq!(model.generate(&request).unwrap().value.name, "Refunds");
//! assert_eq!(server.requests()[0].question(), Some("How do I get a refund?"));
//! ```

use std::fmt;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

mod behaviour;
mod http;
mod recorded;

pub use behaviour::{Behaviour, FakeGuide, Usage};
pub use recorded::{RecordedRequest, RequestKind};

use behaviour::{answer, Answer};
use http::{read_request, write_json, ReadError};

/// The path the fake serves.
pub const COMPLETIONS_PATH: &str = "/v1/chat/completions";

/// How often a delayed answer checks whether the server is stopping.
const POLL: Duration = Duration::from_millis(10);

/// How long a connection may stay silent before the fake gives up on it.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A tiny OpenAI-compatible server on `127.0.0.1` (a free port) that
/// answers `POST /v1/chat/completions` as scripted and records every
/// request, serving each connection in a background thread (one request
/// per connection, `Connection: close`). Any other path or method gets a
/// 404 with an error body (and is recorded too).
///
/// What it answers to a request is, in order: the newest rule whose text
/// the question (the last `user` message) contains, ignoring case
/// ([`on_question`](Self::on_question), [`on_generate`](Self::on_generate),
/// [`on_rank`](Self::on_rank)); else the default
/// ([`set_default`](Self::set_default), initially [`Behaviour::Auto`]: a
/// guide made from the question for a generation request,
/// `{"choice": null}` for a ranking request). Rules and the default can be
/// changed while it runs; one server can serve a whole test.
///
/// It stops, and its threads end, when dropped.
pub struct FakeModelServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

/// A scripted answer for questions containing some text.
#[derive(Debug, Clone)]
struct Rule {
    /// Lower-cased.
    contains: String,
    /// `None`: both kinds of request.
    kind: Option<RequestKind>,
    behaviour: Behaviour,
}

struct Script {
    default: Behaviour,
    rules: Vec<Rule>,
}

struct Shared {
    stop: AtomicBool,
    served: AtomicU64,
    script: Mutex<Script>,
    requests: Mutex<Vec<RecordedRequest>>,
    arrived: Condvar,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// What to answer to `request`.
    fn behaviour_for(&self, request: &RecordedRequest) -> Behaviour {
        let script = lock(&self.script);
        let question = request.question().unwrap_or_default().to_lowercase();
        script
            .rules
            .iter()
            .rev()
            .find(|rule| {
                rule.kind.is_none_or(|kind| kind == request.kind)
                    && question.contains(&rule.contains)
            })
            .map_or_else(|| script.default.clone(), |rule| rule.behaviour.clone())
    }
}

impl FakeModelServer {
    /// Starts a server answering every request with [`Behaviour::Auto`].
    ///
    /// # Panics
    /// When no local port can be bound (test support only).
    pub fn start() -> FakeModelServer {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("bind a local port for the fake model server");
        let addr = listener
            .local_addr()
            .expect("the fake model server's address");
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            served: AtomicU64::new(0),
            script: Mutex::new(Script {
                default: Behaviour::Auto,
                rules: Vec::new(),
            }),
            requests: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("fake-model-accept".to_owned())
                .spawn(move || accept(&listener, &shared))
                .ok()
        };
        FakeModelServer {
            addr,
            shared,
            acceptor,
        }
    }

    /// `http://127.0.0.1:PORT/v1`: the value for `LLM_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers every request no rule matches as `behaviour`.
    pub fn set_default(&self, behaviour: Behaviour) {
        lock(&self.shared.script).default = behaviour;
    }

    /// Answers every request (generation or ranking) whose question
    /// contains `text` (ignoring case) as `behaviour`; newer rules win.
    pub fn on_question(&self, text: &str, behaviour: Behaviour) {
        self.add_rule(text, None, behaviour);
    }

    /// Answers generation requests whose question contains `text`
    /// (ignoring case) as `behaviour`; newer rules win.
    pub fn on_generate(&self, text: &str, behaviour: Behaviour) {
        self.add_rule(text, Some(RequestKind::Generate), behaviour);
    }

    /// Answers ranking requests whose question contains `text` (ignoring
    /// case) as `behaviour`; newer rules win.
    pub fn on_rank(&self, text: &str, behaviour: Behaviour) {
        self.add_rule(text, Some(RequestKind::Rank), behaviour);
    }

    fn add_rule(&self, text: &str, kind: Option<RequestKind>, behaviour: Behaviour) {
        lock(&self.shared.script).rules.push(Rule {
            contains: text.to_lowercase(),
            kind,
            behaviour,
        });
    }

    /// Forgets every rule and restores the default [`Behaviour::Auto`].
    pub fn reset(&self) {
        let mut script = lock(&self.shared.script);
        script.rules.clear();
        script.default = Behaviour::Auto;
    }

    /// Every request received so far, oldest first (recorded as it
    /// arrives, before any delay).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The requests received so far, once there are at least `count` or
    /// `timeout` has passed.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        let mut requests = lock(&self.shared.requests);
        while requests.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            requests = self
                .shared
                .arrived
                .wait_timeout(requests, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        requests.clone()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }
}

impl fmt::Debug for FakeModelServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeModelServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeModelServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor blocked in `accept`; if that fails it is left
        // to end with the process rather than hanging the test here.
        let woken = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok();
        if let Some(acceptor) = self.acceptor.take() {
            if woken {
                let _ = acceptor.join();
            }
        }
    }
}

fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping() {
            return;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name("fake-model-conn".to_owned())
            .spawn(move || serve(&stream, &shared));
        if spawned.is_err() {
            // Out of threads: the connection is dropped, the client sees
            // it closed.
            continue;
        }
    }
}

/// Serves one connection: one request, one answer.
fn serve(stream: &TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let request = match read_request(stream) {
        Ok(request) => request,
        Err(ReadError::Bad(status, why)) => {
            let _ = write_json(stream, status, &error_body(why));
            return;
        }
        Err(ReadError::Io) => return,
    };
    let id = shared.served.fetch_add(1, Ordering::SeqCst) + 1;
    let known = request.method == "POST" && request.path == COMPLETIONS_PATH;
    let behaviour = shared.behaviour_for(&request);
    {
        lock(&shared.requests).push(request.clone());
        shared.arrived.notify_all();
    }
    if !known {
        let why = format!("no route for {} {}", request.method, request.path);
        let _ = write_json(stream, 404, &error_body(&why));
        return;
    }
    let mut delayed = &behaviour;
    while let Behaviour::Delay(delay, then) = delayed {
        if !wait(*delay, shared) {
            return;
        }
        delayed = then;
    }
    match answer(&behaviour, &request, id) {
        Answer::Json { status, body } => {
            let _ = write_json(stream, status, &body);
        }
        Answer::Hangup => {}
    }
}

/// Waits `delay` unless the server stops first (then `false`).
fn wait(delay: Duration, shared: &Shared) -> bool {
    let deadline = Instant::now() + delay;
    loop {
        if shared.stopping() {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        thread::sleep(left.min(POLL));
    }
}

fn error_body(message: &str) -> String {
    serde_json::json!({"error": {"message": message, "type": "fake_error"}}).to_string()
}
