//! The answer engine over a large library: building an [`AnswerIndex`]
//! of generated published items, and `find_answer` for four kinds of
//! question, one thread, no I/O.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chatdesk_domain::answer::{find_answer, AnswerIndex, Candidate, MatchedBy, Visibility};
use chatdesk_domain::content::ContentKind;
use chatdesk_domain::conversation::QUESTION_MAX;
use chatdesk_domain::ids::{ContentId, SessionId};
use uuid::Uuid;

use crate::catalog::{library, long_question, unrelated_question, LibraryItem, Rng};
use crate::load::percentile;
use crate::sdk::median;
use crate::{Result, Settings};

/// A different seed from the SDK sites' library: other names.
const MATCHER_SEED: u64 = 0x5eed_0f1e;
/// How many times the index is built.
const BUILDS: usize = 5;
/// How many times each question is timed.
const PASSES: usize = 5;
/// How many distinct 2,000-character questions.
const LONG_QUESTIONS: usize = 50;

/// One kind of question: what it is, the questions and, for each, the
/// item it is about (if any).
struct Kind {
    label: &'static str,
    questions: Vec<(String, Option<ContentId>)>,
}

pub(crate) fn matcher(s: &Settings) -> Result<()> {
    let generating = Instant::now();
    let library = library(s.matcher_items, MATCHER_SEED);
    if library.len() < s.matcher_items {
        return Err(format!(
            "the generator has only {} distinct names; lower BENCH_MATCHER_ITEMS",
            library.len()
        )
        .into());
    }
    // 1 in 100 items is an AI-made Flow held back for another visitor's
    // session: indexed, never an answer here.
    let asking = SessionId(Uuid::now_v7());
    let elsewhere = SessionId(Uuid::now_v7());
    let candidates: Vec<Candidate> = library
        .iter()
        .enumerate()
        .map(|(i, item)| Candidate {
            id: ContentId(Uuid::now_v7()),
            kind: item.kind,
            name: item.name.clone(),
            description: item.description.clone(),
            visible_to: if i % 100 == 99 {
                Visibility::Session(elsewhere)
            } else {
                Visibility::Everyone
            },
        })
        .collect();
    let flows = candidates
        .iter()
        .filter(|c| c.kind == ContentKind::Flow)
        .count();
    let generating = generating.elapsed();

    let mut builds = Vec::with_capacity(BUILDS);
    let mut index = AnswerIndex::default();
    for _ in 0..BUILDS {
        let items = candidates.clone();
        let started = Instant::now();
        index = AnswerIndex::build(items);
        builds.push(started.elapsed().as_secs_f64() * 1e3);
    }
    black_box(&index);

    let kinds = questions(&library, &candidates, s.matcher_questions);
    println!(
        "Matcher: AnswerIndex over {} generated published items ({} Flows, {} Tooltips, 1 in 100 \
         visible to another session only; generated in {} ms), one thread",
        candidates.len(),
        flows,
        candidates.len() - flows,
        generating.as_millis(),
    );
    let mut sorted = builds.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "index build: median {:.1} ms, min {:.1} ms, max {:.1} ms ({BUILDS} builds)",
        median(builds),
        sorted.first().copied().unwrap_or(f64::NAN),
        sorted.last().copied().unwrap_or(f64::NAN),
    );
    println!(
        "{:<36} {:>9} {:>7} {:>7} {:>5} {:>8} {:>8} {:>8} {:>8}",
        "find_answer, question kind",
        "questions",
        "by name",
        "by rank",
        "none",
        "intended",
        "p50 µs",
        "p95 µs",
        "max µs"
    );
    for kind in &kinds {
        let (mut by_name, mut by_rank, mut none, mut intended) = (0, 0, 0, 0);
        for (question, about) in &kind.questions {
            match find_answer(&index, question, asking) {
                Some(found) => {
                    match found.how {
                        MatchedBy::Name => by_name += 1,
                        MatchedBy::Rank { .. } => by_rank += 1,
                    }
                    if Some(found.candidate.id) == *about {
                        intended += 1;
                    }
                }
                None => none += 1,
            }
        }
        let mut nanos = Vec::with_capacity(kind.questions.len() * PASSES);
        for _ in 0..PASSES {
            for (question, _) in &kind.questions {
                let started = Instant::now();
                black_box(find_answer(&index, black_box(question), asking));
                nanos.push(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
            }
        }
        nanos.sort_unstable();
        let micros = |d: Duration| d.as_secs_f64() * 1e6;
        let about_any = kind.questions.iter().any(|(_, about)| about.is_some());
        println!(
            "{:<36} {:>9} {:>7} {:>7} {:>5} {:>8} {:>8.1} {:>8.1} {:>8.1}",
            kind.label,
            kind.questions.len(),
            by_name,
            by_rank,
            none,
            if about_any {
                intended.to_string()
            } else {
                "-".to_string()
            },
            micros(percentile(&nanos, 50.0)),
            micros(percentile(&nanos, 95.0)),
            micros(
                nanos
                    .last()
                    .map_or(Duration::ZERO, |n| Duration::from_nanos(*n))
            ),
        );
    }
    println!(
        "by name / by rank / none = how find_answer answered each question; intended = answers \
         that were the item the question was written about; times over {PASSES} passes of \
         every question"
    );
    Ok(())
}

/// The four kinds: questions naming an item verbatim, questions about an
/// item in other words, questions about nothing in the library, and
/// questions of the most characters a visitor may send.
fn questions(library: &[LibraryItem], candidates: &[Candidate], n: usize) -> Vec<Kind> {
    let mut rng = Rng::new(0x9e57_1075);
    let visible: Vec<usize> = (0..library.len())
        .filter(|&i| candidates[i].visible_to == Visibility::Everyone)
        .collect();
    let mut named = Vec::with_capacity(n);
    let mut reworded = Vec::with_capacity(n);
    for q in 0..n {
        let i = visible[rng.below(visible.len())];
        named.push((library[i].named_question(q), Some(candidates[i].id)));
        let i = visible[rng.below(visible.len())];
        reworded.push((
            library[i].reworded_question(&mut rng),
            Some(candidates[i].id),
        ));
    }
    let unrelated = (0..n)
        .map(|_| (unrelated_question(&mut rng), None))
        .collect();
    let long = (0..LONG_QUESTIONS.min(n))
        .map(|_| (long_question(&mut rng, QUESTION_MAX), None))
        .collect();
    vec![
        Kind {
            label: "names an item (name hit)",
            questions: named,
        },
        Kind {
            label: "about an item in other words (rank)",
            questions: reworded,
        },
        Kind {
            label: "about nothing in the library (miss)",
            questions: unrelated,
        },
        Kind {
            label: "2,000 characters of library words",
            questions: long,
        },
    ]
}
