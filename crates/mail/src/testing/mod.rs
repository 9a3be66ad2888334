//! Test support, for this crate's tests and for end-to-end tests of the
//! whole server: [`FakeSmtpServer`], a tiny SMTP server (std only) that
//! records what it is sent (for `SMTP_URL`), and [`FakeResendServer`], a
//! tiny stand-in for Resend's email API that records each request and
//! answers as scripted (for `RESEND_BASE_URL`).
//!
//! ```
//! use chatdesk_mail::testing::FakeSmtpServer;
//! use std::time::Duration;
//!
//! let server = FakeSmtpServer::start();
//! let url = server.url(); // smtp://127.0.0.1:PORT, for SMTP_URL
//! // … send something through `url` …
//! let mails = server.wait_for(0, Duration::from_secs(5));
//! assert!(mails.is_empty());
//! ```

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often idle threads check whether the server is stopping.
const POLL: Duration = Duration::from_millis(50);

mod decode;
mod received;
mod resend;
mod session;

pub use received::ReceivedMail;
pub use resend::{FakeResendServer, ResendReply, ResendRequest};
use session::serve;

/// A tiny SMTP server on `127.0.0.1` (a free port) serving each connection
/// in a background thread. It speaks just enough SMTP for lettre: greeting,
/// `EHLO`/`HELO`, `AUTH PLAIN`/`LOGIN` (any credentials are accepted and
/// recorded), `MAIL FROM`, `RCPT TO`, `DATA`, `RSET`, `NOOP`, `QUIT`; no
/// TLS (`STARTTLS` is refused).
///
/// It stops, and its threads end, when dropped.
pub struct FakeSmtpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    /// The answer to every `RCPT TO`, when not `250`.
    refuse_recipients: Option<&'static str>,
    /// How long it waits after a message's data before accepting it.
    delay: Duration,
    stop: AtomicBool,
    connections: AtomicUsize,
    mails: Mutex<Vec<ReceivedMail>>,
    arrived: Condvar,
}

impl Shared {
    fn mails(&self) -> MutexGuard<'_, Vec<ReceivedMail>> {
        self.mails.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

impl FakeSmtpServer {
    /// Starts a server that accepts every message.
    ///
    /// # Panics
    /// When no local port can be bound (test support only).
    pub fn start() -> FakeSmtpServer {
        FakeSmtpServer::start_with(None)
    }

    /// Starts a server that answers every `RCPT TO` with
    /// `550 5.1.1 <address>: Recipient address rejected: User unknown`.
    ///
    /// # Panics
    /// When no local port can be bound (test support only).
    pub fn start_rejecting_recipients() -> FakeSmtpServer {
        FakeSmtpServer::start_with(Some("550 5.1.1 Recipient address rejected: User unknown"))
    }

    /// Starts a server that answers every `RCPT TO` with the temporary
    /// failure `450 4.2.1 <address>: Mailbox temporarily unavailable`.
    ///
    /// # Panics
    /// When no local port can be bound (test support only).
    pub fn start_deferring_recipients() -> FakeSmtpServer {
        FakeSmtpServer::start_with(Some("450 4.2.1 Mailbox temporarily unavailable"))
    }

    /// Starts a server that accepts every message on `addr`, e.g. the
    /// address of a server that was down, to bring it back where the
    /// application expects it (`SMTP_URL` unchanged).
    ///
    /// ```
    /// use chatdesk_mail::testing::FakeSmtpServer;
    ///
    /// let first = FakeSmtpServer::start();
    /// let addr = first.addr();
    /// drop(first); // down: nothing listens on `addr` now
    /// let back = FakeSmtpServer::start_at(addr).expect("the same address again");
    /// assert_eq!(back.url(), format!("smtp://{addr}"));
    /// ```
    ///
    /// # Errors
    /// When `addr` cannot be bound (in use, or not a local address).
    ///
    /// # Panics
    /// When the bound socket cannot be set up (test support only).
    pub fn start_at(addr: SocketAddr) -> std::io::Result<FakeSmtpServer> {
        FakeSmtpServer::start_slow_at(addr, Duration::ZERO)
    }

    /// Starts a server on `addr` (`127.0.0.1:0` for a free port) that
    /// accepts every message, each only `delay` after its data has arrived
    /// (a slow mail server: the client waits for the `250` that long). A
    /// server dropped while it waits closes the connection without
    /// accepting the message.
    ///
    /// ```
    /// use chatdesk_mail::testing::FakeSmtpServer;
    /// use std::time::Duration;
    ///
    /// let addr = "127.0.0.1:0".parse().expect("an address");
    /// let slow = FakeSmtpServer::start_slow_at(addr, Duration::from_secs(2))
    ///     .expect("a free port");
    /// assert_eq!(slow.url(), format!("smtp://{}", slow.addr()));
    /// ```
    ///
    /// # Errors
    /// When `addr` cannot be bound (in use, or not a local address).
    ///
    /// # Panics
    /// When the bound socket cannot be set up (test support only).
    pub fn start_slow_at(addr: SocketAddr, delay: Duration) -> std::io::Result<FakeSmtpServer> {
        let listener = TcpListener::bind(addr)?;
        Ok(FakeSmtpServer::serve_on(listener, None, delay))
    }

    fn start_with(refuse_recipients: Option<&'static str>) -> FakeSmtpServer {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("fake SMTP server: bind 127.0.0.1:0");
        FakeSmtpServer::serve_on(listener, refuse_recipients, Duration::ZERO)
    }

    fn serve_on(
        listener: TcpListener,
        refuse_recipients: Option<&'static str>,
        delay: Duration,
    ) -> FakeSmtpServer {
        let addr = listener
            .local_addr()
            .expect("fake SMTP server: local address");
        listener
            .set_nonblocking(true)
            .expect("fake SMTP server: non-blocking listener");
        let shared = Arc::new(Shared {
            refuse_recipients,
            delay,
            ..Shared::default()
        });
        let acceptor = thread::Builder::new()
            .name(format!("fake-smtp-{}", addr.port()))
            .spawn({
                let shared = Arc::clone(&shared);
                move || accept_loop(&listener, &shared)
            })
            .expect("fake SMTP server: spawn thread");
        FakeSmtpServer {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `smtp://127.0.0.1:PORT`, for `SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// The messages accepted so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.mails().clone()
    }

    /// Waits until at least `count` messages have arrived or `timeout` has
    /// passed, then returns all the messages accepted (possibly fewer).
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        let mut mails = self.shared.mails();
        while mails.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            mails = self
                .shared
                .arrived
                .wait_timeout(mails, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        mails.clone()
    }

    /// How many connections it has accepted.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Stops listening, waits for the sessions in progress to end, and
    /// returns every message it accepted: one accepted while it was being
    /// stopped is not missed, as it would be by reading [`messages`]
    /// before dropping it.
    ///
    /// [`messages`]: FakeSmtpServer::messages
    pub fn stop(mut self) -> Vec<ReceivedMail> {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.shared.mails().clone()
    }
}

impl fmt::Debug for FakeSmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeSmtpServer")
            .field("addr", &self.addr)
            .field("refuse_recipients", &self.shared.refuse_recipients)
            .field("delay", &self.shared.delay)
            .field("messages", &self.shared.mails().len())
            .finish()
    }
}

impl Drop for FakeSmtpServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut sessions: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stopping() {
        match listener.accept() {
            Ok((stream, _)) => {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(shared);
                let spawned = thread::Builder::new()
                    .name("fake-smtp-session".to_owned())
                    .spawn(move || {
                        let _ = serve(stream, &shared);
                    });
                if let Ok(handle) = spawned {
                    sessions.push(handle);
                }
            }
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
        sessions.retain(|handle| !handle.is_finished());
    }
    for session in sessions {
        let _ = session.join();
    }
}
