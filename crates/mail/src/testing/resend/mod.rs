//! [`FakeResendServer`]: a tiny stand-in for Resend's email API (std
//! only) that records what it is sent and answers as scripted.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::json;

mod http;
mod request;

pub use request::ResendRequest;

use http::{read_request, write_json, ReadError};

/// How often a delayed answer checks whether the server is stopping.
const POLL: Duration = Duration::from_millis(10);

/// How long a connection may stay silent before the fake gives up on it.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How the fake answers a request to `POST …/emails`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResendReply {
    /// What Resend does with a valid request: `200 {"id": "<uuid>"}`, the
    /// email counted as delivered ([`FakeResendServer::delivered`]).
    /// Like Resend, it answers `401 missing_api_key` without a bearer
    /// token, `422 missing_required_field` without `from`, `to` or
    /// `subject`, and honours `Idempotency-Key`: the same key with the
    /// same body gets the first answer and is not delivered again; with
    /// another body, `409 invalid_idempotent_request`; while the first
    /// request with the key is still being answered (delayed),
    /// `409 concurrent_idempotent_requests`. The default.
    Accept,
    /// This status with Resend's error body
    /// `{"statusCode", "name", "message"}`.
    Error {
        /// The HTTP status.
        status: u16,
        /// `name`, e.g. `validation_error`.
        name: String,
        /// `message`.
        message: String,
    },
    /// This status and body, verbatim, as `application/json`.
    Raw {
        /// The HTTP status.
        status: u16,
        /// The body.
        body: String,
    },
    /// Waits this long (e.g. longer than the client's timeout), then
    /// answers as the inner reply says (an accepted email counts as
    /// delivered even if the client gave up meanwhile, as with the real
    /// service).
    Delay(Duration, Box<ResendReply>),
    /// Closes the connection without answering.
    Hangup,
}

impl ResendReply {
    /// [`ResendReply::Accept`].
    pub fn accept() -> ResendReply {
        ResendReply::Accept
    }

    /// This status with Resend's error body.
    pub fn error(status: u16, name: &str, message: &str) -> ResendReply {
        ResendReply::Error {
            status,
            name: name.to_owned(),
            message: message.to_owned(),
        }
    }

    /// This status and body, verbatim.
    pub fn raw(status: u16, body: &str) -> ResendReply {
        ResendReply::Raw {
            status,
            body: body.to_owned(),
        }
    }

    /// Waits `delay`, then answers as `then` says.
    pub fn delayed(delay: Duration, then: ResendReply) -> ResendReply {
        ResendReply::Delay(delay, Box::new(then))
    }

    /// Waits `millis` milliseconds, then answers as `then` says.
    pub fn delayed_ms(millis: u64, then: ResendReply) -> ResendReply {
        ResendReply::delayed(Duration::from_millis(millis), then)
    }

    /// [`ResendReply::Hangup`].
    pub fn hangup() -> ResendReply {
        ResendReply::Hangup
    }

    /// The reply once every delay is waited out.
    fn settled(&self) -> &ResendReply {
        let mut reply = self;
        while let ResendReply::Delay(_, then) = reply {
            reply = then;
        }
        reply
    }
}

/// A tiny stand-in for Resend's email API on `127.0.0.1` (a free port),
/// for `RESEND_BASE_URL`: it answers `POST /emails` (or `POST
/// <prefix>/emails`) and records every request, serving each connection in
/// a background thread (one request per connection, `Connection: close`).
/// Another method gets `405 method_not_allowed`, another path
/// `404 not_found` (both recorded too).
///
/// Each request is answered with the next reply queued by
/// [`reply_next`](Self::reply_next), else with the default
/// ([`set_reply`](Self::set_reply), initially [`ResendReply::Accept`]).
///
/// ```
/// use chatdesk_mail::testing::{FakeResendServer, ResendReply};
/// use std::time::Duration;
///
/// let server = FakeResendServer::start();
/// let base_url = server.url(); // http://127.0.0.1:PORT, for RESEND_BASE_URL
/// server.reply_next(ResendReply::error(503, "service_unavailable", "try later"));
/// // … the first email gets a 503, the next ones are accepted …
/// let requests = server.wait_for(0, Duration::from_secs(1));
/// assert!(requests.is_empty());
/// assert!(server.delivered().is_empty());
/// ```
///
/// It stops, and its threads end, when dropped.
pub struct FakeResendServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Script {
    default: ResendReply,
    queue: VecDeque<ResendReply>,
}

#[derive(Default)]
struct Accepted {
    /// Idempotency key → (raw body, id) of the first accepted request.
    keys: HashMap<String, (String, String)>,
    /// Keys whose first request is still being answered.
    in_flight: HashSet<String>,
    /// Every email delivered, once each.
    delivered: Vec<ResendRequest>,
}

struct Shared {
    stop: AtomicBool,
    ids: AtomicU64,
    script: Mutex<Script>,
    requests: Mutex<Vec<ResendRequest>>,
    accepted: Mutex<Accepted>,
    /// Signalled when a request arrives (with `requests`).
    arrived: Condvar,
    /// Signalled when an email is delivered (with `accepted`).
    delivered: Condvar,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn next_reply(&self) -> ResendReply {
        let mut script = lock(&self.script);
        script
            .queue
            .pop_front()
            .unwrap_or_else(|| script.default.clone())
    }

    fn new_id(&self) -> String {
        let n = self.ids.fetch_add(1, Ordering::SeqCst) + 1;
        format!("00000000-0000-4000-8000-{n:012}")
    }
}

impl FakeResendServer {
    /// Starts a server that accepts every valid request.
    ///
    /// # Panics
    /// When no local port can be bound (test support only).
    pub fn start() -> FakeResendServer {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("fake Resend server: bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("fake Resend server: local address");
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            ids: AtomicU64::new(0),
            script: Mutex::new(Script {
                default: ResendReply::Accept,
                queue: VecDeque::new(),
            }),
            requests: Mutex::new(Vec::new()),
            accepted: Mutex::new(Accepted::default()),
            arrived: Condvar::new(),
            delivered: Condvar::new(),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("fake-resend-{}", addr.port()))
                .spawn(move || accept(&listener, &shared))
                .ok()
        };
        FakeResendServer {
            addr,
            shared,
            acceptor,
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the value for `RESEND_BASE_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers every request with no queued reply as `reply`.
    pub fn set_reply(&self, reply: ResendReply) {
        lock(&self.shared.script).default = reply;
    }

    /// Answers the next request not yet answered as `reply` (replies
    /// queue up, first in first out); later ones get the default again.
    pub fn reply_next(&self, reply: ResendReply) {
        lock(&self.shared.script).queue.push_back(reply);
    }

    /// Forgets queued replies and restores the default
    /// [`ResendReply::Accept`] (requests and deliveries are kept).
    pub fn reset(&self) {
        let mut script = lock(&self.shared.script);
        script.queue.clear();
        script.default = ResendReply::Accept;
    }

    /// Every request received so far, oldest first (recorded as it
    /// arrives, before any delay).
    pub fn requests(&self) -> Vec<ResendRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The requests received so far, once there are at least `count` or
    /// `timeout` has passed.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ResendRequest> {
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

    /// The emails delivered so far, each once (a request repeating an
    /// accepted `Idempotency-Key` is not delivered again), oldest first.
    pub fn delivered(&self) -> Vec<ResendRequest> {
        lock(&self.shared.accepted).delivered.clone()
    }

    /// The emails delivered so far, once there are at least `count` or
    /// `timeout` has passed.
    pub fn wait_for_delivered(&self, count: usize, timeout: Duration) -> Vec<ResendRequest> {
        let deadline = Instant::now() + timeout;
        let mut accepted = lock(&self.shared.accepted);
        while accepted.delivered.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            accepted = self
                .shared
                .delivered
                .wait_timeout(accepted, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        accepted.delivered.clone()
    }

    /// Forgets the requests received so far (deliveries and idempotency
    /// keys are kept).
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }
}

impl fmt::Debug for FakeResendServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeResendServer")
            .field("addr", &self.addr)
            .field("requests", &lock(&self.shared.requests).len())
            .field("delivered", &lock(&self.shared.accepted).delivered.len())
            .finish()
    }
}

impl Drop for FakeResendServer {
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
        // Out of threads: the connection is dropped, the client sees it
        // closed.
        let _ = thread::Builder::new()
            .name("fake-resend-conn".to_owned())
            .spawn(move || serve(&stream, &shared));
    }
}

/// Serves one connection: one request, one answer.
fn serve(stream: &TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let request = match read_request(stream) {
        Ok(request) => request,
        Err(ReadError::Bad(status, why)) => {
            let _ = write_json(stream, status, &error_body(status, "validation_error", why));
            return;
        }
        Err(ReadError::Io) => return,
    };
    {
        lock(&shared.requests).push(request.clone());
        shared.arrived.notify_all();
    }
    let path = request.path.split('?').next().unwrap_or_default();
    if !path.ends_with("/emails") {
        let why = format!("The requested endpoint {path} does not exist.");
        let _ = write_json(stream, 404, &error_body(404, "not_found", &why));
        return;
    }
    if request.method != "POST" {
        let why = "Method is not allowed for the requested path.";
        let _ = write_json(stream, 405, &error_body(405, "method_not_allowed", why));
        return;
    }
    let reply = shared.next_reply();
    // A key whose first request is still being answered.
    let key = request.idempotency_key().map(str::to_owned);
    let holds_key = match (&key, reply.settled()) {
        (Some(key), ResendReply::Accept) => {
            if !lock(&shared.accepted).in_flight.insert(key.clone()) {
                let why = "Same idempotency key used while original request is still in progress.";
                let _ = write_json(
                    stream,
                    409,
                    &error_body(409, "concurrent_idempotent_requests", why),
                );
                return;
            }
            true
        }
        _ => false,
    };
    let mut delayed = &reply;
    let mut waited = true;
    while let ResendReply::Delay(delay, then) = delayed {
        if !wait(*delay, shared) {
            waited = false;
            break;
        }
        delayed = then;
    }
    let answer = if waited {
        answer(delayed, &request, shared)
    } else {
        None
    };
    if holds_key {
        if let Some(key) = &key {
            lock(&shared.accepted).in_flight.remove(key);
        }
    }
    if let Some((status, body)) = answer {
        let _ = write_json(stream, status, &body);
    }
}

/// The status and body for `reply` (`None`: hang up), delivering the
/// email when it is accepted.
fn answer(reply: &ResendReply, request: &ResendRequest, shared: &Shared) -> Option<(u16, String)> {
    match reply {
        ResendReply::Accept => Some(accept_email(request, shared)),
        ResendReply::Error {
            status,
            name,
            message,
        } => Some((*status, error_body(*status, name, message))),
        ResendReply::Raw { status, body } => Some((*status, body.clone())),
        ResendReply::Delay(_, then) => answer(then, request, shared),
        ResendReply::Hangup => None,
    }
}

/// What Resend answers a request it processes.
fn accept_email(request: &ResendRequest, shared: &Shared) -> (u16, String) {
    if request.bearer().is_none_or(|token| token.trim().is_empty()) {
        let why = "Missing API key in the authorization header.";
        return (401, error_body(401, "missing_api_key", why));
    }
    let missing: Vec<&str> = ["from", "to", "subject"]
        .into_iter()
        .filter(|field| match request.body.get(field) {
            Some(value) => value.is_null() || value.as_str() == Some(""),
            None => true,
        })
        .collect();
    if !request.body.is_object() || !missing.is_empty() {
        let why = format!("Missing `{}` field.", missing.join("`, `"));
        return (422, error_body(422, "missing_required_field", &why));
    }
    let mut accepted = lock(&shared.accepted);
    if let Some(key) = request.idempotency_key() {
        if let Some((body, id)) = accepted.keys.get(key) {
            return if *body == request.raw_body {
                (200, json!({ "id": id }).to_string())
            } else {
                let why = "Same idempotency key used with a different request payload.";
                (409, error_body(409, "invalid_idempotent_request", why))
            };
        }
    }
    let id = shared.new_id();
    if let Some(key) = request.idempotency_key() {
        accepted
            .keys
            .insert(key.to_owned(), (request.raw_body.clone(), id.clone()));
    }
    accepted.delivered.push(request.clone());
    shared.delivered.notify_all();
    (200, json!({ "id": id }).to_string())
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

/// Resend's error body.
fn error_body(status: u16, name: &str, message: &str) -> String {
    json!({ "statusCode": status, "name": name, "message": message }).to_string()
}
