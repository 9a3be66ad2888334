//! Scenario 1: support tickets opened through the SDK while the SMTP
//! server is down for a minute and chatdesk is killed (SIGKILL) and
//! started again; then every ticket must exist once and every email must
//! arrive, a repeat only for an email being sent at a fault's instant.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use chatdesk_store::schema::{email_outbox, support_tickets};
use diesel::prelude::*;
use serde_json::Value;

use crate::http::{agent, all_pages, Latencies};
use crate::mailbox::{ticket_of, Mailbox};
use crate::pg::{free_port, Cluster};
use crate::server::Server;
use crate::visitor::{retried, Tries, Widget};
use crate::{verdict, Result, Settings};

/// How long one visitor's steps may take, retries included.
const VISITOR_DEADLINE: Duration = Duration::from_secs(120);
/// A repeated email is put down to a fault when its first copy arrived
/// this long before the fault at most.
const FAULT_WINDOW: Duration = Duration::from_secs(2);

/// What one visitor ended with.
struct Visit {
    ticket: std::result::Result<String, String>,
    tries: Tries,
    /// Of them, the ticket step's requests without an answer or with a 5xx.
    ticket_failed: usize,
    replayed: bool,
    ticket_latency: Duration,
}

fn visit(widget: &Widget<'_>, n: usize, run: &str) -> Visit {
    let deadline = Instant::now() + VISITOR_DEADLINE;
    let mut tries = Tries::default();
    let fail = |what: String, tries: Tries| Visit {
        ticket: Err(what),
        tries,
        ticket_failed: 0,
        replayed: false,
        ticket_latency: Duration::ZERO,
    };
    let anonymous = format!("chaos-{run}-{n}");
    let opened = retried(deadline, &mut tries, || widget.open(&anonymous));
    let Some(session) = Widget::session_of(&opened).filter(|_| opened.ok()) else {
        return fail(format!("session: {}", opened.describe()), tries);
    };
    // Asked again after a lost answer, the question is simply asked twice.
    let asked = retried(deadline, &mut tries, || {
        widget.ask(
            &session,
            &format!("How do I export invoices for month {n}?"),
        )
    });
    let Some(answer) = asked.text("/assistantMessage/id").filter(|_| asked.ok()) else {
        return fail(format!("question: {}", asked.describe()), tries);
    };
    let voted = retried(deadline, &mut tries, || {
        widget.vote(&session, &answer, "DOWN")
    });
    if !voted.ok() {
        return fail(format!("vote: {}", voted.describe()), tries);
    }
    let key = format!("ticket-{run}-{n}");
    let started = Instant::now();
    let before = tries.failed;
    let opened = retried(deadline, &mut tries, || widget.ticket(&session, &key, n));
    let ticket_failed = tries.failed - before;
    match opened.text("/id").filter(|_| opened.status == Some(201)) {
        Some(id) => Visit {
            ticket: Ok(id),
            tries,
            ticket_failed,
            replayed: opened.replayed,
            ticket_latency: started.elapsed(),
        },
        None => fail(format!("ticket: {}", opened.describe()), tries),
    }
}

/// The faults, as offsets from the clients' start.
struct Schedule {
    kills: Vec<Duration>,
    smtp_down: Duration,
    smtp_up: Duration,
}

impl Schedule {
    fn of(s: &Settings) -> Schedule {
        let span = s.create.as_secs_f64();
        // Kills spread over the creation span; the first while mail flows,
        // the others once it is down.
        let kills = (0..s.kills)
            .map(|i| Duration::from_secs_f64(span * (2 * i + 1) as f64 / (2 * s.kills) as f64))
            .collect();
        let smtp_down = Duration::from_secs_f64(span / 3.0);
        Schedule {
            kills,
            smtp_down,
            smtp_up: smtp_down + s.smtp_outage,
        }
    }
}

pub(crate) fn run(s: &Settings) -> Result<bool> {
    println!();
    println!(
        "## 1. {} tickets while SMTP is down {} s and chatdesk is killed {} times (PostgreSQL)",
        s.tickets,
        s.smtp_outage.as_secs(),
        s.kills
    );
    let cluster = Cluster::start()?;
    cluster.create_database("chaos_tickets")?;
    let url = cluster.url("chaos_tickets");
    let seeded = crate::seed::seed(&url, 1000, 0)?;
    let mail = Mailbox::start()?;
    let port = free_port()?;
    let mut server = Server::start(
        "chatdesk",
        port,
        &[
            ("DATABASE_URL", url.clone()),
            ("SMTP_URL", mail.url()),
            ("MAIL_FROM", "chatdesk <support@chaos.example.com>".into()),
        ],
    )?;
    let base = server.base();
    let schedule = Schedule::of(s);
    println!(
        "plan: {} visitors paced over {} s from {} client threads; SMTP down at {:.0} s, back at \
         {:.0} s; SIGKILL at {}",
        s.tickets,
        s.create.as_secs(),
        s.clients,
        schedule.smtp_down.as_secs_f64(),
        schedule.smtp_up.as_secs_f64(),
        schedule
            .kills
            .iter()
            .map(|k| format!("{:.0} s", k.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let visits: Mutex<Vec<(usize, Visit)>> = Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let start = Instant::now();
    let mut kill_at: Vec<Instant> = Vec::new();
    let mut restarts: Vec<Duration> = Vec::new();
    let mut smtp_down_at = None;
    let mut smtp_up_at = None;
    let mut fault_error: Option<String> = None;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    thread::scope(|scope| {
        for _ in 0..s.clients {
            scope.spawn(|| {
                let agent = agent(Duration::from_secs(30));
                let widget = Widget {
                    agent: &agent,
                    base: &base,
                    key: &seeded.key,
                };
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= s.tickets {
                        return;
                    }
                    let due = start + s.create.mul_f64(n as f64 / s.tickets as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        thread::sleep(wait);
                    }
                    let v = visit(&widget, n, &run_id);
                    if let Ok(mut all) = visits.lock() {
                        all.push((n, v));
                    }
                }
            });
        }
        // The faults, in time order.
        let mut events: Vec<(Duration, &str)> =
            schedule.kills.iter().map(|k| (*k, "kill")).collect();
        events.push((schedule.smtp_down, "smtp down"));
        events.push((schedule.smtp_up, "smtp up"));
        events.sort();
        for (at, what) in events {
            if let Some(wait) = (start + at).checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
            let t = start.elapsed().as_secs_f64();
            match what {
                "kill" => {
                    kill_at.push(Instant::now());
                    match server.kill_and_restart(Duration::from_millis(300)) {
                        Ok(took) => {
                            println!("{t:6.1} s: SIGKILL chatdesk; a new process answered /healthz {:.2} s later", took.as_secs_f64() + 0.3);
                            restarts.push(took);
                        }
                        Err(e) => {
                            fault_error.get_or_insert(format!("restart: {e}"));
                        }
                    }
                }
                "smtp down" => {
                    mail.down();
                    smtp_down_at = Some(Instant::now());
                    println!("{t:6.1} s: SMTP server stopped (nothing listens on its port)");
                }
                _ => match mail.up() {
                    Ok(()) => {
                        smtp_up_at = Some(Instant::now());
                        println!("{t:6.1} s: SMTP server back on the same port");
                    }
                    Err(e) => {
                        fault_error.get_or_insert(format!("SMTP back: {e}"));
                    }
                },
            }
        }
    });
    if let Some(e) = fault_error {
        return Err(e.into());
    }
    let created_by = start.elapsed();
    let mut visits = visits
        .into_inner()
        .map_err(|_| "a client thread panicked")?;
    visits.sort_by_key(|(n, _)| *n);
    let failed: Vec<String> = visits
        .iter()
        .filter_map(|(n, v)| v.ticket.as_ref().err().map(|e| format!("visitor {n}: {e}")))
        .collect();
    let ids: Vec<String> = visits
        .iter()
        .filter_map(|(_, v)| v.ticket.as_ref().ok().cloned())
        .collect();
    let tries = visits.iter().fold(Tries::default(), |acc, (_, v)| Tries {
        sent: acc.sent + v.tries.sent,
        failed: acc.failed + v.tries.failed,
        in_use: acc.in_use + v.tries.in_use,
    });
    let replayed = visits.iter().filter(|(_, v)| v.replayed).count();
    let cut_tickets = visits.iter().map(|(_, v)| v.ticket_failed).sum::<usize>();
    let cut_visitors = visits.iter().filter(|(_, v)| v.ticket_failed > 0).count();
    let latencies = Latencies(visits.iter().map(|(_, v)| v.ticket_latency).collect());
    println!(
        "clients: {} of {} tickets acknowledged (201) by {:.1} s; {} requests, {} without an \
         answer or 5xx and retried, {} IDEMPOTENCY_KEY_IN_USE and retried, {} tickets acknowledged \
         by a replay (Idempotency-Replayed); ticket step incl. retries p50 {:.1} ms, max {:.2} s",
        ids.len(),
        s.tickets,
        created_by.as_secs_f64(),
        tries.sent,
        tries.failed,
        tries.in_use,
        replayed,
        latencies.ms(50.0),
        latencies.max().as_secs_f64()
    );
    println!(
        "ticket requests without an answer or with a 5xx, sent again with their key: {cut_tickets} \
         (of {cut_visitors} visitors)"
    );
    for f in failed.iter().take(10) {
        println!("  not acknowledged: {f}");
    }

    // Delivery: wait for every email, bounded.
    let back = smtp_up_at.unwrap_or_else(Instant::now);
    let deadline = Instant::now() + s.drain_timeout;
    let last = mail.wait_distinct(s.tickets, deadline);
    match last {
        Some(last) => println!(
            "mail: the last of {} distinct emails arrived {:.1} s after SMTP came back ({:.1} s \
             after the run began)",
            s.tickets,
            last.saturating_duration_since(back).as_secs_f64(),
            last.saturating_duration_since(start).as_secs_f64()
        ),
        None => println!(
            "mail: not every email arrived within {} s (the drain deadline)",
            s.drain_timeout.as_secs()
        ),
    }
    // The worker records a send after the server accepted it.
    thread::sleep(Duration::from_secs(2));

    // What the dashboard shows.
    let dashboard = agent(Duration::from_secs(30));
    let listed = all_pages(
        &dashboard,
        &format!("{base}/api/v1/sites/{}/tickets", seeded.site_id),
        &seeded.token,
    )?;
    let listed_ids: HashSet<String> = listed
        .iter()
        .filter_map(|t| t.get("id").and_then(Value::as_str).map(str::to_string))
        .collect();
    let sessions: HashSet<String> = listed
        .iter()
        .filter_map(|t| {
            t.get("sessionId")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    let delivery: BTreeMap<String, usize> = listed.iter().fold(BTreeMap::new(), |mut m, t| {
        let status = t
            .pointer("/delivery/status")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        *m.entry(status).or_default() += 1;
        m
    });
    let acknowledged: HashSet<String> = ids.iter().cloned().collect();
    // And the database.
    let mut conn = chatdesk_store::connect(&url)?;
    let stored: i64 = support_tickets::table.count().get_result(&mut conn)?;
    let outbox: Vec<(String, i32)> = email_outbox::table
        .select((email_outbox::status, email_outbox::attempts))
        .load(&mut conn)?;
    let attempts: BTreeMap<i32, usize> = outbox.iter().fold(BTreeMap::new(), |mut m, (_, a)| {
        *m.entry(*a).or_default() += 1;
        m
    });
    println!(
        "dashboard: {} tickets listed, {} sessions, delivery {:?}; SQL: {stored} tickets, {} \
         outbox rows, attempts {:?}",
        listed.len(),
        sessions.len(),
        delivery,
        outbox.len(),
        attempts
    );

    // What the SMTP server got.
    let by_id = mail.by_id();
    let arrived: HashSet<String> = by_id.keys().filter_map(|id| ticket_of(id)).collect();
    let repeats: Vec<(&String, &(usize, Instant))> =
        by_id.iter().filter(|(_, (count, _))| *count > 1).collect();
    let faults: Vec<Instant> = kill_at.iter().copied().chain(smtp_down_at).collect();
    let unexplained = repeats
        .iter()
        .filter(|(_, (_, first))| {
            !faults.iter().any(|fault| {
                *first <= *fault + Duration::from_millis(50)
                    && fault.saturating_duration_since(*first) <= FAULT_WINDOW
            })
        })
        .count();
    let foreign = arrived.difference(&acknowledged).count();
    // Each repeat: when its copies arrived, and the fault nearest before
    // the first.
    let named_faults: Vec<(Instant, &str)> = kill_at
        .iter()
        .map(|k| (*k, "SIGKILL"))
        .chain(smtp_down_at.map(|d| (d, "SMTP's stop")))
        .collect();
    let arrivals = mail.arrivals();
    for (id, (_, first)) in &repeats {
        let copies: Vec<String> = arrivals
            .iter()
            .filter(|(m, _)| m == *id)
            .map(|(_, at)| format!("{:.1} s", at.saturating_duration_since(start).as_secs_f64()))
            .collect();
        let nearest = named_faults
            .iter()
            .filter(|(at, _)| *at + Duration::from_millis(50) >= *first)
            .min_by_key(|(at, _)| *at)
            .map_or("none after it".to_string(), |(at, what)| {
                format!(
                    "{what} at {:.1} s",
                    at.saturating_duration_since(start).as_secs_f64()
                )
            });
        println!(
            "  repeated {id}: arrived at {}; the next fault after its first copy: {nearest}",
            copies.join(", ")
        );
    }
    println!(
        "SMTP: {} messages, {} distinct Message-IDs of tickets ({} not of an acknowledged \
         ticket); {} arrived twice or more, {} of them first arriving within {} s before a kill \
         or SMTP's stop",
        by_id.values().map(|(c, _)| c).sum::<usize>(),
        arrived.len(),
        foreign,
        repeats.len(),
        repeats.len() - unexplained,
        FAULT_WINDOW.as_secs()
    );

    let restart_max = restarts.iter().max().copied().unwrap_or_default();
    println!(
        "restarts: {} (slowest to /healthz {:.2} s)",
        restarts.len(),
        restart_max.as_secs_f64()
    );
    let mut pass = true;
    pass &= verdict(
        failed.is_empty() && ids.len() == s.tickets,
        &format!(
            "every visitor's ticket acknowledged ({} of {})",
            ids.len(),
            s.tickets
        ),
    );
    pass &= verdict(
        listed.len() == s.tickets
            && listed_ids == acknowledged
            && sessions.len() == s.tickets
            && stored == s.tickets as i64,
        &format!(
            "each ticket exists exactly once: {} listed = {} acknowledged ids, one per session \
             ({} sessions), {stored} rows",
            listed.len(),
            acknowledged.len(),
            sessions.len()
        ),
    );
    pass &= verdict(
        arrived.len() == s.tickets && foreign == 0,
        &format!(
            "{} distinct Message-IDs arrived (of {})",
            arrived.len(),
            s.tickets
        ),
    );
    pass &= verdict(
        unexplained == 0,
        &format!(
            "repeats only at a fault's instant, with the same Message-ID: {} repeated, {} \
             otherwise",
            repeats.len(),
            unexplained
        ),
    );
    pass &= verdict(
        last.is_some() && outbox.iter().all(|(status, _)| status == "SENT"),
        &format!(
            "the outbox drained within {} s: {} of {} rows SENT",
            s.drain_timeout.as_secs(),
            outbox.iter().filter(|(st, _)| st == "SENT").count(),
            outbox.len()
        ),
    );
    drop(server);
    drop(mail);
    drop(cluster);
    Ok(pass)
}
