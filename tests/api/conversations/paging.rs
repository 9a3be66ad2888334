//! Paging the list while sessions arrive and while listed sessions become
//! active again.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use serde_json::json;

use super::{ask_matching, ids, list, new_visitor, open, page, page_through, publish_flow};
use crate::app;
use crate::helpers::TestApp;

/// Opens `n` sessions of new visitors, one after the other; returns their ids.
fn open_sessions(app: &TestApp, key: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| open(app, key, &json!({"anonymousId": new_visitor()})).0)
        .collect()
}

/// One pass of paging with limit 2 while two threads keep opening sessions
/// of new visitors: the pass must list exactly the sessions that were
/// there when it began (matching `query`), in their order, each once. The
/// writers start once the first page is out, so "when it began" is known;
/// from then on every page is read while sessions arrive.
fn page_while_sessions_arrive(app: &TestApp, token: &str, site: &str, key: &str, query: &str) {
    let before = ids(&page_through(app, token, site, query, 100).expect("pages"));
    assert!(before.len() >= 10, "{} sessions", before.len());
    let go = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let arrived = AtomicUsize::new(0);
    let (paged, during) = thread::scope(|s| {
        let writers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    while !go.load(Ordering::SeqCst) {
                        thread::sleep(Duration::from_millis(1));
                    }
                    while !done.load(Ordering::SeqCst) {
                        open(app, key, &json!({"anonymousId": new_visitor()}));
                        arrived.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                Some(c) => format!("{query}&limit=2&cursor={c}"),
                None => format!("{query}&limit=2"),
            };
            let (items, next) = page(&list(app, token, site, &q));
            paged.extend(ids(&items));
            if !go.swap(true, Ordering::SeqCst) {
                // The first page is out: let sessions arrive before the next.
                while arrived.load(Ordering::SeqCst) < 2 {
                    thread::sleep(Duration::from_millis(2));
                }
            }
            // Slowly enough that sessions arrive between pages.
            thread::sleep(Duration::from_millis(30));
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
            assert!(paged.len() < 10_000, "paging does not end");
        }
        let during = arrived.load(Ordering::SeqCst);
        done.store(true, Ordering::SeqCst);
        for w in writers {
            w.join().expect("writer");
        }
        (paged, during)
    });
    assert!(during >= 5, "only {during} sessions arrived while paging");
    assert_eq!(
        paged, before,
        "?{query}: the pass lists the sessions that were there when it began, \
         in order, each once ({during} arrived meanwhile)"
    );
    // The new sessions are on top of a fresh first page.
    let (now, _) = page(&list(app, token, site, &format!("{query}&limit=100")));
    let now = ids(&now);
    assert!(!before.contains(&now[0]), "a new session is first");
}

#[test]
fn paging_while_new_sessions_arrive_skips_and_repeats_nothing() {
    let app = app!();
    let site = app.open_site("paging.example.com");
    open_sessions(&app, &site.key, 12);
    page_while_sessions_arrive(
        &app,
        &site.token,
        &site.site_id,
        &site.key,
        "escalated=false",
    );
    // The same through a filter's index, the window open at its start, on
    // a site of its own (so the pass starts from 12 sessions again).
    let site = app.open_site("paging-filtered.example.com");
    open_sessions(&app, &site.key, 12);
    page_while_sessions_arrive(
        &app,
        &site.token,
        &site.site_id,
        &site.key,
        "hasFeedback=false&feedback=NEITHER&escalated=false&from=2020-01-01T00:00:00Z",
    );
}

/// What the OpenAPI description says a client sees: the list is ordered
/// by last activity, so a session that becomes active while a client pages
/// moves to the top. One the pass has not reached yet is then not seen in
/// that pass (it is above the cursor); one already seen is not repeated.
/// A new pass from the top shows both first.
#[test]
fn a_session_active_again_while_paging_moves_to_the_top_and_is_not_repeated() {
    let app = app!();
    let site = app.open_site("moving.example.com");
    publish_flow(&app, &site);
    let sessions: Vec<(String, String)> = (0..6)
        .map(|n| {
            let s = open(&app, &site.key, &json!({"anonymousId": new_visitor()}));
            ask_matching(
                &app,
                &site.key,
                &s,
                &format!("#{n}: how do I export invoices?"),
            );
            s
        })
        .collect();
    let token = site.token.as_str();
    let newest_first: Vec<String> = sessions.iter().rev().map(|s| s.0.clone()).collect();
    assert_eq!(
        ids(&page_through(&app, token, &site.site_id, "", 100).expect("pages")),
        newest_first
    );

    let (first, next) = page(&list(&app, token, &site.site_id, "limit=2"));
    assert_eq!(ids(&first), newest_first[..2]);
    let cursor = next.expect("more pages");
    // Session 1 (not reached yet) and session 5 (already seen) become active.
    ask_matching(
        &app,
        &site.key,
        &sessions[1],
        "Again: how do I export invoices?",
    );
    ask_matching(
        &app,
        &site.key,
        &sessions[5],
        "Again: how do I export invoices?",
    );

    let mut rest = Vec::new();
    let mut cursor = Some(cursor);
    while let Some(c) = cursor {
        let (items, next) = page(&list(
            &app,
            token,
            &site.site_id,
            &format!("limit=2&cursor={c}"),
        ));
        rest.extend(ids(&items));
        cursor = next;
    }
    let expect_rest: Vec<String> = [3, 2, 0].iter().map(|&n| sessions[n].0.clone()).collect();
    assert_eq!(
        rest, expect_rest,
        "session 1 moved above the cursor; 5 is not repeated"
    );

    // A new pass: the two that moved are first, the latest activity (5,
    // asked last) first.
    let again = ids(&page_through(&app, token, &site.site_id, "", 2).expect("pages"));
    let expected: Vec<String> = [5, 1, 4, 3, 2, 0]
        .iter()
        .map(|&n| sessions[n].0.clone())
        .collect();
    assert_eq!(again, expected);
}
