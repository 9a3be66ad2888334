//! The answer engine's pure rules: which of a site's published Flows and
//! Tooltips answers a visitor's question.
//!
//! 1. **By name** ([`AnswerIndex::match_name`]): when the question contains
//!    an item's name verbatim, case and spacing aside, that item is the
//!    answer and no model is called; the longest such name wins.
//! 2. **By rank** ([`AnswerIndex::rank`]): otherwise a lexical ranker (BM25F
//!    over names and descriptions) picks the best item, or none when
//!    nothing is relevant. [`AnswerIndex::shortlist`] gives its top items
//!    to a model-based ranker instead.
//! 3. With no match, a generator (outside this module) drafts a new Flow.
//!
//! [`find_answer`] runs the first two steps. An [`AnswerIndex`] is built
//! once per site from its published items and shared (it is immutable,
//! `Send` and `Sync`); the caller builds a new one when the content changes.

mod matcher;
mod ranker;
#[cfg(test)]
mod tests;
mod tokens;

use std::fmt;

use crate::content::{ContentItem, ContentKind, ContentStatus};
use crate::ids::{ContentId, SessionId};

pub use ranker::{B, K1, NAME_WEIGHT};
pub use tokens::normalize;

/// Who may be shown a content item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Every visitor of the site.
    Everyone,
    /// Only the visitor in this session: an AI-made Flow published under
    /// the "No users" audience for the session it was generated in.
    Session(SessionId),
}

impl Visibility {
    /// Whether the visitor in `session` may be shown the item.
    pub fn admits(self, session: SessionId) -> bool {
        match self {
            Visibility::Everyone => true,
            Visibility::Session(only) => only == session,
        }
    }
}

/// What the answer engine knows of one published content item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The item's id.
    pub id: ContentId,
    /// Flow or Tooltip.
    pub kind: ContentKind,
    /// Its name, looked for verbatim in questions.
    pub name: String,
    /// What it does; the ranker reads it beside the name.
    pub description: String,
    /// Who may be shown it.
    pub visible_to: Visibility,
}

impl Candidate {
    /// The candidate for a content item, or `None` when no visitor may be
    /// shown it: a draft, or an item held back under "No users" that is not
    /// an AI-made Flow (no session to show it to). An AI-made Flow held back
    /// under "No users" is visible to the session it was made in; anything
    /// else published is visible to everyone.
    pub fn from_item(item: &ContentItem) -> Option<Candidate> {
        if item.status != ContentStatus::Published {
            return None;
        }
        let visible_to = if item.is_targeted_at_no_users() {
            Visibility::Session(item.origin.as_ref()?.session_id)
        } else {
            Visibility::Everyone
        };
        Some(Candidate {
            id: item.id,
            kind: item.kind,
            name: item.name.clone(),
            description: item.description.clone(),
            visible_to,
        })
    }
}

/// The order in which otherwise equal candidates win: Flows before
/// Tooltips, then the smallest id.
fn tie_break_key(c: &Candidate) -> (u8, ContentId) {
    let kind = match c.kind {
        ContentKind::Flow => 0,
        ContentKind::Tooltip => 1,
    };
    (kind, c.id)
}

/// A candidate the ranker scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranked<'a> {
    /// The item.
    pub candidate: &'a Candidate,
    /// Its BM25F score for the question (> 0; higher is better; only
    /// comparable between items of one index and one question).
    pub score: f64,
}

/// How an answer was found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MatchedBy {
    /// The question contains the item's name ([`AnswerIndex::match_name`]).
    Name,
    /// The ranker picked it ([`AnswerIndex::rank`]) with this score.
    Rank {
        /// The item's BM25F score.
        score: f64,
    },
}

/// The item that answers a question, and how it was found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Found<'a> {
    /// The item.
    pub candidate: &'a Candidate,
    /// By name or by rank.
    pub how: MatchedBy,
}

/// A site's published items, indexed for answering questions: a trie of
/// their normalised names and an inverted index of their names' and
/// descriptions' terms. Immutable once built; share it in an `Arc` and
/// build a new one when the site's content changes.
pub struct AnswerIndex {
    /// The items in tie-break order (Flows first, then by id).
    items: Vec<Candidate>,
    names: matcher::NameTrie,
    terms: ranker::TermIndex,
}

impl AnswerIndex {
    /// Indexes a site's published items (the caller leaves drafts out; see
    /// [`Candidate::from_item`]). The order of `items` does not matter.
    pub fn build(mut items: Vec<Candidate>) -> AnswerIndex {
        items.sort_by_key(tie_break_key);
        let names = matcher::NameTrie::build(items.iter().map(|c| c.name.as_str()));
        let terms = ranker::TermIndex::build(
            items
                .iter()
                .map(|c| (c.name.as_str(), c.description.as_str())),
        );
        AnswerIndex {
            items,
            names,
            terms,
        }
    }

    /// How many items are indexed (for every session).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no item is indexed.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The item whose name the question contains verbatim, among the items
    /// the visitor in `session` may be shown.
    ///
    /// Question and names are compared in their [`normalize`]d form (lower
    /// case, whitespace runs collapsed to one space, trimmed). A name
    /// matches where it occurs on word boundaries: the question's
    /// characters just before and just after the occurrence, if any, are
    /// not letters or digits, so "Billing" is not found in "rebilling" nor
    /// "Export" in "exports", but "Export CSV" is in "how do I  export
    /// csv?". In scripts written without spaces (Chinese, Japanese, Thai,
    /// …) no separator is needed next to their characters, so "导出" is
    /// found in "如何导出数据".
    ///
    /// When several names occur, the longest (in characters of its normal
    /// form) wins; among equally long ones a Flow wins over a Tooltip, then
    /// the smallest id. The work per question grows with the question's
    /// length, not with the number of items.
    pub fn match_name(&self, question: &str, session: SessionId) -> Option<&Candidate> {
        let mut probes = 0;
        self.names
            .find(question, |i| self.admits(i, session), &mut probes)
            .and_then(|i| self.items.get(i))
    }

    /// The best item for the question by BM25F over names and descriptions
    /// ([`K1`], [`B`], name occurrences weighted [`NAME_WEIGHT`] times), or
    /// `None` when nothing is relevant. Only items the visitor in `session`
    /// may be shown count. Equal scores go to the Flow, then the smallest
    /// id.
    ///
    /// Question, names and descriptions are split into lower-case words on
    /// every character that is not a letter or digit, English stop words
    /// ("how", "do", "the", …) are dropped and each word is folded by a
    /// light stemmer (plurals, "-ing", "-ed", a final "e"), so "invoices"
    /// finds "Download invoice". Runs of Chinese, Japanese or Thai script
    /// become overlapping character pairs.
    ///
    /// # When the answer is none
    ///
    /// An item is returned only when it shares with the question at least
    /// one term that is not *common*: a term is common when it appears in
    /// more than half of the site's items and in more than one. This is a
    /// threshold on the idf of the shared terms: a term found in exactly
    /// half of the items has idf ln 2 whatever the site's size, so the
    /// rule is "at least one shared term has idf ≥ ln 2" (or is found in a
    /// single item). Common terms still add to a qualifying item's score,
    /// but by themselves never make a match: asked "export" on a site where
    /// most items are exports, the answer is none, and a new Flow is better
    /// than an arbitrary export. Questions of stop words only, or whose
    /// words no item contains, get none too.
    ///
    /// The threshold is not a fixed score because BM25's idf depends on the
    /// number of items: a term found in the only item of a one-item site
    /// has idf 0.29, one found in one of 1,000 items 6.5. A fixed score
    /// would either let a common term through on large sites or turn down
    /// a plain match on small ones.
    pub fn rank(&self, question: &str, session: SessionId) -> Option<Ranked<'_>> {
        self.terms
            .score(question, |i| self.admits(i, session))
            .into_iter()
            .find(|s| s.relevant)
            .and_then(|s| self.ranked(s.item, s.score))
    }

    /// The `n` items with the highest BM25F scores for the question, best
    /// first, among those the visitor in `session` may be shown and that
    /// share at least one term with it (ties as in [`AnswerIndex::rank`]).
    /// Unlike `rank` it applies no relevance threshold: it is the list a
    /// model-based ranker chooses from (or declines).
    pub fn shortlist(&self, question: &str, session: SessionId, n: usize) -> Vec<Ranked<'_>> {
        self.terms
            .score(question, |i| self.admits(i, session))
            .into_iter()
            .take(n)
            .filter_map(|s| self.ranked(s.item, s.score))
            .collect()
    }

    fn admits(&self, item: usize, session: SessionId) -> bool {
        self.items
            .get(item)
            .is_some_and(|c| c.visible_to.admits(session))
    }

    fn ranked(&self, item: usize, score: f64) -> Option<Ranked<'_>> {
        self.items
            .get(item)
            .map(|candidate| Ranked { candidate, score })
    }
}

impl Default for AnswerIndex {
    /// An index of no items.
    fn default() -> Self {
        AnswerIndex::build(Vec::new())
    }
}

impl fmt::Debug for AnswerIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnswerIndex")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// The item that answers `question` for the visitor in `session`: by name
/// ([`AnswerIndex::match_name`]) when the question contains one, else by
/// rank ([`AnswerIndex::rank`]); `None` when neither finds one (then a new
/// Flow is generated).
///
/// ```
/// use chatdesk_domain::answer::{find_answer, AnswerIndex, Candidate, MatchedBy, Visibility};
/// use chatdesk_domain::content::ContentKind;
/// use chatdesk_domain::ids::{ContentId, SessionId};
/// use uuid::Uuid;
///
/// let item = |n: u128, name: &str, description: &str| Candidate {
///     id: ContentId(Uuid::from_u128(n)),
///     kind: ContentKind::Flow,
///     name: name.into(),
///     description: description.into(),
///     visible_to: Visibility::Everyone,
/// };
/// let index = AnswerIndex::build(vec![
///     item(1, "Export CSV", "Download your data as a spreadsheet"),
///     item(2, "Download invoice", "Get a PDF of any invoice"),
///     item(3, "Invite a teammate", "Add people to your workspace"),
/// ]);
/// let session = SessionId(Uuid::from_u128(9));
///
/// let found = find_answer(&index, "How do I export CSV?", session).unwrap();
/// assert_eq!(found.candidate.name, "Export CSV");
/// assert_eq!(found.how, MatchedBy::Name);
///
/// let found = find_answer(&index, "where are my invoices", session).unwrap();
/// assert_eq!(found.candidate.name, "Download invoice");
/// assert!(matches!(found.how, MatchedBy::Rank { .. }));
///
/// assert!(find_answer(&index, "reset my password", session).is_none());
/// ```
pub fn find_answer<'a>(
    index: &'a AnswerIndex,
    question: &str,
    session: SessionId,
) -> Option<Found<'a>> {
    if let Some(candidate) = index.match_name(question, session) {
        return Some(Found {
            candidate,
            how: MatchedBy::Name,
        });
    }
    index.rank(question, session).map(|r| Found {
        candidate: r.candidate,
        how: MatchedBy::Rank { score: r.score },
    })
}
