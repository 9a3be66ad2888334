//! Scenario 3: two chatdesk processes on one PostgreSQL, visitors calling
//! both at once: the per-session rate limit, the tenant's credits, the
//! vote counters and ticket email delivery must come out exact.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use chatdesk_llm::testing::FakeModelServer;
use serde_json::Value;

use crate::http::{agent, all_pages, call, Reply};
use crate::mailbox::{ticket_of, Mailbox};
use crate::pg::{free_port, Cluster};
use crate::server::Server;
use crate::visitor::Widget;
use crate::{verdict, Result, Settings};

/// Questions each session sends, half to each server at once.
const QUESTIONS: usize = 12;
/// The widget's per-session limit.
const LIMIT: usize = 5;

/// What one visitor saw.
#[derive(Default)]
struct Outcome {
    answered: usize,
    limited: usize,
    /// Other answers (each one a failure).
    other: Vec<String>,
    /// Replies by status.
    statuses: BTreeMap<String, usize>,
    ups: i64,
    downs: i64,
    ticket: Option<String>,
}

fn question(visitor: usize, i: usize) -> String {
    if i.is_multiple_of(2) {
        format!("How do I export invoices? ({visitor}.{i})")
    } else {
        // Names nothing published: the model drafts a Flow (one credit).
        format!("Why does quarter q{visitor}x{i} show a zebra watermark?")
    }
}

fn one_visitor(
    widgets: [&Widget<'_>; 2],
    visitor: usize,
    run: &str,
) -> std::result::Result<Outcome, String> {
    let opened = widgets[visitor % 2].open(&format!("replica-{run}-{visitor}"));
    let session = Widget::session_of(&opened)
        .filter(|_| opened.ok())
        .ok_or_else(|| format!("session: {}", opened.describe()))?;
    let mut out = Outcome::default();
    // Every question at once: half to each server.
    let replies: Vec<Reply> = thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|side| {
                let (widget, session) = (widgets[side], &session);
                scope.spawn(move || {
                    (0..QUESTIONS / 2)
                        .map(|i| widget.ask(session, &question(visitor, 2 * i + side)))
                        .collect::<Vec<Reply>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut answers = Vec::new();
    for reply in &replies {
        match (reply.status, reply.code()) {
            (Some(201), _) => {
                out.answered += 1;
                let status = reply
                    .text("/assistantMessage/status")
                    .unwrap_or_else(|| "?".into());
                *out.statuses.entry(status).or_default() += 1;
                if let Some(id) = reply.text("/assistantMessage/id") {
                    answers.push(id);
                }
            }
            (Some(429), "RATE_LIMITED") if reply.retry_after.is_some() => out.limited += 1,
            _ => out.other.push(format!("question: {}", reply.describe())),
        }
    }
    // Votes from both servers at once: the first answer DOWN; the others
    // UP on one server, and every second one then changed to DOWN on the
    // other.
    let votes: Vec<(i64, i64, Option<String>)> = thread::scope(|scope| {
        let handles: Vec<_> = answers
            .iter()
            .enumerate()
            .map(|(i, answer)| {
                let session = &session;
                scope.spawn(move || {
                    let (first, second) = (widgets[i % 2], widgets[(i + 1) % 2]);
                    let mut steps = vec![(first, if i == 0 { "DOWN" } else { "UP" })];
                    if i % 2 == 1 {
                        steps.push((second, "DOWN"));
                    }
                    let mut last = None;
                    for (widget, vote) in steps {
                        let reply = widget.vote(session, answer, vote);
                        if reply.status != Some(200) {
                            return (0, 0, Some(format!("vote: {}", reply.describe())));
                        }
                        last = Some(vote);
                    }
                    match last {
                        Some("UP") => (1, 0, None),
                        _ => (0, 1, None),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or((0, 0, Some("a vote thread panicked".into())))
            })
            .collect()
    });
    for (up, down, error) in votes {
        out.ups += up;
        out.downs += down;
        out.other.extend(error);
    }
    // One ticket, the same request sent to both servers at once with one
    // Idempotency-Key; a 409 (the other's still running) is sent again.
    let key = format!("replica-ticket-{run}-{visitor}");
    let tickets: Vec<Reply> = thread::scope(|scope| {
        let handles: Vec<_> = widgets
            .iter()
            .map(|widget| {
                let (session, key) = (&session, &key);
                scope.spawn(move || {
                    let deadline = Instant::now() + Duration::from_secs(30);
                    loop {
                        let reply = widget.ticket(session, key, visitor);
                        if reply.status != Some(409) || Instant::now() > deadline {
                            return reply;
                        }
                        thread::sleep(Duration::from_millis(50));
                    }
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let ids: HashSet<Option<String>> = tickets
        .iter()
        .map(|t| t.text("/id").filter(|_| t.status == Some(201)))
        .collect();
    match (ids.len(), ids.into_iter().next().flatten()) {
        (1, Some(id)) => out.ticket = Some(id),
        _ => out.other.push(format!(
            "ticket: {}",
            tickets
                .iter()
                .map(Reply::describe)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
    Ok(out)
}

pub(crate) fn run(s: &Settings) -> Result<bool> {
    println!();
    println!(
        "## 3. Two chatdesk processes on one PostgreSQL: {} visitors calling both",
        s.replica_visitors
    );
    let cluster = Cluster::start()?;
    cluster.create_database("chaos_replicas")?;
    let url = cluster.url("chaos_replicas");
    let credits = (s.replica_visitors as i64) * 2;
    let seeded = crate::seed::seed(&url, LIMIT as i64, credits)?;
    let model = FakeModelServer::start();
    let mail = Mailbox::start()?;
    let env = [
        ("DATABASE_URL", url.clone()),
        ("SMTP_URL", mail.url()),
        ("MAIL_FROM", "chatdesk <support@chaos.example.com>".into()),
        ("LLM_BASE_URL", model.base_url()),
        ("LLM_MODEL", "chaos-model".into()),
        ("DATABASE_POOL_SIZE", "8".into()),
    ];
    let a = Server::start("replica-a", free_port()?, &env)?;
    let b = Server::start("replica-b", free_port()?, &env)?;
    let (base_a, base_b) = (a.base(), b.base());
    println!(
        "replicas on {base_a} and {base_b}; widget limit {LIMIT} questions per session, \
         {QUESTIONS} asked at once (half to each); {credits} credits to start"
    );
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<(usize, std::result::Result<Outcome, String>)>> =
        Mutex::new(Vec::new());
    let started = Instant::now();
    thread::scope(|scope| {
        for _ in 0..s.clients {
            scope.spawn(|| {
                let (agent_a, agent_b) = (
                    agent(Duration::from_secs(30)),
                    agent(Duration::from_secs(30)),
                );
                let wa = Widget {
                    agent: &agent_a,
                    base: &base_a,
                    key: &seeded.key,
                };
                let wb = Widget {
                    agent: &agent_b,
                    base: &base_b,
                    key: &seeded.key,
                };
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= s.replica_visitors {
                        return;
                    }
                    let outcome = one_visitor([&wa, &wb], n, &run_id);
                    if let Ok(mut all) = outcomes.lock() {
                        all.push((n, outcome));
                    }
                }
            });
        }
    });
    let took = started.elapsed();
    let outcomes = outcomes
        .into_inner()
        .map_err(|_| "a client thread panicked")?;
    let mut problems: Vec<String> = Vec::new();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let (mut exact_limit, mut answered, mut limited) = (0, 0, 0);
    let mut expected_votes: HashMap<String, (i64, i64)> = HashMap::new();
    let mut tickets: HashMap<String, usize> = HashMap::new();
    for (n, outcome) in &outcomes {
        match outcome {
            Err(e) => problems.push(format!("visitor {n}: {e}")),
            Ok(o) => {
                answered += o.answered;
                limited += o.limited;
                if o.answered == LIMIT && o.limited == QUESTIONS - LIMIT {
                    exact_limit += 1;
                } else {
                    problems.push(format!(
                        "visitor {n}: {} answered, {} limited",
                        o.answered, o.limited
                    ));
                }
                for (status, count) in &o.statuses {
                    *statuses.entry(status.clone()).or_default() += count;
                }
                problems.extend(o.other.iter().map(|e| format!("visitor {n}: {e}")));
                if let Some(t) = &o.ticket {
                    tickets.insert(t.clone(), *n);
                    expected_votes.insert(t.clone(), (o.ups, o.downs));
                }
            }
        }
    }
    println!(
        "{} visitors in {:.1} s: {answered} questions answered, {limited} RATE_LIMITED; replies \
         {statuses:?}",
        outcomes.len(),
        took.as_secs_f64()
    );

    // Credits.
    let dashboard = agent(Duration::from_secs(30));
    let auth = format!("Bearer {}", seeded.token);
    let me = call(
        &dashboard,
        "GET",
        &format!("{base_a}/api/v1/me"),
        &[("Authorization", &auth)],
        None,
    );
    let end = me.body.pointer("/tenant/credits").and_then(Value::as_i64);
    let spent = statuses.get("GENERATED_CONTENT").copied().unwrap_or(0) as i64;
    println!(
        "credits: {credits} at the start, {spent} spent (GENERATED_CONTENT answers), {} at the \
         end; the model was asked {} times",
        end.map_or("?".into(), |e| e.to_string()),
        model.requests().len()
    );

    // Counters in the Conversations list, and tickets by session.
    let sessions = all_pages(
        &dashboard,
        &format!("{base_b}/api/v1/sites/{}/conversations", seeded.site_id),
        &seeded.token,
    )?;
    let mut counters_wrong = Vec::new();
    let mut counted = 0;
    for item in &sessions {
        let Some(ticket) = item.get("ticketId").and_then(Value::as_str) else {
            counters_wrong.push(format!("session {} has no ticket", item["id"]));
            continue;
        };
        let Some((ups, downs)) = expected_votes.get(ticket) else {
            counters_wrong.push(format!("ticket {ticket} was not acknowledged"));
            continue;
        };
        counted += 1;
        let got = (
            item.get("upVotes").and_then(Value::as_i64),
            item.get("downVotes").and_then(Value::as_i64),
            item.get("messageCount").and_then(Value::as_i64),
        );
        if got != (Some(*ups), Some(*downs), Some(2 * LIMIT as i64)) {
            counters_wrong.push(format!(
                "session {}: up/down/messages {got:?}, acknowledged {ups}/{downs}/{}",
                item["id"],
                2 * LIMIT
            ));
        }
    }
    let listed_tickets = all_pages(
        &dashboard,
        &format!("{base_a}/api/v1/sites/{}/tickets", seeded.site_id),
        &seeded.token,
    )?;
    println!(
        "dashboard: {} sessions ({} with the acknowledged counters checked), {} tickets listed",
        sessions.len(),
        counted,
        listed_tickets.len()
    );
    for c in counters_wrong.iter().take(5) {
        println!("  {c}");
    }

    // Every ticket's email, once.
    let deadline = Instant::now() + s.drain_timeout.min(Duration::from_secs(120));
    let waited = Instant::now();
    let last = mail.wait_distinct(tickets.len(), deadline);
    // A repeat would come right after; give it a moment.
    thread::sleep(Duration::from_secs(3));
    let by_id = mail.by_id();
    let arrived: HashSet<String> = by_id.keys().filter_map(|id| ticket_of(id)).collect();
    let repeated = by_id.values().filter(|(c, _)| *c > 1).count();
    let expected: HashSet<String> = tickets.keys().cloned().collect();
    println!(
        "mail: {} distinct ticket emails ({} messages) {}, {repeated} repeated",
        arrived.len(),
        by_id.values().map(|(c, _)| c).sum::<usize>(),
        last.map_or("not all in time".into(), |l| format!(
            "within {:.1} s",
            l.saturating_duration_since(waited).as_secs_f64()
        ))
    );
    for p in problems.iter().take(8) {
        println!("  {p}");
    }

    let mut pass = true;
    pass &= verdict(
        exact_limit == s.replica_visitors,
        &format!(
            "the rate limit is exact: {exact_limit} of {} sessions got exactly {LIMIT} answers \
             and {} RATE_LIMITED",
            s.replica_visitors,
            QUESTIONS - LIMIT
        ),
    );
    pass &= verdict(
        end == Some(credits - spent) && end.is_some_and(|e| e >= 0),
        &format!(
            "credits are exact: {credits} - {spent} = {}, the tenant has {}",
            credits - spent,
            end.map_or("?".into(), |e| e.to_string())
        ),
    );
    pass &= verdict(
        counters_wrong.is_empty() && counted == s.replica_visitors,
        &format!(
            "vote counters exact in {counted} of {} sessions",
            s.replica_visitors
        ),
    );
    pass &= verdict(
        tickets.len() == s.replica_visitors
            && listed_tickets.len() == s.replica_visitors
            && arrived == expected
            && repeated == 0,
        &format!(
            "one ticket per session ({} acknowledged, {} listed), each email sent exactly once \
             ({} distinct, {repeated} repeated)",
            tickets.len(),
            listed_tickets.len(),
            arrived.len()
        ),
    );
    pass &= verdict(
        problems.is_empty(),
        &format!("no other failure ({} seen)", problems.len()),
    );
    drop(a);
    drop(b);
    drop(mail);
    drop(model);
    drop(cluster);
    Ok(pass)
}
