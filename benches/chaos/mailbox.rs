//! The SMTP side: `FakeSmtpServer` (a real SMTP server over TCP on
//! 127.0.0.1) that can go down (nothing listens on its port) and come back
//! on the same port, with every message's Message-ID and the instant it
//! was first seen, read by a watcher thread every few milliseconds.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use chatdesk_mail::testing::FakeSmtpServer;

use crate::Result;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The ticket id in a Message-ID `<ticket-{id}@domain>`.
pub(crate) fn ticket_of(message_id: &str) -> Option<String> {
    message_id
        .trim()
        .trim_start_matches('<')
        .strip_prefix("ticket-")?
        .split('@')
        .next()
        .map(str::to_string)
}

struct State {
    server: Option<FakeSmtpServer>,
    /// Messages of the current server already read.
    read: usize,
    /// Every message: its Message-ID and when it was seen.
    arrivals: Vec<(String, Instant)>,
}

pub(crate) struct Mailbox {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    watcher: Option<thread::JoinHandle<()>>,
}

fn collect(state: &mut State) {
    let Some(server) = &state.server else {
        return;
    };
    let mails = server.messages();
    let now = Instant::now();
    for mail in mails.iter().skip(state.read) {
        let id = mail.raw_header("Message-ID").unwrap_or_default();
        state.arrivals.push((id.trim().to_string(), now));
    }
    state.read = mails.len();
}

impl Mailbox {
    /// An SMTP server on a free port, watched.
    pub(crate) fn start() -> Result<Mailbox> {
        let server = FakeSmtpServer::start();
        let addr = server.addr();
        let state = Arc::new(Mutex::new(State {
            server: Some(server),
            read: 0,
            arrivals: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    collect(&mut lock(&state));
                    thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Ok(Mailbox {
            addr,
            state,
            stop,
            watcher: Some(watcher),
        })
    }

    pub(crate) fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Stops the server: nothing listens on its port any more. A message
    /// it accepted while stopping is counted too.
    pub(crate) fn down(&self) {
        let (server, read) = {
            let mut state = lock(&self.state);
            collect(&mut state);
            let read = state.read;
            state.read = 0;
            (state.server.take(), read)
        };
        let Some(server) = server else {
            return;
        };
        let mails = server.stop();
        let now = Instant::now();
        let mut state = lock(&self.state);
        for mail in mails.iter().skip(read) {
            let id = mail.raw_header("Message-ID").unwrap_or_default();
            state.arrivals.push((id.trim().to_string(), now));
        }
    }

    /// A new server on the same port.
    pub(crate) fn up(&self) -> Result<()> {
        let server = FakeSmtpServer::start_at(self.addr)?;
        let mut state = lock(&self.state);
        state.server = Some(server);
        state.read = 0;
        Ok(())
    }

    /// Every message so far: Message-ID and arrival.
    pub(crate) fn arrivals(&self) -> Vec<(String, Instant)> {
        let mut state = lock(&self.state);
        collect(&mut state);
        state.arrivals.clone()
    }

    /// How many times each Message-ID arrived, and its first arrival.
    pub(crate) fn by_id(&self) -> HashMap<String, (usize, Instant)> {
        let mut out: HashMap<String, (usize, Instant)> = HashMap::new();
        for (id, at) in self.arrivals() {
            out.entry(id).and_modify(|e| e.0 += 1).or_insert((1, at));
        }
        out
    }

    /// Waits until `want` distinct Message-IDs of tickets have arrived, at
    /// most until `deadline`; returns when the last of them arrived.
    pub(crate) fn wait_distinct(&self, want: usize, deadline: Instant) -> Option<Instant> {
        loop {
            let ids = self.by_id();
            let tickets = ids.keys().filter(|id| ticket_of(id).is_some()).count();
            if tickets >= want {
                return ids.values().map(|(_, at)| *at).max();
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
        lock(&self.state).server = None;
    }
}
