//! The measurements: opening tickets from client threads (each request's
//! latency), waiting until the fake SMTP server has received a set of
//! tickets' emails, and reading the outbox's state.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use chatdesk_mail::testing::FakeSmtpServer;
use chatdesk_store::schema::email_outbox;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::json;

use crate::seed::{agent, send, Session};
use crate::Result;

/// Latencies of one phase's requests, sorted.
pub(crate) struct Latencies {
    sorted: Vec<Duration>,
    /// From the first request's start to the last one's end.
    pub(crate) wall: Duration,
}

impl Latencies {
    pub(crate) fn count(&self) -> usize {
        self.sorted.len()
    }

    /// The `q`th percentile (nearest rank), in ms.
    pub(crate) fn ms(&self, q: f64) -> f64 {
        match self.sorted.len() {
            0 => f64::NAN,
            n => {
                let rank = ((q / 100.0) * n as f64).ceil() as usize;
                self.sorted[rank.clamp(1, n) - 1].as_secs_f64() * 1000.0
            }
        }
    }

    pub(crate) fn max_ms(&self) -> f64 {
        self.ms(100.0)
    }
}

/// Opens one ticket per session from `clients` threads (each with its
/// own keep-alive connection, taking the next session as it finishes);
/// returns the latencies and the tickets' ids.
pub(crate) fn open_tickets(
    base: &str,
    key: &str,
    sessions: &[Session],
    clients: usize,
    phase: &str,
) -> Result<(Latencies, Vec<String>)> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(Duration, String)>> = Mutex::new(Vec::with_capacity(sessions.len()));
    let failed: Mutex<Option<String>> = Mutex::new(None);
    let started = Instant::now();
    thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                let agent = agent();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(session) = sessions.get(n) else {
                        return;
                    };
                    let request = agent
                        .post(&format!(
                            "{base}/api/v1/sdk/chat/sessions/{}/tickets",
                            session.id
                        ))
                        .set("X-Chatdesk-Site-Key", key)
                        .set("X-Chatdesk-Session", &session.token);
                    let body = json!({
                        "email": format!("visitor-{n}@customer.bench.example.com"),
                        "subject": format!("{phase}: the export is empty ({n})"),
                        "body": "I exported March's invoices and the CSV file has no rows.\n\
                                 The answer said to pick a period first; I did."
                    });
                    let t = Instant::now();
                    let reply = send(request, body, 201);
                    let took = t.elapsed();
                    match reply.and_then(|v| {
                        v.get("id")
                            .and_then(|id| id.as_str())
                            .map(str::to_string)
                            .ok_or_else(|| format!("no id in {v}"))
                    }) {
                        Ok(id) => {
                            if let Ok(mut results) = results.lock() {
                                results.push((took, id));
                            }
                        }
                        Err(e) => {
                            if let Ok(mut failed) = failed.lock() {
                                failed.get_or_insert(e);
                            }
                            next.store(sessions.len(), Ordering::Relaxed);
                            return;
                        }
                    }
                }
            });
        }
    });
    let wall = started.elapsed();
    if let Some(e) = failed
        .into_inner()
        .map_err(|_| "a client thread panicked")?
    {
        return Err(format!("{phase}: opening a ticket failed: {e}").into());
    }
    let results = results
        .into_inner()
        .map_err(|_| "a client thread panicked")?;
    let ids: Vec<String> = results.iter().map(|(_, id)| id.clone()).collect();
    let mut sorted: Vec<Duration> = results.into_iter().map(|(d, _)| d).collect();
    sorted.sort();
    Ok((Latencies { sorted, wall }, ids))
}

/// The ticket id in a Message-ID `<ticket-{id}@domain>`.
fn ticket_of(message_id: &str) -> Option<&str> {
    message_id
        .trim()
        .trim_start_matches('<')
        .strip_prefix("ticket-")?
        .split('@')
        .next()
}

/// The tickets among `expected` whose email `server` has received.
pub(crate) fn received(server: &FakeSmtpServer, expected: &HashSet<String>) -> HashSet<String> {
    server
        .messages()
        .iter()
        .filter_map(|mail| mail.raw_header("Message-ID"))
        .filter_map(|id| ticket_of(&id).map(str::to_string))
        .filter(|ticket| expected.contains(ticket))
        .collect()
}

/// When a set of emails arrived, measured from a given instant.
pub(crate) struct Drain {
    /// The first of them.
    pub(crate) first: Duration,
    /// The last of them (every one has arrived).
    pub(crate) last: Duration,
    /// Messages that repeated one already received.
    pub(crate) repeats: usize,
}

impl Drain {
    /// Emails per second between the first and the last arrival.
    pub(crate) fn rate(&self, emails: usize) -> f64 {
        let span = self.last.saturating_sub(self.first).as_secs_f64();
        if emails < 2 || span <= 0.0 {
            f64::NAN
        } else {
            (emails - 1) as f64 / span
        }
    }
}

/// Waits until `server` has received the email of every ticket in
/// `expected` (its Message-ID names the ticket), at most `timeout`; times
/// are measured from `since`.
pub(crate) fn wait_delivered(
    server: &FakeSmtpServer,
    expected: &HashSet<String>,
    since: Instant,
    timeout: Duration,
) -> Result<Drain> {
    let deadline = Instant::now() + timeout;
    let mut seen: HashSet<String> = HashSet::new();
    let mut repeats = 0;
    let mut read = 0;
    let mut first = None;
    if expected.is_empty() {
        return Ok(Drain {
            first: Duration::ZERO,
            last: Duration::ZERO,
            repeats,
        });
    }
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "only {} of {} emails arrived within {} s",
                seen.len(),
                expected.len(),
                timeout.as_secs()
            )
            .into());
        }
        // Wakes as soon as another message arrives.
        let mails = server.wait_for(read + 1, left.min(Duration::from_millis(200)));
        let now = since.elapsed();
        for mail in mails.iter().skip(read) {
            let Some(id) = mail.raw_header("Message-ID") else {
                continue;
            };
            if let Some(ticket) = ticket_of(&id).filter(|t| expected.contains(*t)) {
                first.get_or_insert(now);
                if !seen.insert(ticket.to_string()) {
                    repeats += 1;
                }
            }
        }
        read = mails.len();
        if seen.len() == expected.len() {
            return Ok(Drain {
                first: first.unwrap_or(now),
                last: now,
                repeats,
            });
        }
    }
}

/// The outbox rows of some tickets: how many in each status, how many
/// attempts each has had, and the latest retry scheduled.
pub(crate) struct Outbox {
    pub(crate) statuses: BTreeMap<String, usize>,
    pub(crate) attempts: BTreeMap<i32, usize>,
    pub(crate) latest_retry: Option<NaiveDateTime>,
}

impl Outbox {
    pub(crate) fn read(database_url: &str, tickets: &[String]) -> Result<Outbox> {
        let mut conn = chatdesk_store::connect(database_url)?;
        let mut out = Outbox {
            statuses: BTreeMap::new(),
            attempts: BTreeMap::new(),
            latest_retry: None,
        };
        for chunk in tickets.chunks(200) {
            let rows: Vec<(String, i32, Option<NaiveDateTime>)> = email_outbox::table
                .filter(email_outbox::ticket_id.eq_any(chunk))
                .select((
                    email_outbox::status,
                    email_outbox::attempts,
                    email_outbox::next_attempt_at,
                ))
                .load(&mut conn)?;
            for (status, attempts, next) in rows {
                if status == "PENDING" {
                    out.latest_retry = out.latest_retry.max(next);
                }
                *out.statuses.entry(status).or_default() += 1;
                *out.attempts.entry(attempts).or_default() += 1;
            }
        }
        Ok(out)
    }

    pub(crate) fn statuses(&self) -> String {
        join(&self.statuses, |s| s.clone())
    }

    pub(crate) fn attempts(&self) -> String {
        join(&self.attempts, |a| format!("{a} attempts"))
    }
}

fn join<K>(map: &BTreeMap<K, usize>, name: impl Fn(&K) -> String) -> String {
    map.iter()
        .map(|(k, n)| format!("{n} {}", name(k)))
        .collect::<Vec<_>>()
        .join(", ")
}
