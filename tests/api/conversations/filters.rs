//! Every filter of the list, alone and in every combination, against the
//! expectation computed from crafted sessions; malformed filter values.

use std::collections::HashSet;

use chrono::{DateTime, Duration, FixedOffset, TimeZone, Timelike, Utc};
use serde_json::{json, Value};

use super::seed::Db;
use super::{
    ask_matching, ids, list, new_visitor, open, page, page_through, param, publish_flow, shown,
    str_of, vote,
};
use crate::app;
use crate::helpers::{at_micros, OpenSite, Reply, TestApp};

/// The day the crafted sessions happen on (midnight UTC).
fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0)
        .single()
        .expect("a date")
}

/// `h:mm` after [`base`].
fn at(h: i64, m: i64) -> DateTime<Utc> {
    base() + Duration::hours(h) + Duration::minutes(m)
}

fn micro(n: i64) -> Duration {
    Duration::microseconds(n)
}

/// The window the crafted sessions are placed around: 10:00 to 12:00.
fn from() -> DateTime<Utc> {
    at(10, 0)
}

fn to() -> DateTime<Utc> {
    at(12, 0)
}

/// What a crafted session is made of.
struct Spec {
    label: &'static str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    questions: usize,
    /// Per answer (by question number), the votes cast on it in turn
    /// through the SDK; the last one stands.
    votes: &'static [&'static [&'static str]],
    tickets: usize,
    external_id: Option<&'static str>,
}

/// A question longer than the preview, naming the Flow.
const LONG_QUESTION: &str = "Hello! I have been trying for a while now and I still cannot find \
     where to export invoices for last quarter, the whole quarter, as a CSV file for our \
     accountant, who needs them by Friday.";

/// The crafted sessions: each place a session can take against the window
/// [10:00, 12:00] (ending exactly at its start, a microsecond before it,
/// starting exactly at its end and a microsecond after, spanning it, ...),
/// each vote class (none, UP only, DOWN only, mixed, UP changed to DOWN)
/// and none, one or several tickets. Sessions last at most 4 hours.
fn specs() -> Vec<Spec> {
    vec![
        Spec {
            label: "entirely before",
            start: at(6, 0),
            end: at(7, 0),
            questions: 1,
            votes: &[],
            tickets: 0,
            external_id: None,
        },
        Spec {
            label: "ends exactly at from",
            start: at(8, 0),
            end: at(10, 0),
            questions: 1,
            votes: &[&["UP"]],
            tickets: 0,
            external_id: None,
        },
        Spec {
            label: "ends a microsecond before from",
            start: at(7, 0),
            end: at(10, 0) - micro(1),
            questions: 1,
            // The visitor voted DOWN, opened a ticket, then changed to UP.
            votes: &[&["DOWN", "UP"]],
            tickets: 1,
            external_id: None,
        },
        Spec {
            label: "starts before, ends inside",
            start: at(9, 0),
            end: at(11, 0),
            questions: 1,
            votes: &[&["DOWN"]],
            tickets: 1,
            external_id: None,
        },
        Spec {
            label: "inside, mixed votes, several tickets",
            start: at(10, 30),
            end: at(11, 30),
            questions: 3,
            votes: &[&["UP"], &["DOWN"]],
            tickets: 3,
            external_id: Some("user-mixed"),
        },
        Spec {
            label: "inside, UP changed to DOWN, same last activity",
            start: at(10, 45),
            end: at(11, 30),
            questions: 1,
            votes: &[&["UP", "DOWN"]],
            tickets: 0,
            external_id: None,
        },
        Spec {
            label: "inside, opened and nothing asked",
            start: at(10, 10),
            end: at(10, 10),
            questions: 0,
            votes: &[],
            tickets: 0,
            external_id: None,
        },
        Spec {
            label: "starts inside, ends after",
            start: at(11, 0),
            end: at(13, 0),
            questions: 2,
            votes: &[&["UP", "DOWN"], &[]],
            tickets: 2,
            external_id: None,
        },
        Spec {
            label: "spans the window (four hours)",
            start: at(9, 0),
            end: at(13, 0),
            questions: 1,
            votes: &[],
            tickets: 0,
            external_id: Some("user-spanning"),
        },
        Spec {
            label: "starts exactly at to (four hours)",
            start: at(12, 0),
            end: at(16, 0),
            questions: 1,
            votes: &[&["DOWN"]],
            tickets: 0,
            external_id: None,
        },
        Spec {
            label: "starts a microsecond after to",
            start: at(12, 0) + micro(1),
            end: at(13, 0),
            questions: 2,
            votes: &[&["DOWN"], &["DOWN"]],
            tickets: 2,
            external_id: None,
        },
        Spec {
            label: "entirely after",
            start: at(13, 0),
            end: at(14, 0),
            questions: 2,
            votes: &[&["UP"], &["UP"]],
            tickets: 0,
            external_id: None,
        },
        Spec {
            label: "inside, no votes but a ticket",
            start: at(10, 20),
            end: at(10, 40),
            questions: 1,
            votes: &[],
            tickets: 1,
            external_id: None,
        },
        Spec {
            label: "inside, UP only, escalated, long question",
            start: at(11, 10),
            end: at(11, 20),
            questions: 1,
            votes: &[&["DOWN", "UP"]],
            tickets: 1,
            external_id: None,
        },
        Spec {
            label: "after, mixed votes, not escalated",
            start: at(14, 0),
            end: at(15, 0),
            questions: 3,
            votes: &[&["UP"], &["DOWN"], &["DOWN", "UP"]],
            tickets: 0,
            external_id: None,
        },
    ]
}

/// A crafted session as made, and what the dashboard must show of it.
struct Made {
    label: &'static str,
    id: String,
    anonymous_id: String,
    external_id: Option<&'static str>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    messages: usize,
    up: usize,
    down: usize,
    tickets: Vec<String>,
    first_question: Option<String>,
}

impl Made {
    /// The list item the dashboard must see.
    fn item(&self) -> Value {
        let preview = self.first_question.as_ref().map(|q| {
            q.trim()
                .chars()
                .take(chatdesk_domain::conversation::PREVIEW_CHARS)
                .collect::<String>()
        });
        json!({
            "id": self.id,
            "anonymousId": self.anonymous_id,
            "externalId": self.external_id,
            "startedAt": shown(self.start),
            "lastActiveAt": shown(self.end),
            "messageCount": self.messages,
            "upVotes": self.up,
            "downVotes": self.down,
            "escalated": !self.tickets.is_empty(),
            "ticketId": self.tickets.first(),
            "preview": preview,
        })
    }
}

/// Makes the crafted sessions on `site` (whose Flow [`super::FLOW`] is
/// published): through the SDK, then moved in time and given tickets.
fn craft(app: &TestApp, site: &OpenSite, specs: Vec<Spec>) -> Vec<Made> {
    let mut db = Db::open(app);
    let mut made = Vec::new();
    for spec in specs {
        let anonymous_id = new_visitor();
        let body = match spec.external_id {
            Some(external) => json!({"anonymousId": anonymous_id, "externalId": external,
                                     "traits": {"email": format!("{external}@example.com")}}),
            None => json!({ "anonymousId": anonymous_id }),
        };
        let session = open(app, &site.key, &body);
        let mut answers = Vec::new();
        let mut first_question = None;
        for n in 0..spec.questions {
            let question = if spec.label.contains("long question") {
                LONG_QUESTION.to_string()
            } else {
                format!("  {} #{n}: how do I export invoices?", spec.label)
            };
            let reply = ask_matching(app, &site.key, &session, &question);
            answers.push(str_of(&reply["assistantMessage"]["id"]));
            first_question.get_or_insert(question);
        }
        let (mut up, mut down) = (0, 0);
        for (n, votes) in spec.votes.iter().enumerate() {
            for v in *votes {
                vote(app, &site.key, &session, &answers[n], v);
            }
            match votes.last() {
                Some(&"UP") => up += 1,
                Some(&"DOWN") => down += 1,
                _ => {}
            }
        }
        db.set_span(&session.0, spec.start, spec.end);
        let tickets = (0..spec.tickets)
            .map(|n| {
                let status = if n == 0 { "IN_PROGRESS" } else { "OPEN" };
                let when = spec.start + Duration::seconds(i64::try_from(n).unwrap_or(0));
                db.add_ticket(&site.tenant.id, &site.site_id, &session.0, when, status)
            })
            .collect();
        made.push(Made {
            label: spec.label,
            id: session.0,
            anonymous_id,
            external_id: spec.external_id,
            start: spec.start,
            end: spec.end,
            messages: 2 * spec.questions,
            up,
            down,
            tickets,
            first_question,
        });
    }
    made
}

/// A date window case: the query's parameters and the window they mean.
struct Window {
    label: &'static str,
    query: Vec<(&'static str, String)>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

/// `instant` written with this UTC offset (`+hh:mm` sent as `%2B`).
fn with_offset(instant: DateTime<Utc>, hours: i32) -> String {
    let offset = FixedOffset::east_opt(hours * 3600).expect("an offset");
    instant
        .with_timezone(&offset)
        .to_rfc3339()
        .replace('+', "%2B")
}

fn windows() -> Vec<Window> {
    let (f, t) = (from(), to());
    let w = |label, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>| Window {
        label,
        query: from
            .map(|f| ("from", param(f)))
            .into_iter()
            .chain(to.map(|t| ("to", param(t))))
            .collect(),
        from,
        to,
    };
    vec![
        w("no window", None, None),
        w("from only", Some(f), None),
        w("to only", None, Some(t)),
        w("from and to", Some(f), Some(t)),
        Window {
            label: "from and to with offsets",
            query: vec![("from", with_offset(f, 2)), ("to", with_offset(t, -5))],
            from: Some(f),
            to: Some(t),
        },
        w(
            "a microsecond wider",
            Some(f - micro(1)),
            Some(t + micro(1)),
        ),
        w("one instant", Some(at(11, 0)), Some(at(11, 0))),
        w("before every session", None, Some(at(5, 0))),
        w("late from only", Some(at(13, 30)), None),
        w("from after to", Some(t), Some(f)),
    ]
}

/// Whether a session passes the filters, from its crafted facts.
fn expected(
    m: &Made,
    window: &Window,
    has_feedback: Option<bool>,
    feedback: Option<&str>,
    escalated: Option<bool>,
) -> bool {
    // A window that ends before it starts holds nothing, even for a
    // session that would overlap both of its ends.
    let reversed = matches!((window.from, window.to), (Some(f), Some(t)) if f > t);
    let in_window = !reversed
        && window.from.is_none_or(|f| m.end >= f)
        && window.to.is_none_or(|t| m.start <= t);
    let voted = m.up + m.down > 0;
    let has_ok = has_feedback.is_none_or(|h| h == voted);
    let kind_ok = match feedback {
        None => true,
        Some("UP_ONLY") => m.up > 0 && m.down == 0,
        Some("DOWN_ONLY") => m.up == 0 && m.down > 0,
        Some("EITHER") => voted,
        Some("NEITHER") => !voted,
        Some(other) => panic!("feedback {other}"),
    };
    let escalated_ok = escalated.is_none_or(|e| e != m.tickets.is_empty());
    in_window && has_ok && kind_ok && escalated_ok
}

/// The sessions in list order: newest last activity first, ties by id,
/// highest first.
fn in_list_order<'a>(sessions: impl IntoIterator<Item = &'a Made>) -> Vec<&'a Made> {
    let mut sorted: Vec<&Made> = sessions.into_iter().collect();
    sorted.sort_by(|a, b| b.end.cmp(&a.end).then_with(|| b.id.cmp(&a.id)));
    sorted
}

fn labels(ids_: &[String], made: &[Made]) -> Vec<String> {
    ids_.iter()
        .map(|id| {
            made.iter()
                .find(|m| &m.id == id)
                .map_or_else(|| format!("unknown {id}"), |m| m.label.to_string())
        })
        .collect()
}

#[test]
fn every_filter_combination_lists_exactly_the_matching_sessions_newest_first() {
    let app = app!();
    let site = app.open_site("filters.example.com");
    publish_flow(&app, &site);
    let made = craft(&app, &site, specs());
    let token = site.token.as_str();

    // Unfiltered: every session once, newest last activity first (ties by
    // id), each item as the dashboard shows it.
    let (items, next) = page(&list(&app, token, &site.site_id, "limit=100"));
    assert_eq!(next, None);
    let order = in_list_order(&made);
    assert_eq!(
        labels(&ids(&items), &made),
        order
            .iter()
            .map(|m| m.label.to_string())
            .collect::<Vec<_>>(),
    );
    for (item, m) in items.iter().zip(&order) {
        assert_eq!(at_micros(item), m.item(), "{}", m.label);
    }
    // The tie: two sessions last active at 11:30, and three at 13:00.
    assert_eq!(made.iter().filter(|m| m.end == at(11, 30)).count(), 2);
    assert_eq!(made.iter().filter(|m| m.end == at(13, 0)).count(), 3);
    // The default page size is 25 (all 15 here), and a vote changed from
    // UP to DOWN counts as DOWN only.
    let (default_page, _) = page(&list(&app, token, &site.site_id, ""));
    assert_eq!(default_page, items);
    let changed = made
        .iter()
        .find(|m| m.label.starts_with("inside, UP changed to DOWN"))
        .expect("the changed vote");
    let shown_changed = items
        .iter()
        .find(|i| i["id"] == changed.id.as_str())
        .expect("listed");
    assert_eq!(
        (&shown_changed["upVotes"], &shown_changed["downVotes"]),
        (&json!(0), &json!(1))
    );
    let listed_under = |feedback: &str| {
        let (items, _) = page(&list(
            &app,
            token,
            &site.site_id,
            &format!("feedback={feedback}&limit=100"),
        ));
        ids(&items).contains(&changed.id)
    };
    assert!(listed_under("DOWN_ONLY"), "UP changed to DOWN is DOWN_ONLY");
    assert!(
        !listed_under("UP_ONLY"),
        "UP changed to DOWN is not UP_ONLY"
    );
    // Several tickets: listed once, with the first ticket.
    let several = made
        .iter()
        .find(|m| m.tickets.len() == 3)
        .expect("three tickets");
    assert_eq!(
        items
            .iter()
            .filter(|i| i["id"] == several.id.as_str())
            .count(),
        1
    );
    for limit in [1, 2, 3] {
        let paged = page_through(&app, token, &site.site_id, "", limit).expect("pages");
        assert_eq!(paged, items, "limit {limit}");
    }

    // Every combination.
    let mut failures = Vec::new();
    let mut combinations = 0;
    let mut non_empty = HashSet::new();
    for window in windows() {
        for has_feedback in [None, Some(true), Some(false)] {
            for feedback in [
                None,
                Some("UP_ONLY"),
                Some("DOWN_ONLY"),
                Some("EITHER"),
                Some("NEITHER"),
            ] {
                for escalated in [None, Some(true), Some(false)] {
                    combinations += 1;
                    let mut query: Vec<(&str, String)> = window.query.clone();
                    if let Some(h) = has_feedback {
                        query.push(("hasFeedback", h.to_string()));
                    }
                    if let Some(f) = feedback {
                        query.push(("feedback", f.to_string()));
                    }
                    if let Some(e) = escalated {
                        query.push(("escalated", e.to_string()));
                    }
                    let query = query
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("&");
                    let want: Vec<String> = in_list_order(
                        made.iter()
                            .filter(|m| expected(m, &window, has_feedback, feedback, escalated)),
                    )
                    .iter()
                    .map(|m| m.id.clone())
                    .collect();
                    if !want.is_empty() {
                        non_empty.insert(want.clone());
                    }
                    let what = format!("{} ?{query}", window.label);
                    let reply = list(&app, token, &site.site_id, &format!("{query}&limit=100"));
                    check_page(&reply, &want, &made, &what, &mut failures);
                    // The same through pages of 2.
                    match page_through(&app, token, &site.site_id, &query, 2) {
                        Ok(paged) => {
                            let got = ids(&paged);
                            if got != want {
                                failures.push(format!(
                                    "{what} in pages of 2: {:?}, expected {:?}",
                                    labels(&got, &made),
                                    labels(&want, &made)
                                ));
                            }
                        }
                        Err(e) => failures.push(format!("{what} in pages of 2: {e}")),
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {combinations} filter combinations listed the wrong sessions:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The crafted data tells the combinations apart.
    assert!(non_empty.len() > 40, "{} distinct results", non_empty.len());
}

/// Checks one page asked with limit 100 against the expected ids.
fn check_page(
    reply: &Reply,
    want: &[String],
    made: &[Made],
    what: &str,
    failures: &mut Vec<String>,
) {
    if reply.status != 200 {
        failures.push(format!("{what}: {} {}", reply.status, reply.body));
        return;
    }
    if want.is_empty() {
        if reply.body != json!({"items": [], "nextCursor": null}) {
            failures.push(format!("{what}: {}, expected an empty page", reply.body));
        }
        return;
    }
    let items = reply.body["items"].as_array().cloned().unwrap_or_default();
    let got = ids(&items);
    if got != want {
        failures.push(format!(
            "{what}: {:?}, expected {:?}",
            labels(&got, made),
            labels(want, made)
        ));
    }
    if !reply.body["nextCursor"].is_null() {
        failures.push(format!("{what}: a nextCursor after every match"));
    }
    for item in &items {
        if let Some(m) = made.iter().find(|m| item["id"] == m.id.as_str()) {
            if at_micros(item) != m.item() {
                failures.push(format!("{what}: {item}, expected {}", m.item()));
            }
        }
    }
}

/// The named fields of a problem's `errors`.
fn fields(reply: &Reply) -> Vec<String> {
    reply.body["errors"]
        .as_array()
        .map(|errors| errors.iter().map(|e| str_of(&e["field"])).collect())
        .unwrap_or_default()
}

#[test]
fn malformed_filters_are_400_and_invalid_ones_422_naming_the_parameter() {
    let app = app!();
    let site = app.open_site("malformed.example.com");
    publish_flow(&app, &site);
    let session = open(&app, &site.key, &json!({"anonymousId": new_visitor()}));
    ask_matching(&app, &site.key, &session, "How do I export invoices?");
    let token = site.token.as_str();

    let malformed: &[(&str, &str)] = &[
        ("from=yesterday", "from"),
        ("from=2026-11-25", "from"),
        ("from=2026-11-25T10:00:00", "from"),
        // A `+` left unencoded is a space.
        ("from=2026-11-25T10:00:00+02:00", "from"),
        ("from=2026-13-01T00:00:00Z", "from"),
        ("to=tomorrow", "to"),
        ("to=1764064800", "to"),
        ("hasFeedback=yes", "hasFeedback"),
        ("hasFeedback=1", "hasFeedback"),
        ("hasFeedback=TRUE", "hasFeedback"),
        ("feedback=MAYBE", "feedback"),
        ("feedback=up_only", "feedback"),
        ("feedback=", "feedback"),
        ("escalated=1", "escalated"),
        ("escalated=no", "escalated"),
        ("limit=abc", "limit"),
        ("limit=2.5", "limit"),
        ("escalated=true&from=soon", "from"),
        // A parameter given twice.
        ("escalated=true&escalated=false", "escalated"),
        ("feedback=UP_ONLY&feedback=UP_ONLY", "feedback"),
    ];
    let mut failures = Vec::new();
    for (query, field) in malformed {
        let reply = list(&app, token, &site.site_id, query);
        let ok = reply.status == 400
            && reply.content_type == "application/problem+json"
            && reply.body["code"] == "MALFORMED_QUERY"
            && fields(&reply) == [*field];
        if !ok {
            failures.push(format!(
                "?{query}: {} {} (expected 400 MALFORMED_QUERY naming {field})",
                reply.status, reply.body
            ));
        }
    }
    let invalid: &[(&str, &[&str])] = &[
        ("limit=0", &["limit"]),
        ("limit=101", &["limit"]),
        ("cursor=nope", &["cursor"]),
        ("cursor=eyJ0IjoiMjAyNi0xMS0yNVQxMDowMDowMFoifQ", &["cursor"]),
        ("from=2026-11-25T10:00:00Z%00", &["from"]),
        ("to=%00", &["to"]),
        ("hasFeedback=true%0A", &["hasFeedback"]),
        ("feedback=UP_ONLY%07", &["feedback"]),
        ("escalated=%1Bfalse", &["escalated"]),
        ("limit=2%09", &["limit"]),
        ("cursor=%00", &["cursor"]),
    ];
    for (query, named) in invalid {
        let reply = list(&app, token, &site.site_id, query);
        let ok = reply.status == 422
            && reply.content_type == "application/problem+json"
            && reply.body["code"] == "VALIDATION_FAILED"
            && fields(&reply) == *named;
        if !ok {
            failures.push(format!(
                "?{query}: {} {} (expected 422 VALIDATION_FAILED naming {named:?})",
                reply.status, reply.body
            ));
        }
    }
    // Contradictions are no error: an empty page.
    for query in [
        "hasFeedback=true&feedback=NEITHER",
        "hasFeedback=false&feedback=UP_ONLY",
        "hasFeedback=false&feedback=DOWN_ONLY",
        "hasFeedback=false&feedback=EITHER",
        "from=2026-11-25T10:00:00Z&to=2026-11-25T09:59:59.999999Z",
    ] {
        let reply = list(&app, token, &site.site_id, query);
        if reply.status != 200 || reply.body != json!({"items": [], "nextCursor": null}) {
            failures.push(format!(
                "?{query}: {} {} (expected an empty page)",
                reply.status, reply.body
            ));
        }
    }
    // Well-formed values the grammar allows are read.
    for query in [
        "from=2026-11-25T10:00:00.123456Z",
        "from=2026-11-25T10:00:00%2B02:00",
        "to=2099-01-01T00:00:00-05:00",
        "hasFeedback=false&escalated=false&feedback=NEITHER",
        "limit=1",
        "limit=100",
    ] {
        let reply = list(&app, token, &site.site_id, query);
        if reply.status != 200 {
            failures.push(format!(
                "?{query}: {} {} (expected 200)",
                reply.status, reply.body
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The window's bound rests on a rule of the visitor's side: a session
/// lasts at most four hours. Past them it takes no question (404; the
/// widget opens a new session), and a late vote counts without moving its
/// last activity, so the session still shows in a window it started in.
#[test]
fn a_session_past_four_hours_takes_no_question_and_a_late_vote_keeps_its_span() {
    let app = app!();
    let site = app.open_site("four-hours.example.com");
    publish_flow(&app, &site);
    let anonymous_id = new_visitor();
    let session = open(&app, &site.key, &json!({ "anonymousId": anonymous_id }));
    let asked = ask_matching(&app, &site.key, &session, "How do I export invoices?");
    let answer = str_of(&asked["assistantMessage"]["id"]);
    // Started four hours and a minute ago, active two minutes ago (so not
    // idle): past its maximum duration.
    let started = (Utc::now() - Duration::hours(4) - Duration::minutes(1))
        .with_nanosecond(0)
        .expect("a whole second");
    let last = started + Duration::hours(4) - Duration::minutes(1);
    Db::open(&app).set_span(&session.0, started, last);

    let reply = app.ask(&site.key, &session, "And how do I export invoices again?");
    assert_eq!(reply.status, 404, "{}", reply.body);
    vote(&app, &site.key, &session, &answer, "UP");
    let token = site.token.as_str();
    let (items, _) = page(&list(&app, token, &site.site_id, ""));
    assert_eq!(ids(&items), vec![session.0.clone()]);
    let item = at_micros(&items[0]);
    assert_eq!(item["upVotes"], 1, "the late vote counts");
    assert_eq!(item["messageCount"], 2, "the question was not taken");
    assert_eq!(
        item["lastActiveAt"],
        shown(last),
        "the late vote moved nothing"
    );
    // Listed in a window ending the moment it started, and in one starting
    // the moment it was last active.
    for query in [
        format!("to={}", param(started)),
        format!("from={}", param(last)),
        format!("from={}&to={}", param(started), param(started)),
        format!("from={}&to={}&hasFeedback=true", param(last), param(last)),
    ] {
        let (items, _) = page(&list(&app, token, &site.site_id, &query));
        assert_eq!(ids(&items), vec![session.0.clone()], "?{query}");
    }
    for query in [
        format!("to={}", param(started - micro(1))),
        format!("from={}", param(last + micro(1))),
    ] {
        let (items, _) = page(&list(&app, token, &site.site_id, &query));
        assert_eq!(items, Vec::<Value>::new(), "?{query}");
    }
    // The visitor comes back to a new session; the old one has ended.
    let back = open(&app, &site.key, &json!({ "anonymousId": anonymous_id }));
    assert_ne!(back.0, session.0);
    let (items, _) = page(&list(&app, token, &site.site_id, ""));
    assert_eq!(ids(&items), [back.0.clone(), session.0.clone()]);
}

/// A window given to the nanosecond is not rounded into sessions outside
/// it: stored times have microseconds, and a session that ended a
/// microsecond before `from` ended before `from` however finely `from` is
/// written (and one that started a microsecond after `to` started after
/// it).
#[test]
fn a_window_finer_than_microseconds_keeps_out_the_sessions_outside_it() {
    let app = app!();
    let site = app.open_site("nanoseconds.example.com");
    publish_flow(&app, &site);
    let (f, t) = (from(), to());
    let spec = |label, start, end| Spec {
        label,
        start,
        end,
        questions: 0,
        votes: &[],
        tickets: 0,
        external_id: None,
    };
    let made = craft(
        &app,
        &site,
        vec![
            spec("ends a microsecond before from", at(9, 0), f - micro(1)),
            spec("ends exactly at from", at(9, 0), f),
            spec("starts exactly at to", t, at(13, 0)),
            spec("starts a microsecond after to", t + micro(1), at(13, 0)),
        ],
    );
    let by_label = |label: &str| {
        made.iter()
            .find(|m| m.label == label)
            .map(|m| m.id.clone())
            .unwrap_or_default()
    };
    let mut failures = Vec::new();
    for nanos in [1, 500, 999] {
        let window = [
            ("from", param(f - Duration::nanoseconds(nanos))),
            ("to", param(t + Duration::nanoseconds(nanos))),
        ];
        let want = [
            by_label("starts exactly at to"),
            by_label("ends exactly at from"),
        ];
        let query = format!("from={}&to={}", window[0].1, window[1].1);
        let (items, _) = page(&list(&app, &site.token, &site.site_id, &query));
        let got = ids(&items);
        if got != want {
            failures.push(format!(
                "?{query}: {:?}, expected {:?}",
                labels(&got, &made),
                labels(&want, &made)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
