//! The answer engine as a caller uses it: an index of candidates asked
//! questions by sessions.

use chrono::Utc;
use uuid::Uuid;

use super::*;
use crate::content::{ContentPatchInput, GeneratedFrom, NewContentInput};
use crate::ids::{MessageId, SiteId};

fn content_id(n: u128) -> ContentId {
    ContentId(Uuid::from_u128(n))
}

fn session(n: u128) -> SessionId {
    SessionId(Uuid::from_u128(n))
}

fn candidate(kind: ContentKind, n: u128, name: &str, description: &str) -> Candidate {
    Candidate {
        id: content_id(n),
        kind,
        name: name.into(),
        description: description.into(),
        visible_to: Visibility::Everyone,
    }
}

fn flow(n: u128, name: &str, description: &str) -> Candidate {
    candidate(ContentKind::Flow, n, name, description)
}

fn tooltip(n: u128, name: &str, description: &str) -> Candidate {
    candidate(ContentKind::Tooltip, n, name, description)
}

fn only_for(mut c: Candidate, s: SessionId) -> Candidate {
    c.visible_to = Visibility::Session(s);
    c
}

/// The id number of what `find` found.
fn found_id(c: Option<&Candidate>) -> Option<u128> {
    c.map(|c| c.id.as_uuid().as_u128())
}

#[test]
fn names_win_by_length_then_kind_then_id() {
    let s1 = session(1);
    let index = AnswerIndex::build(vec![
        flow(5, "Export", ""),
        tooltip(1, "Export", ""),
        flow(7, "Import", ""),
        flow(3, "  IMPORT ", ""),
        tooltip(2, "Export data", ""),
        flow(9, "Import data", ""),
        flow(6, "Print report", ""),
        flow(4, "Share report", ""),
        only_for(flow(10, "Export data as CSV", ""), s1),
    ]);
    let table: [(&str, SessionId, Option<u128>); 11] = [
        // same name: the Flow, although its id is larger
        ("export", s1, Some(5)),
        // same normal form: the smallest id
        ("import", s1, Some(3)),
        // same length: the Flow wins over the Tooltip
        ("export data and import data", s1, Some(9)),
        ("export data", s1, Some(2)),
        // same length and kind: the smallest id
        ("print report or share report", s1, Some(4)),
        ("share report", s1, Some(4)),
        ("print report", s1, Some(6)),
        // the longest name, visible to this session only
        ("How do I EXPORT DATA AS CSV?", s1, Some(10)),
        ("How do I EXPORT DATA AS CSV?", session(2), Some(2)),
        ("exports data", s1, None),
        ("", s1, None),
    ];
    for (question, s, expected) in table {
        assert_eq!(
            found_id(index.match_name(question, s)),
            expected,
            "{question:?}"
        );
    }
}

#[test]
fn session_only_items_count_for_their_session_only() {
    let (mine, theirs) = (session(1), session(2));
    let index = AnswerIndex::build(vec![
        only_for(flow(1, "Export invoices to Xero", "Sync invoices"), mine),
        flow(2, "Invite a teammate", "Add people"),
    ]);
    let q = "export invoices to xero";
    assert_eq!(found_id(index.match_name(q, mine)), Some(1));
    assert_eq!(index.match_name(q, theirs), None);
    let q = "sync my invoices with xero";
    assert_eq!(found_id(index.rank(q, mine).map(|r| r.candidate)), Some(1));
    assert_eq!(index.rank(q, theirs), None);
    assert!(index.shortlist(q, theirs, 5).is_empty());
    assert!(find_answer(&index, q, theirs).is_none());
}

#[test]
fn an_empty_index_finds_nothing() {
    for index in [AnswerIndex::build(Vec::new()), AnswerIndex::default()] {
        assert_eq!(index.len(), 0);
        assert!(index.is_empty());
        assert_eq!(index.match_name("export csv", session(1)), None);
        assert_eq!(index.rank("export csv", session(1)), None);
        assert!(index.shortlist("export csv", session(1), 3).is_empty());
        assert!(find_answer(&index, "export csv", session(1)).is_none());
    }
}

fn library() -> AnswerIndex {
    AnswerIndex::build(vec![
        flow(
            1,
            "Download invoice",
            "Get a PDF of any invoice from the billing page",
        ),
        flow(2, "Export report", "Save a report of your workspace"),
        tooltip(
            3,
            "Billing address",
            "Change the address printed on invoices",
        ),
        flow(4, "Invite a teammate", "Add people to your workspace"),
        flow(5, "Change plan", "Upgrade or downgrade your workspace plan"),
        tooltip(
            6,
            "Profile photo",
            "Upload a picture for your workspace profile",
        ),
        flow(7, "Connect Slack", "Get workspace notifications in Slack"),
        flow(8, "Überweisung", "Geld überweisen"),
        flow(9, "导出数据", "下载表格"),
    ])
}

#[test]
fn answers_by_name_then_by_rank_or_none() {
    type Expected = Option<(u128, bool)>;
    let table: [(&str, Expected); 20] = [
        // by name, case and spacing aside
        ("how do I  DOWNLOAD invoice?", Some((1, true))),
        ("(export report)", Some((2, true))),
        ("Wie mache ich eine ÜBERWEISUNG?", Some((8, true))),
        ("我想导出数据", Some((9, true))),
        // near misses of names, found by rank through the stemmer
        ("downloading invoices", Some((1, false))),
        ("exporting reports", Some((2, false))),
        ("where are my invoices?", Some((1, false))),
        ("how to invite teammates", Some((4, false))),
        ("upgrading my plan", Some((5, false))),
        ("我想导出", Some((9, false))),
        // a name hit beats a description-only hit
        ("billing", Some((3, false))),
        // common terms alone: "workspace" is in most items
        ("workspace", None),
        ("my workspace, please", None),
        // common terms do not stop a relevant one
        ("workspace plan", Some((5, false))),
        // no shared term, or stop words only
        ("reset my password", None),
        ("how do I do it?", None),
        ("what is this", None),
        ("", None),
        ("?!", None),
        ("Überweisungen", None),
    ];
    let index = library();
    for (question, expected) in table {
        let found = find_answer(&index, question, session(1));
        let got = found.map(|f| (f.candidate.id.as_uuid().as_u128(), f.how == MatchedBy::Name));
        assert_eq!(got, expected, "{question:?}");
        if let Some(Found {
            how: MatchedBy::Rank { score },
            ..
        }) = found
        {
            assert!(score > 0.0, "{question:?}");
        }
    }
}

#[test]
fn shortlists_are_ordered_and_ungated() {
    let index = library();
    let s = session(1);
    let ids = |question: &str, n: usize| -> Vec<u128> {
        index
            .shortlist(question, s, n)
            .iter()
            .map(|r| r.candidate.id.as_uuid().as_u128())
            .collect()
    };
    // A name hit first, then description hits.
    assert_eq!(ids("invoices", 5), [1, 3]);
    assert_eq!(ids("invoices", 1), [1]);
    assert_eq!(ids("invoices", 0), Vec::<u128>::new());
    // Common terms alone: a list for a model to decline, but no rank.
    assert_eq!(ids("workspace", 10).len(), 5);
    assert_eq!(index.rank("workspace", s), None);
    let list = index.shortlist("billing invoices", s, 10);
    assert!(list.windows(2).all(|w| w[0].score >= w[1].score));
    assert_eq!(
        index.rank("billing invoices", s).map(|r| r.candidate.id),
        list.first().map(|r| r.candidate.id)
    );
}

#[test]
fn a_name_match_goes_before_a_better_ranked_item() {
    let index = AnswerIndex::build(vec![
        flow(1, "Export", "Export anything"),
        flow(2, "CSV download", "Export CSV, download CSV, CSV export"),
        flow(3, "Invite", ""),
    ]);
    let q = "export csv and download";
    assert_eq!(
        index.rank(q, session(1)).map(|r| r.candidate.id),
        Some(content_id(2))
    );
    let found = find_answer(&index, q, session(1));
    assert_eq!(
        found.map(|f| (f.candidate.id, f.how)),
        Some((content_id(1), MatchedBy::Name))
    );
}

/// A made-up word per number, unique, that no stemming rule touches
/// (consonant-vowel syllables ending in a, i, o or u).
fn word(mut n: usize) -> String {
    const SYLLABLES: usize = 13 * 4;
    let mut out = String::new();
    for _ in 0..4 {
        let syllable = n % SYLLABLES;
        n /= SYLLABLES;
        out.push(char::from(b"bdfgklmnprtvz"[syllable / 4]));
        out.push(char::from(b"aiou"[syllable % 4]));
    }
    out
}

fn generated(n: usize) -> AnswerIndex {
    AnswerIndex::build(
        (0..n)
            .map(|i| {
                flow(
                    i as u128,
                    &format!("Export report {}", word(i)),
                    &format!("Explains the {} screen and its options", word(i + 10_000)),
                )
            })
            .collect(),
    )
}

#[test]
fn ten_thousand_items() {
    let index = generated(10_000);
    assert_eq!(index.len(), 10_000);
    let s = session(1);
    let q = format!("Hi! Where do I find EXPORT REPORT {}, please?", word(7_777));
    assert_eq!(found_id(index.match_name(&q, s)), Some(7_777));
    let q = format!("where is the {} screen?", word(10_000 + 4_242));
    let found = find_answer(&index, &q, s);
    assert_eq!(
        found.map(|f| f.candidate.id),
        Some(content_id(4_242)),
        "{q}"
    );
    assert!(matches!(found.map(|f| f.how), Some(MatchedBy::Rank { .. })));
    // Every item has these words.
    assert_eq!(index.rank("what do the screen options explain?", s), None);
    assert_eq!(index.match_name("export report", s), None);
    assert_eq!(index.shortlist("export report screen", s, 7).len(), 7);
}

#[test]
fn name_matching_work_does_not_grow_with_the_number_of_names() {
    // Every name starts with "export report": an index by first word
    // would check all of them for each "export" in the question.
    let (small, large) = (generated(100), generated(10_000));
    let mut question = String::new();
    while question.len() < 1_950 {
        question.push_str("export report ");
    }
    question.push_str(&format!("Export Report {}?", word(42)));
    let segments = tokens::segments(&normalize(&question)).len();
    let probes = |index: &AnswerIndex| {
        let mut probes = 0;
        let found = index.names.find(&question, |_| true, &mut probes);
        (found, probes)
    };
    let (found_small, probes_small) = probes(&small);
    let (found_large, probes_large) = probes(&large);
    assert_eq!(found_small, Some(42));
    assert_eq!(found_large, Some(42));
    assert_eq!(probes_small, probes_large);
    assert!(
        probes_large <= 3 * segments,
        "{probes_large} probes for {segments} segments"
    );
    // A question sharing nothing with the names: one probe per word start.
    let mut probes = 0;
    let q = "nothing to see here ".repeat(100);
    assert_eq!(large.names.find(&q, |_| true, &mut probes), None);
    assert!(probes <= tokens::segments(&normalize(&q)).len());
}

#[test]
fn candidates_from_content_items() {
    let site = SiteId(Uuid::from_u128(100));
    let now = Utc::now();
    let input = |status: &str, audiences: &[&str]| NewContentInput {
        kind: "TOOLTIP".into(),
        name: "Export CSV".into(),
        description: Some("Download a spreadsheet".into()),
        status: Some(status.into()),
        audiences: audiences.iter().map(|a| a.to_string()).collect(),
    };
    let item = |status: &str, audiences: &[&str]| {
        ContentItem::create(content_id(1), site, &input(status, audiences), now).expect("valid")
    };
    let published = Candidate::from_item(&item("PUBLISHED", &["Admins"])).expect("published");
    assert_eq!(published.visible_to, Visibility::Everyone);
    assert_eq!(published.kind, ContentKind::Tooltip);
    assert_eq!(published.name, "Export CSV");
    assert_eq!(published.description, "Download a spreadsheet");
    assert_eq!(Candidate::from_item(&item("DRAFT", &[])), None);
    assert_eq!(
        Candidate::from_item(&item("PUBLISHED", &["No users"])),
        None
    );

    let origin = GeneratedFrom {
        session_id: session(7),
        message_id: MessageId(Uuid::from_u128(8)),
        answer: "Open Reports, then Export.".into(),
    };
    let mut generated = ContentItem::generated_flow(
        content_id(2),
        site,
        "Export data".into(),
        "".into(),
        origin,
        now,
    );
    let held_back = Candidate::from_item(&generated).expect("published");
    assert_eq!(held_back.visible_to, Visibility::Session(session(7)));
    assert!(held_back.visible_to.admits(session(7)));
    assert!(!held_back.visible_to.admits(session(8)));
    let retarget = ContentPatchInput {
        status: None,
        audiences: Some(vec![]),
    }
    .parse()
    .expect("valid");
    generated.apply(&retarget, now);
    let retargeted = Candidate::from_item(&generated).expect("published");
    assert_eq!(retargeted.visible_to, Visibility::Everyone);
}

#[test]
fn an_index_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<AnswerIndex>();
    let index = std::sync::Arc::new(library());
    let other = std::sync::Arc::clone(&index);
    let found = std::thread::spawn(move || {
        other
            .match_name("download invoice", session(1))
            .map(|c| c.id)
    })
    .join()
    .expect("thread");
    assert_eq!(found, Some(content_id(1)));
}
