//! The database going away after start and coming back: dashboard calls
//! answer 503 `DATABASE_UNAVAILABLE` quickly while it is gone, and the
//! server serves again by itself once it is back. PostgreSQL only
//! (`CHATDESK_TEST_BACKEND=postgres`): the server reaches it through a TCP
//! proxy the test cuts (closing sockets) or black-holes (accepting and
//! holding sockets open without relaying a byte) and restores.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use chatdesk_domain::tenant::Plan;

use crate::helpers::{Reply, TestApp};

/// A TCP proxy in front of the database. `cut` closes every open
/// connection and refuses new ones (as a database that went down);
/// `black_hole` closes every open connection and then accepts new ones but
/// never relays a byte of them and keeps them open, even after `restore`
/// (as an address whose packets are dropped: what was sent is lost);
/// `restore` lets connections through again.
struct Proxy {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
}

struct ProxyShared {
    upstream: String,
    up: AtomicBool,
    black_hole: AtomicBool,
    stop: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
    /// Connections swallowed by the black hole, held open until the proxy
    /// is dropped.
    held: Mutex<Vec<TcpStream>>,
}

impl ProxyShared {
    fn close_all(&self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        for stream in open.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn relay(&self, client: TcpStream) -> io::Result<()> {
        let server = TcpStream::connect(&self.upstream)?;
        {
            let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            // A cut that came while this connection was being made (after
            // the accept loop saw the proxy up) has already closed the
            // others: close this one too, under the same lock.
            if !self.up.load(Ordering::SeqCst) || self.black_hole.load(Ordering::SeqCst) {
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
                return Ok(());
            }
            open.push(client.try_clone()?);
            open.push(server.try_clone()?);
        }
        for (mut from, mut to) in [(client.try_clone()?, server.try_clone()?), (server, client)] {
            thread::spawn(move || {
                let _ = io::copy(&mut from, &mut to);
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
            });
        }
        Ok(())
    }
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(ProxyShared {
            upstream: upstream.to_string(),
            up: AtomicBool::new(true),
            black_hole: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
            held: Mutex::new(Vec::new()),
        });
        let accepting = Arc::clone(&shared);
        thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if accepting.black_hole.load(Ordering::SeqCst) {
                    accepting
                        .held
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(client);
                } else if accepting.up.load(Ordering::SeqCst) {
                    let _ = accepting.relay(client);
                } else {
                    let _ = client.shutdown(Shutdown::Both);
                }
            }
        });
        Proxy { addr, shared }
    }

    fn cut(&self) {
        self.shared.up.store(false, Ordering::SeqCst);
        self.shared.close_all();
    }

    fn black_hole(&self) {
        self.shared.black_hole.store(true, Ordering::SeqCst);
        self.shared.close_all();
    }

    fn restore(&self) {
        self.shared.black_hole.store(false, Ordering::SeqCst);
        self.shared.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.close_all();
        let mut held = self
            .shared
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for stream in held.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(self.addr);
    }
}

/// `url`'s `host:port`, and `url` with it replaced by `addr`.
fn through(url: &str, addr: SocketAddr) -> (String, String) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    let authority = &url[start..end];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let hostport = &authority[host_start..];
    let upstream = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:5432")
    };
    let rewritten = format!(
        "{}{}{addr}{}",
        &url[..start],
        &authority[..host_start],
        &url[end..]
    );
    (upstream, rewritten)
}

fn on_postgres() -> bool {
    std::env::var("CHATDESK_TEST_BACKEND").as_deref() == Ok("postgres")
}

/// Sends `request` and returns its reply and how long it took.
fn timed(request: impl FnOnce() -> Reply) -> (Reply, Duration) {
    let started = Instant::now();
    let reply = request();
    (reply, started.elapsed())
}

#[track_caller]
fn assert_unavailable(reply: &Reply, took: Duration) {
    assert_unavailable_within(reply, took, Duration::from_secs(5));
}

#[track_caller]
fn assert_unavailable_within(reply: &Reply, took: Duration, limit: Duration) {
    reply.assert_problem(503, "DATABASE_UNAVAILABLE");
    let retry_after = reply.header("retry-after").expect("Retry-After");
    assert!(
        retry_after.parse::<u32>().is_ok_and(|s| s > 0),
        "{retry_after}"
    );
    assert!(took < limit, "answered after {took:?}");
}

/// Starts a server that reaches its database through a [`Proxy`].
fn spawn_behind_proxy() -> Option<(TestApp, Proxy)> {
    let mut proxy = None;
    let app = TestApp::try_spawn_with(|config| {
        let probe: SocketAddr = ([127, 0, 0, 1], 0).into();
        let (upstream, _) = through(&config.database_url, probe);
        let started = Proxy::start(&upstream);
        config.database_url = through(&config.database_url, started.addr).1;
        proxy = Some(started);
    })?;
    Some((app, proxy.expect("proxy started")))
}

/// Asks `/api/v1/me` until it answers 200, for at most `limit`.
fn serving_again_within(app: &TestApp, token: &str, limit: Duration) -> (Reply, Duration) {
    let restored = Instant::now();
    let mut me = app.get("/api/v1/me", Some(token));
    while me.status != 200 && restored.elapsed() < limit {
        thread::sleep(Duration::from_millis(100));
        me = app.get("/api/v1/me", Some(token));
    }
    (me, restored.elapsed())
}

/// A database whose address swallows everything (a failover or partition
/// dropping packets): new connections are accepted at the TCP level and
/// then never answered. libpq's `connect_timeout` (added to the URL by the
/// store) makes each attempt give up, so callers get a 503 and, once the
/// database answers again, the pool makes fresh connections instead of
/// waiting forever on the swallowed ones.
#[test]
fn a_black_holed_database_is_a_503_and_the_server_recovers_by_itself() {
    if !on_postgres() {
        return;
    }
    let Some((app, proxy)) = spawn_behind_proxy() else {
        return;
    };
    let tenant = app.tenant(Plan::Pro);
    assert_eq!(app.get("/api/v1/me", Some(&tenant.token)).status, 200);

    proxy.black_hole();
    for path in ["/api/v1/me", "/api/v1/sites"] {
        let (reply, took) = timed(|| app.get(path, Some(&tenant.token)));
        assert_unavailable_within(&reply, took, Duration::from_secs(6));
    }
    // Long enough for the pool's connection attempts (made in the
    // background) to be swallowed too.
    thread::sleep(Duration::from_secs(3));
    let (ready, took) = timed(|| app.get("/readyz", None));
    assert_unavailable_within(&ready, took, Duration::from_secs(6));

    proxy.restore();
    let (me, took) = serving_again_within(&app, &tenant.token, Duration::from_secs(8));
    assert_eq!(me.status, 200, "after {took:?}: {}", me.body);
    assert_eq!(me.body["tenant"]["id"], tenant.id.as_str());
    assert_eq!(app.get("/readyz", None).status, 200);
}

#[test]
fn a_lost_database_is_a_quick_503_and_the_server_recovers_by_itself() {
    if !on_postgres() {
        return;
    }
    let Some((app, proxy)) = spawn_behind_proxy() else {
        return;
    };
    let tenant = app.tenant(Plan::Pro);
    assert_eq!(app.get("/api/v1/me", Some(&tenant.token)).status, 200);
    assert_eq!(app.get("/readyz", None).status, 200);

    for outage in 0..2 {
        proxy.cut();
        // Pooled connections are now closed and new ones refused.
        let (me, took) = timed(|| app.get("/api/v1/me", Some(&tenant.token)));
        assert_unavailable(&me, took);
        let (sites, took) = timed(|| app.get("/api/v1/sites", Some(&tenant.token)));
        assert_unavailable(&sites, took);
        let (ready, took) = timed(|| app.get("/readyz", None));
        assert_unavailable(&ready, took);

        proxy.restore();
        let (me, took) = serving_again_within(&app, &tenant.token, Duration::from_secs(5));
        assert_eq!(me.status, 200, "outage {outage}: {}", me.body);
        assert_eq!(me.body["tenant"]["id"], tenant.id.as_str());
        assert!(
            took < Duration::from_secs(5),
            "outage {outage}: serving again after {took:?}"
        );
        assert_eq!(app.get("/readyz", None).status, 200);
    }
}

#[test]
fn proxied_urls_keep_everything_but_the_address() {
    let addr: SocketAddr = ([127, 0, 0, 1], 6000).into();
    assert_eq!(
        through("postgres://u:p@db:5433/test?options=x", addr),
        (
            "db:5433".to_string(),
            "postgres://u:p@127.0.0.1:6000/test?options=x".to_string()
        )
    );
    assert_eq!(
        through("postgresql://db/test", addr),
        (
            "db:5432".to_string(),
            "postgresql://127.0.0.1:6000/test".to_string()
        )
    );
}
