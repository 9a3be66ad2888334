//! The lexical ranker: BM25F over two fields, an item's name and its
//! description, from an inverted index built once per site, so a question
//! touches only the postings of its own terms.
//!
//! For a question term `t` and an item `d`:
//!
//! ```text
//! tf'(t, d)  = NAME_WEIGHT · tf_name / norm_name + tf_description / norm_description
//! norm_f     = 1 − B + B · len_f(d) / avg_len_f        (1 when avg_len_f is 0)
//! idf(t)     = ln(1 + (N − df + 0.5) / (df + 0.5))
//! score(t,d) = idf(t) · tf' · (K1 + 1) / (K1 + tf')
//! ```
//!
//! and an item's score is the sum over the question's distinct terms (a
//! term repeated in the question counts once). Lengths are counted in
//! terms (stop words excluded); `N` and `df` count every item of the index,
//! whoever may see it. With `tf' = 1` a term contributes exactly its idf.

use std::collections::HashMap;

use super::tokens::{distinct_terms, terms};

/// BM25's term-frequency saturation: how quickly more occurrences of a
/// term stop adding to an item's score.
pub const K1: f64 = 1.2;
/// BM25's length normalisation: 0 ignores a field's length, 1 divides by
/// its ratio to the field's average length.
pub const B: f64 = 0.75;
/// How much an occurrence in an item's name counts against one in its
/// description: a name says what the item is, a description may mention
/// many things in passing.
pub const NAME_WEIGHT: f64 = 3.0;

/// One item's occurrences of one term.
#[derive(Debug, Clone, Copy)]
struct Posting {
    item: usize,
    name_tf: u32,
    description_tf: u32,
}

/// An item's score for a question.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Scored {
    /// Index into the index's items.
    pub(super) item: usize,
    /// Its BM25F score (> 0).
    pub(super) score: f64,
    /// Whether it shares at least one term with the question that is not
    /// common ([`is_common`]); only such items may be a match.
    pub(super) relevant: bool,
}

/// The inverted index of a site's names and descriptions.
#[derive(Debug, Default)]
pub(super) struct TermIndex {
    postings: HashMap<Box<str>, Vec<Posting>>,
    name_len: Vec<u32>,
    description_len: Vec<u32>,
    avg_name_len: f64,
    avg_description_len: f64,
}

/// BM25's inverse document frequency of a term found in `df` of `n`
/// items (Lucene's form, never negative). A term in exactly half of the
/// items has idf ln 2 whatever `n` is.
pub(super) fn idf(n: usize, df: usize) -> f64 {
    let (n, df) = (n as f64, df as f64);
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// Whether a term found in `df` of `n` items is common: it appears in more
/// than half of the items — its idf is below ln 2, the idf of a term in
/// exactly half of them — and in more than one (with one or two items, a
/// term found in a single item still tells it apart).
pub(super) fn is_common(n: usize, df: usize) -> bool {
    df >= 2 && 2 * df > n
}

fn count(terms: Vec<String>, into: &mut HashMap<String, (u32, u32)>, name: bool) -> u32 {
    let len = u32::try_from(terms.len()).unwrap_or(u32::MAX);
    for term in terms {
        let counts = into.entry(term).or_default();
        let slot = if name { &mut counts.0 } else { &mut counts.1 };
        *slot = slot.saturating_add(1);
    }
    len
}

impl TermIndex {
    /// Indexes `(name, description)` pairs, in the index's item order.
    pub(super) fn build<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> TermIndex {
        let mut index = TermIndex::default();
        for (item, (name, description)) in fields.into_iter().enumerate() {
            let mut counts: HashMap<String, (u32, u32)> = HashMap::new();
            index.name_len.push(count(terms(name), &mut counts, true));
            index
                .description_len
                .push(count(terms(description), &mut counts, false));
            for (term, (name_tf, description_tf)) in counts {
                index
                    .postings
                    .entry(term.into_boxed_str())
                    .or_default()
                    .push(Posting {
                        item,
                        name_tf,
                        description_tf,
                    });
            }
        }
        let average = |lens: &[u32]| {
            if lens.is_empty() {
                0.0
            } else {
                lens.iter().map(|&l| f64::from(l)).sum::<f64>() / lens.len() as f64
            }
        };
        index.avg_name_len = average(&index.name_len);
        index.avg_description_len = average(&index.description_len);
        index
    }

    /// How many items are indexed.
    fn len(&self) -> usize {
        self.name_len.len()
    }

    /// The length-normalised, weighted term frequency of a posting.
    fn weighted_tf(&self, p: &Posting) -> f64 {
        let field = |tf: u32, len: u32, avg: f64| {
            if tf == 0 {
                return 0.0;
            }
            let norm = if avg > 0.0 {
                1.0 - B + B * f64::from(len) / avg
            } else {
                1.0
            };
            f64::from(tf) / norm
        };
        let name = field(p.name_tf, self.name_len[p.item], self.avg_name_len);
        let description = field(
            p.description_tf,
            self.description_len[p.item],
            self.avg_description_len,
        );
        NAME_WEIGHT * name + description
    }

    /// Every admitted item sharing a term with `question`, best first:
    /// higher score, then lower item index (the tie-break order).
    pub(super) fn score(&self, question: &str, admit: impl Fn(usize) -> bool) -> Vec<Scored> {
        let n = self.len();
        let mut scores: HashMap<usize, Scored> = HashMap::new();
        for term in distinct_terms(question) {
            let Some(postings) = self.postings.get(term.as_str()) else {
                continue;
            };
            let df = postings.len();
            let idf = idf(n, df);
            let relevant = !is_common(n, df);
            for p in postings.iter().filter(|p| admit(p.item)) {
                let tf = self.weighted_tf(p);
                let entry = scores.entry(p.item).or_insert(Scored {
                    item: p.item,
                    score: 0.0,
                    relevant: false,
                });
                entry.score += idf * tf * (K1 + 1.0) / (K1 + tf);
                entry.relevant |= relevant;
            }
        }
        let mut ranked: Vec<Scored> = scores.into_values().collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
        ranked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranked(items: &[(&str, &str)], question: &str) -> Vec<(usize, bool)> {
        TermIndex::build(items.iter().copied())
            .score(question, |_| true)
            .iter()
            .map(|s| (s.item, s.relevant))
            .collect()
    }

    #[test]
    fn idf_and_common_terms() {
        assert!((idf(10, 5) - std::f64::consts::LN_2).abs() < 1e-12);
        assert!((idf(1000, 500) - std::f64::consts::LN_2).abs() < 1e-12);
        assert!(idf(10, 1) > idf(10, 2));
        assert!(idf(10, 10) > 0.0);
        let table = [
            (1, 1, false),
            (2, 1, false),
            (2, 2, true),
            (3, 1, false),
            (3, 2, true),
            (10, 5, false),
            (10, 6, true),
            (10_000, 5_001, true),
        ];
        for (n, df, common) in table {
            assert_eq!(is_common(n, df), common, "df {df} of {n}");
            if n > 2 {
                assert_eq!(
                    idf(n, df) < std::f64::consts::LN_2,
                    common,
                    "df {df} of {n}"
                );
            }
        }
    }

    #[test]
    fn order() {
        let items = [
            ("Team settings", "Mentions invoices in passing"),
            ("Download invoice", "Get a PDF of any invoice"),
            ("Billing", "Invoices, receipts and the invoice address"),
            ("Invite a teammate", "Send an invitation"),
            ("Change plan", "Upgrade or downgrade"),
            ("Profile", "Your name and avatar"),
            ("Notifications", "Email alerts"),
        ];
        // A name hit beats description-only hits; repeated description
        // hits beat a single one.
        assert_eq!(
            ranked(&items, "where are my invoices?"),
            [(1, true), (2, true), (0, true)]
        );
        // More of the question's terms beat fewer.
        assert_eq!(
            ranked(&items, "download the invoice pdf"),
            [(1, true), (2, true), (0, true)]
        );
        // Nothing shared, nothing ranked.
        assert_eq!(ranked(&items, "reset my password"), []);
        assert_eq!(ranked(&items, "how do I do it?"), []);
    }

    #[test]
    fn a_name_occurrence_weighs_more_than_a_description_one() {
        // Every field has two terms, so only the field weights differ.
        let items = [
            ("Documents browser", "Invoices archive"),
            ("Invoices archive", "Browse documents"),
            ("Team members", "Invite people"),
            ("Change plan", "Upgrade subscription"),
        ];
        assert_eq!(ranked(&items, "invoices"), [(1, true), (0, true)]);
        let index = TermIndex::build(items);
        let scores: Vec<f64> = index
            .score("invoices", |_| true)
            .iter()
            .map(|s| s.score)
            .collect();
        // tf' = NAME_WEIGHT against tf' = 1 (both fields of average length).
        let expected = |tf: f64| idf(4, 2) * tf * (K1 + 1.0) / (K1 + tf);
        assert!(
            (scores[0] - expected(NAME_WEIGHT)).abs() < 1e-9,
            "{scores:?}"
        );
        assert!((scores[1] - expected(1.0)).abs() < 1e-9, "{scores:?}");
    }

    #[test]
    fn a_shorter_field_weighs_more() {
        let items = [
            (
                "Reports",
                "Export reports as CSV files for your accountant and your team",
            ),
            ("Data", "Export as CSV"),
            ("A", "B"),
            ("C", "D"),
        ];
        assert_eq!(ranked(&items, "csv"), [(1, true), (0, true)]);
    }

    #[test]
    fn common_terms_rank_but_are_not_relevant() {
        let items = [
            ("Export invoices", ""),
            ("Export users", ""),
            ("Export reports", ""),
            ("Invite a teammate", ""),
        ];
        assert_eq!(
            ranked(&items, "export"),
            [(0, false), (1, false), (2, false)]
        );
        assert_eq!(ranked(&items, "export users")[0], (1, true));
    }

    #[test]
    fn admission_filters_items() {
        let index = TermIndex::build([("Invoices", ""), ("Invoice archive", "")]);
        let scored = index.score("invoice", |item| item == 1);
        assert_eq!(scored.len(), 1);
        assert_eq!(scored[0].item, 1);
        assert!(TermIndex::build([]).score("invoice", |_| true).is_empty());
    }
}
