//! The verbatim-name matcher: a trie over the segments of the normalised
//! names ([`super::tokens::segments`]), walked from every word start of
//! the normalised question.
//!
//! The cost of a question is bounded by its segments times the depth the
//! walk reaches, which is the length of the longest name that matches a
//! prefix at that point: it does not grow with the number of names, even
//! when thousands of names share their first word.

use std::collections::HashMap;

use super::tokens::{normalize, segments, separated};

/// A node of the trie; the root is node 0.
type Node = u32;
/// An interned segment.
type Segment = u32;

const ROOT: Node = 0;

/// The names that end at one node: all with the same normal form.
#[derive(Debug)]
struct Terminal {
    /// The normalised name's length in characters.
    chars: usize,
    /// The items with this name, as indices into the index's items (which
    /// are sorted in tie-break order), ascending.
    items: Vec<usize>,
}

/// The names of a site's items, ready for [`NameTrie::find`].
#[derive(Debug, Default)]
pub(super) struct NameTrie {
    /// Every segment of every name, interned.
    vocabulary: HashMap<Box<str>, Segment>,
    /// The trie's edges: (parent, segment) → child.
    edges: HashMap<(Node, Segment), Node>,
    /// The nodes where names end.
    terminals: HashMap<Node, Terminal>,
    /// How many nodes there are (the root included).
    nodes: u32,
}

impl NameTrie {
    /// Builds the trie of `names`, given in the index's item order. A name
    /// that normalises to nothing is left out (it can never match).
    pub(super) fn build<'a>(names: impl IntoIterator<Item = &'a str>) -> NameTrie {
        let mut trie = NameTrie {
            nodes: 1,
            ..NameTrie::default()
        };
        for (item, name) in names.into_iter().enumerate() {
            let name = normalize(name);
            if name.is_empty() {
                continue;
            }
            let mut node = ROOT;
            for (start, end) in segments(&name) {
                let segment = trie.intern(&name[start..end]);
                node = trie.child(node, segment);
            }
            trie.terminals
                .entry(node)
                .or_insert_with(|| Terminal {
                    chars: name.chars().count(),
                    items: Vec::new(),
                })
                .items
                .push(item);
        }
        trie
    }

    fn intern(&mut self, segment: &str) -> Segment {
        if let Some(&id) = self.vocabulary.get(segment) {
            return id;
        }
        let id = Segment::try_from(self.vocabulary.len()).unwrap_or(Segment::MAX);
        self.vocabulary.insert(segment.into(), id);
        id
    }

    fn child(&mut self, parent: Node, segment: Segment) -> Node {
        let next = self.nodes;
        let node = *self.edges.entry((parent, segment)).or_insert(next);
        if node == next {
            self.nodes = self.nodes.saturating_add(1);
        }
        node
    }

    /// The item whose name occurs in `question` on word boundaries, the
    /// longest such name first (in characters of its normal form), then
    /// the lowest item index (the tie-break order); only items `admit`
    /// accepts count. `probes` is increased by one for every trie step and
    /// every item looked at, so tests can see that the work does not grow
    /// with the number of names.
    pub(super) fn find(
        &self,
        question: &str,
        admit: impl Fn(usize) -> bool,
        probes: &mut usize,
    ) -> Option<usize> {
        let question = normalize(question);
        let segs = segments(&question);
        let ids: Vec<Option<Segment>> = segs
            .iter()
            .map(|&(s, e)| self.vocabulary.get(&question[s..e]).copied())
            .collect();
        // The best so far: (name length, item index).
        let mut best: Option<(usize, usize)> = None;
        for (i, &(start, _)) in segs.iter().enumerate() {
            let before = question[..start].chars().next_back();
            let first = question[start..].chars().next();
            if !first.is_some_and(|f| separated(before, f)) {
                continue;
            }
            let mut node = ROOT;
            for (j, id) in ids.iter().enumerate().skip(i) {
                *probes += 1;
                let Some(&next) = id.and_then(|id| self.edges.get(&(node, id))) else {
                    break;
                };
                node = next;
                let Some(terminal) = self.terminals.get(&node) else {
                    continue;
                };
                if best.is_some_and(|(chars, _)| terminal.chars < chars) {
                    continue;
                }
                let end = segs[j].1;
                let after = question[end..].chars().next();
                let last = question[..end].chars().next_back();
                if !last.is_some_and(|l| separated(after, l)) {
                    continue;
                }
                for &item in &terminal.items {
                    *probes += 1;
                    if admit(item) {
                        let found = (terminal.chars, item);
                        let better = best.is_none_or(|(chars, index)| {
                            found.0 > chars || (found.0 == chars && found.1 < index)
                        });
                        if better {
                            best = Some(found);
                        }
                        break;
                    }
                }
            }
        }
        best.map(|(_, item)| item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index of the name found in `question` among `names` (all
    /// admitted).
    fn find<'a>(names: &[&'a str], question: &str) -> Option<&'a str> {
        let trie = NameTrie::build(names.iter().copied());
        let mut probes = 0;
        trie.find(question, |_| true, &mut probes)
            .map(|index| names[index])
    }

    #[test]
    fn names_match_verbatim_on_word_boundaries() {
        let table: [(&[&str], &str, Option<&str>); 31] = [
            // case and spacing aside
            (&["Export CSV"], "how do I  export csv?", Some("Export CSV")),
            (&["Export CSV"], "EXPORT\tCSV", Some("Export CSV")),
            (&["Export  CSV "], "export csv", Some("Export  CSV ")),
            (&["Export CSV"], "export\n\ncsv please", Some("Export CSV")),
            (&["Export CSV"], "exportcsv", None),
            (&["Export CSV"], "export-csv", None),
            (&["Export CSV"], "export the csv", None),
            // punctuation around names
            (&["Billing"], "(billing)", Some("Billing")),
            (&["Billing"], "billing?", Some("Billing")),
            (&["Billing"], "\"Billing\".", Some("Billing")),
            (&["Billing"], "billing-page", Some("Billing")),
            (&["Billing"], "billing_page", Some("Billing")),
            // prefix or suffix of a longer word
            (&["Billing"], "rebilling", None),
            (&["Billing"], "billings", None),
            (&["Billing"], "billing2", None),
            (&["Export"], "exports", None),
            (&["Export"], "reexport", None),
            (&["Export"], "i want to export", Some("Export")),
            // names that start or end with punctuation
            (&["#channels"], "where are #channels?", Some("#channels")),
            (&["#channels"], "see a#channels", None),
            (
                &["(Beta) Reports"],
                "open (beta) reports",
                Some("(Beta) Reports"),
            ),
            (&["C++ setup"], "c++ setup", Some("C++ setup")),
            (&["C++"], "c++x", None),
            (&["What's new?"], "what's new?!", Some("What's new?")),
            (&["..."], "wait ... what", Some("...")),
            (&["..."], "wait... what", None),
            // Unicode
            (
                &["Überweisung"],
                "Wie mache ich eine ÜBERWEISUNG?",
                Some("Überweisung"),
            ),
            (&["Überweisung"], "Überweisungen", None),
            (&["导出"], "如何导出数据", Some("导出")),
            (&["导出"], "如何导入数据", None),
            (&["CSV导出"], "怎么csv导出?", Some("CSV导出")),
        ];
        for (names, question, expected) in table {
            assert_eq!(find(names, question), expected, "{names:?} in {question:?}");
        }
    }

    #[test]
    fn the_longest_name_wins() {
        let table: [(&[&str], &str, Option<&str>); 6] = [
            (
                &["Export", "Export CSV"],
                "export csv now",
                Some("Export CSV"),
            ),
            (
                &["Export CSV", "Export"],
                "export csv now",
                Some("Export CSV"),
            ),
            (&["Export", "Export CSV"], "export pdf now", Some("Export")),
            (&["Export", "Export CSV"], "export csvs", Some("Export")),
            (&["CSV", "Export"], "export csv", Some("Export")),
            (
                &["Invite", "Invite a teammate", "teammate"],
                "invite a teammate",
                Some("Invite a teammate"),
            ),
        ];
        for (names, question, expected) in table {
            assert_eq!(find(names, question), expected, "{names:?} in {question:?}");
        }
    }

    #[test]
    fn equal_lengths_go_to_the_first_item() {
        // Items are in tie-break order, so the first is the winner.
        let names = ["Import data", "Export data", "export  DATA"];
        let trie = NameTrie::build(names);
        let mut probes = 0;
        let q = "export data or import data";
        assert_eq!(trie.find(q, |_| true, &mut probes), Some(0));
        assert_eq!(trie.find(q, |i| i != 0, &mut probes), Some(1));
        assert_eq!(trie.find(q, |i| i == 2, &mut probes), Some(2));
        assert_eq!(trie.find(q, |_| false, &mut probes), None);
    }

    #[test]
    fn empty_names_and_questions_never_match() {
        assert_eq!(find(&["   "], "   "), None);
        assert_eq!(find(&["Export"], ""), None);
        assert_eq!(find(&[], "export"), None);
    }
}
