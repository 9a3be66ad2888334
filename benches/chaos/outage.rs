//! Scenario 2: PostgreSQL stopped and started again while visitors and the
//! dashboard keep calling: during the outage every call is answered, and a
//! failure is a 503 DATABASE_UNAVAILABLE with Retry-After; chatdesk serves
//! again within 5 s of the database's return without being restarted;
//! `/readyz` follows; every write acknowledged (2xx) is there afterwards.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::http::{agent, call, Latencies, Reply};
use crate::pg::{free_port, Cluster};
use crate::server::Server;
use crate::visitor::{Session, Widget};
use crate::{verdict, Result, Settings};

/// A probe of `/readyz` or `/api/v1/me`: sent, answered, which, status.
type Probe = (Instant, Instant, &'static str, Option<u16>);

/// Serving again within this long of the database's return.
const RECOVERY: Duration = Duration::from_secs(5);

/// One answered (or unanswered) call.
struct Seen {
    at: Instant,
    kind: &'static str,
    status: Option<u16>,
    code: String,
    retry_after: Option<String>,
    took: Duration,
}

impl Seen {
    fn of(kind: &'static str, at: Instant, reply: &Reply) -> Seen {
        Seen {
            at,
            kind,
            status: reply.status,
            code: reply.code().to_string(),
            retry_after: reply.retry_after.clone(),
            took: reply.took,
        }
    }

    /// 2xx, or 503 DATABASE_UNAVAILABLE with a Retry-After of whole seconds.
    fn acceptable(&self) -> bool {
        match self.status {
            Some(s) if (200..300).contains(&s) => true,
            Some(503) => {
                self.code == "DATABASE_UNAVAILABLE"
                    && self
                        .retry_after
                        .as_deref()
                        .is_some_and(|r| r.parse::<u32>().is_ok_and(|n| n > 0))
            }
            _ => false,
        }
    }
}

/// A session's acknowledged writes: its question and reply ids, and the
/// vote on the reply.
type SessionWrites = (Vec<String>, Option<(String, String)>);

/// Writes the server acknowledged.
#[derive(Default)]
struct Acknowledged {
    /// By session id.
    sessions: HashMap<String, SessionWrites>,
    /// Content items made from the dashboard.
    content: Vec<String>,
    /// How many of the writes were acknowledged before the outage began.
    before_outage: usize,
    /// Content never acknowledged, its key sent again for 30 s.
    gave_up: Vec<String>,
}

pub(crate) fn run(s: &Settings) -> Result<bool> {
    println!();
    println!(
        "## 2. PostgreSQL stopped for {} s while visitors and the dashboard call",
        s.pg_outage.as_secs()
    );
    let mut cluster = Cluster::start()?;
    cluster.create_database("chaos_outage")?;
    let url = cluster.url("chaos_outage");
    let seeded = crate::seed::seed(&url, 1000, 0)?;
    let server = Server::start("chatdesk", free_port()?, &[("DATABASE_URL", url.clone())])?;
    let base = server.base();
    let auth = format!("Bearer {}", seeded.token);

    let seen: Mutex<Vec<Seen>> = Mutex::new(Vec::new());
    let acked: Mutex<Acknowledged> = Mutex::new(Acknowledged::default());
    // Each probe: when it was sent, when it was answered, what, its status.
    let probes: Mutex<Vec<Probe>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let outage_began: Mutex<Option<Instant>> = Mutex::new(None);
    let record = |kind: &'static str, at: Instant, reply: &Reply| {
        if let Ok(mut all) = seen.lock() {
            all.push(Seen::of(kind, at, reply));
        }
    };
    let before = |at: Instant| -> bool {
        outage_began
            .lock()
            .map(|b| b.is_none_or(|began| at < began))
            .unwrap_or(false)
    };
    let mut stopped_at = Instant::now();
    let mut back_at = Instant::now();
    let start = Instant::now();
    let mut fault_error = None;
    thread::scope(|scope| {
        for v in 0..s.clients {
            let (record, before, acked, stop, base, key) =
                (&record, &before, &acked, &stop, &base, &seeded.key);
            scope.spawn(move || {
                let agent = agent(Duration::from_secs(30));
                let widget = Widget {
                    agent: &agent,
                    base,
                    key,
                };
                let mut n = 0;
                while !stop.load(Ordering::Acquire) {
                    n += 1;
                    let at = Instant::now();
                    let opened = widget.open(&format!("outage-{v}-{n}"));
                    record("sdk session", at, &opened);
                    let Some(session): Option<Session> =
                        Widget::session_of(&opened).filter(|_| opened.ok())
                    else {
                        thread::sleep(Duration::from_millis(50));
                        continue;
                    };
                    if let Ok(mut a) = acked.lock() {
                        a.sessions.entry(session.id.clone()).or_default();
                        a.before_outage += usize::from(before(Instant::now()));
                    }
                    let at = Instant::now();
                    let asked = widget.ask(&session, "How do I export invoices?");
                    record("sdk question", at, &asked);
                    let ids = (
                        asked.text("/userMessage/id"),
                        asked.text("/assistantMessage/id"),
                    );
                    let (Some(question), Some(answer)) = ids else {
                        continue;
                    };
                    if !asked.ok() {
                        continue;
                    }
                    if let Ok(mut a) = acked.lock() {
                        a.sessions.entry(session.id.clone()).or_default().0 =
                            vec![question, answer.clone()];
                        a.before_outage += usize::from(before(Instant::now()));
                    }
                    let vote = if n % 2 == 0 { "UP" } else { "DOWN" };
                    let at = Instant::now();
                    let voted = widget.vote(&session, &answer, vote);
                    record("sdk vote", at, &voted);
                    if voted.ok() {
                        if let Ok(mut a) = acked.lock() {
                            a.sessions.entry(session.id.clone()).or_default().1 =
                                Some((answer, vote.to_string()));
                            a.before_outage += usize::from(before(Instant::now()));
                        }
                    }
                    thread::sleep(Duration::from_millis(20));
                }
            });
        }
        // The dashboard: reads, and content made with an Idempotency-Key.
        {
            let (record, before, acked, stop, base, auth, site) = (
                &record,
                &before,
                &acked,
                &stop,
                &base,
                &auth,
                &seeded.site_id,
            );
            scope.spawn(move || {
                let agent = agent(Duration::from_secs(30));
                let headers = [("Authorization", auth.as_str())];
                let mut n = 0;
                while !stop.load(Ordering::Acquire) {
                    n += 1;
                    let at = Instant::now();
                    let me = call(&agent, "GET", &format!("{base}/api/v1/me"), &headers, None);
                    record("dashboard me", at, &me);
                    let at = Instant::now();
                    let list = call(
                        &agent,
                        "GET",
                        &format!("{base}/api/v1/sites/{site}/conversations?limit=25"),
                        &headers,
                        None,
                    );
                    record("dashboard conversations", at, &list);
                    // Made with an Idempotency-Key and sent again with it
                    // (as the dashboard does) until answered, for at most
                    // 30 s: a key the server keeps "in use" shows here.
                    let key = format!("content-{n}");
                    let mut with_key = headers.to_vec();
                    with_key.push(("Idempotency-Key", key.as_str()));
                    let body =
                        json!({"kind": "TOOLTIP", "name": format!("Tip {n}"), "status": "DRAFT"});
                    let deadline = Instant::now() + Duration::from_secs(30);
                    loop {
                        let at = Instant::now();
                        let made = call(
                            &agent,
                            "POST",
                            &format!("{base}/api/v1/sites/{site}/content"),
                            &with_key,
                            Some(&body),
                        );
                        record("dashboard content", at, &made);
                        if made.status == Some(201) {
                            if let (Some(id), Ok(mut a)) = (made.text("/id"), acked.lock()) {
                                a.content.push(id);
                                a.before_outage += usize::from(before(Instant::now()));
                            }
                            break;
                        }
                        if !crate::visitor::transient(&made) || Instant::now() > deadline {
                            if let Ok(mut a) = acked.lock() {
                                a.gave_up.push(format!("{key}: {}", made.describe()));
                            }
                            break;
                        }
                        thread::sleep(Duration::from_millis(100));
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            });
        }
        // The probe: /readyz and /api/v1/me every 50 ms.
        {
            let (probes, stop, base, auth) = (&probes, &stop, &base, &auth);
            scope.spawn(move || {
                let agent = agent(Duration::from_secs(30));
                while !stop.load(Ordering::Acquire) {
                    // Each probe is stamped when it was sent: a /readyz
                    // answered 200 just before the stop is not counted in
                    // the outage because /me then waited there.
                    let ready_sent = Instant::now();
                    let ready = call(&agent, "GET", &format!("{base}/readyz"), &[], None);
                    let me_sent = Instant::now();
                    let ready_answered = me_sent;
                    let me = call(
                        &agent,
                        "GET",
                        &format!("{base}/api/v1/me"),
                        &[("Authorization", auth.as_str())],
                        None,
                    );
                    let me_answered = Instant::now();
                    if let Ok(mut p) = probes.lock() {
                        p.push((ready_sent, ready_answered, "readyz", ready.status));
                        p.push((me_sent, me_answered, "me", me.status));
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            });
        }
        thread::sleep(s.pg_before);
        if let Ok(mut b) = outage_began.lock() {
            *b = Some(Instant::now());
        }
        match cluster.stop_server() {
            Ok(took) => {
                stopped_at = Instant::now();
                println!(
                    "{:6.1} s: pg_ctl stop -m fast (took {:.2} s)",
                    start.elapsed().as_secs_f64(),
                    took.as_secs_f64()
                );
            }
            Err(e) => {
                fault_error.get_or_insert(e.to_string());
            }
        }
        thread::sleep(s.pg_outage);
        match cluster.start_server() {
            Ok(took) => {
                back_at = Instant::now();
                println!(
                    "{:6.1} s: pg_ctl start: accepting connections (took {:.2} s)",
                    start.elapsed().as_secs_f64(),
                    took.as_secs_f64()
                );
            }
            Err(e) => {
                fault_error.get_or_insert(e.to_string());
            }
        }
        thread::sleep(s.pg_after);
        stop.store(true, Ordering::Release);
    });
    if let Some(e) = fault_error {
        return Err(e.into());
    }
    let seen = seen.into_inner().map_err(|_| "a client thread panicked")?;
    let probes = probes
        .into_inner()
        .map_err(|_| "a client thread panicked")?;
    let acked = acked.into_inner().map_err(|_| "a client thread panicked")?;
    let began = outage_began
        .into_inner()
        .ok()
        .flatten()
        .unwrap_or(stopped_at);

    // Every call: answered in time, and a failure only as the contract says.
    let mut by_kind: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    for x in &seen {
        let answer = match x.status {
            Some(s) => format!("{s} {}", x.code).trim().to_string(),
            None => "no answer".into(),
        };
        *by_kind
            .entry(x.kind)
            .or_default()
            .entry(answer)
            .or_default() += 1;
    }
    for (kind, answers) in &by_kind {
        println!("  {kind}: {answers:?}");
    }
    let during: Vec<&Seen> = seen
        .iter()
        .filter(|x| x.at >= began && x.at <= back_at)
        .collect();
    let all = Latencies(seen.iter().map(|x| x.took).collect());
    let out = Latencies(during.iter().map(|x| x.took).collect());
    let bad: Vec<&Seen> = seen.iter().filter(|x| !x.acceptable()).collect();
    let unavailable = during.iter().filter(|x| x.status == Some(503)).count();
    println!(
        "calls: {} in all (p50 {:.1} ms, p99 {:.1} ms, max {:.0} ms); {} during the outage \
         ({unavailable} of them 503 DATABASE_UNAVAILABLE; p50 {:.1} ms, max {:.0} ms); {} \
         neither 2xx nor a 503 with Retry-After",
        seen.len(),
        all.ms(50.0),
        all.ms(99.0),
        all.max().as_secs_f64() * 1000.0,
        during.len(),
        out.ms(50.0),
        out.max().as_secs_f64() * 1000.0,
        bad.len()
    );
    for x in bad.iter().take(5) {
        println!(
            "  {} at {:.1} s: {:?} {} after {:?}",
            x.kind,
            x.at.duration_since(start).as_secs_f64(),
            x.status,
            x.code,
            x.took
        );
    }

    // Recovery, from the probe.
    let first_after = |what: &str, ok: bool| {
        probes
            .iter()
            .find(|(at, _, kind, status)| {
                *at >= back_at && *kind == what && (status == &Some(200)) == ok
            })
            .map(|(at, _, _, _)| at.duration_since(back_at))
    };
    let serving = first_after("me", true);
    let ready = first_after("readyz", true);
    // A /readyz within the outage: sent after the stop and answered
    // before PostgreSQL was back.
    let within = |sent: &Instant, answered: &Instant| *sent > stopped_at && *answered < back_at;
    let ready_down = probes
        .iter()
        .filter(|(sent, answered, kind, _)| within(sent, answered) && *kind == "readyz")
        .all(|(_, _, _, status)| *status == Some(503));
    let ready_seen_down = probes.iter().any(|(sent, answered, kind, status)| {
        within(sent, answered) && *kind == "readyz" && *status == Some(503)
    });
    // Steady after it: every probe 200 from then on.
    let steady = serving.is_some_and(|after| {
        probes
            .iter()
            .filter(|(at, _, _, _)| *at > back_at + after + Duration::from_millis(500))
            .all(|(_, _, _, status)| *status == Some(200))
    });
    println!(
        "recovery: /api/v1/me 200 again {} after PostgreSQL accepted connections, /readyz 200 {} \
         after (503 throughout the outage: {ready_down})",
        serving.map_or("never".into(), |d| format!("{:.2} s", d.as_secs_f64())),
        ready.map_or("never".into(), |d| format!("{:.2} s", d.as_secs_f64()))
    );

    // Every acknowledged write, read back through the dashboard.
    let dashboard = agent(Duration::from_secs(30));
    let headers = [("Authorization", auth.as_str())];
    let mut missing: Vec<String> = Vec::new();
    for (session, (messages, vote)) in &acked.sessions {
        let detail = call(
            &dashboard,
            "GET",
            &format!(
                "{base}/api/v1/sites/{}/conversations/{session}",
                seeded.site_id
            ),
            &headers,
            None,
        );
        if detail.status != Some(200) {
            missing.push(format!("session {session}: {}", detail.describe()));
            continue;
        }
        let listed: HashMap<String, Value> = detail
            .body
            .get("messages")
            .and_then(Value::as_array)
            .map(|m| {
                m.iter()
                    .filter_map(|m| Some((m.get("id")?.as_str()?.to_string(), m.clone())))
                    .collect()
            })
            .unwrap_or_default();
        for id in messages {
            if !listed.contains_key(id) {
                missing.push(format!("message {id} of session {session}"));
            }
        }
        if let Some((answer, vote)) = vote {
            let has = listed
                .get(answer)
                .and_then(|m| m.get("feedback"))
                .and_then(Value::as_str);
            if has != Some(vote.as_str()) {
                missing.push(format!("vote {vote} on {answer}: {has:?}"));
            }
        }
    }
    for id in &acked.content {
        let got = call(
            &dashboard,
            "GET",
            &format!("{base}/api/v1/sites/{}/content/{id}", seeded.site_id),
            &headers,
            None,
        );
        if got.status != Some(200) {
            missing.push(format!("content {id}: {}", got.describe()));
        }
    }
    let writes = acked
        .sessions
        .values()
        .map(|(m, v)| 1 + usize::from(!m.is_empty()) + usize::from(v.is_some()))
        .sum::<usize>()
        + acked.content.len();
    println!(
        "acknowledged writes: {writes} ({} sessions, {} content items; {} before the outage); {} \
         missing afterwards",
        acked.sessions.len(),
        acked.content.len(),
        acked.before_outage,
        missing.len()
    );
    for m in missing.iter().take(5) {
        println!("  missing: {m}");
    }
    println!(
        "dashboard content: {} items never acknowledged though sent again with their key for 30 s",
        acked.gave_up.len()
    );
    for g in acked.gave_up.iter().take(5) {
        println!("  gave up: {g}");
    }
    println!(
        "chatdesk was started {} time(s) in this scenario",
        server.starts
    );

    let mut pass = true;
    pass &= verdict(
        bad.is_empty(),
        &format!(
            "every call answered 2xx or 503 DATABASE_UNAVAILABLE with Retry-After ({} of {} not)",
            bad.len(),
            seen.len()
        ),
    );
    pass &= verdict(
        all.max() <= s.max_latency,
        &format!(
            "never hangs: the slowest call took {:.0} ms (bound {} ms)",
            all.max().as_secs_f64() * 1000.0,
            s.max_latency.as_millis()
        ),
    );
    pass &= verdict(
        unavailable > 0 && ready_down && ready_seen_down,
        &format!("the outage was seen: {unavailable} calls 503, /readyz 503 throughout"),
    );
    pass &= verdict(
        serving.is_some_and(|d| d <= RECOVERY) && ready.is_some_and(|d| d <= RECOVERY) && steady,
        &format!(
            "serves again within {} s of PostgreSQL's return, without a restart, and stays up",
            RECOVERY.as_secs()
        ),
    );
    pass &= verdict(
        acked.gave_up.is_empty(),
        &format!(
            "every content item sent again with its Idempotency-Key was made ({} never were)",
            acked.gave_up.len()
        ),
    );
    pass &= verdict(
        missing.is_empty() && writes > 0,
        &format!("nothing acknowledged is lost ({writes} writes checked)"),
    );
    drop(server);
    drop(cluster);
    Ok(pass)
}
