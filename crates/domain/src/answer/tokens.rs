//! Text handling shared by the name matcher and the ranker: the normal form
//! of names and questions ([`normalize`]), the segments the matcher's trie
//! is keyed by, and the ranker's terms (tokenizer, stop words, light
//! stemmer).

use std::collections::HashSet;

/// The normal form in which names are looked for in questions: Unicode
/// lower case (character by character, so the result never depends on the
/// surrounding text; a final sigma `ς` is folded to `σ`), every run of
/// whitespace collapsed to one space, and no leading or trailing space.
///
/// The matcher normalises names and questions with this same function, so
/// "Export  CSV" and "export csv" are the same name.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        push_lower(&mut out, c);
    }
    out
}

/// Appends the lower case of `c` (final sigma folded to sigma).
fn push_lower(out: &mut String, c: char) {
    for l in c.to_lowercase() {
        out.push(if l == 'ς' { 'σ' } else { l });
    }
}

/// Whether `c` belongs to a script written without spaces between words:
/// Han ideographs, Hiragana and Katakana, Thai, Lao, Myanmar and Khmer.
/// In those scripts every character is treated as a word edge: the matcher
/// needs no separator around a name written in them (or next to them), and
/// the ranker indexes their runs as overlapping character pairs.
pub(super) fn is_unspaced(c: char) -> bool {
    matches!(
        u32::from(c),
        0x0E00..=0x0EFF // Thai, Lao
            | 0x1000..=0x109F // Myanmar
            | 0x1780..=0x17FF // Khmer
            | 0x3005..=0x3007 // 々 〆 〇
            | 0x3041..=0x309F // Hiragana
            | 0x30A1..=0x30FA // Katakana (without its punctuation)
            | 0x30FC..=0x30FF
            | 0x31F0..=0x31FF // Katakana phonetic extensions
            | 0x3400..=0x4DBF // CJK extension A
            | 0x4E00..=0x9FFF // CJK unified ideographs
            | 0xF900..=0xFAFF // CJK compatibility ideographs
            | 0xFF66..=0xFF9F // half-width Katakana
            | 0x20000..=0x3134F // CJK extensions B–G
    )
}

/// Whether `c` is part of a word of a spaced script (a letter or digit
/// that is not [`is_unspaced`]).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_unspaced(c)
}

/// Whether a name's first (or last) character `edge` sits on a word
/// boundary given the question's character just outside it (`None` at the
/// question's start or end): the outside character is not alphanumeric, or
/// either of the two belongs to a script written without spaces.
pub(super) fn separated(outside: Option<char>, edge: char) -> bool {
    match outside {
        None => true,
        Some(o) => !o.is_alphanumeric() || is_unspaced(o) || is_unspaced(edge),
    }
}

/// Splits normalised text into segments (byte ranges): each maximal run of
/// [`is_word_char`] characters is one segment, every other character
/// (space, punctuation, a character of an unspaced script) is a segment of
/// its own. An occurrence of a name on word boundaries always starts and
/// ends on segment edges, and its segments are exactly the name's.
pub(super) fn segments(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut run: Option<usize> = None;
    for (i, c) in text.char_indices() {
        if is_word_char(c) {
            run.get_or_insert(i);
            continue;
        }
        if let Some(start) = run.take() {
            out.push((start, i));
        }
        out.push((i, i + c.len_utf8()));
    }
    if let Some(start) = run {
        out.push((start, text.len()));
    }
    out
}

/// English words too common to tell items apart, sorted (binary search).
/// Apostrophes split words, so contractions' stems ("don", "isn") are here
/// too; single ASCII letters are dropped separately.
const STOP_WORDS: &[&str] = &[
    "about", "am", "an", "and", "any", "are", "aren", "as", "at", "be", "been", "being", "but",
    "by", "can", "could", "couldn", "did", "didn", "do", "does", "doesn", "doing", "don", "for",
    "from", "had", "has", "have", "he", "her", "here", "him", "his", "how", "if", "in", "into",
    "is", "isn", "it", "its", "just", "ll", "me", "my", "no", "not", "of", "on", "or", "our",
    "please", "re", "she", "should", "shouldn", "so", "than", "that", "the", "their", "them",
    "then", "there", "these", "they", "this", "those", "to", "us", "ve", "was", "we", "were",
    "what", "when", "where", "which", "who", "whom", "why", "will", "with", "won", "would",
    "wouldn", "you", "your",
];

/// Whether `word` (lower case) is a stop word or a single ASCII letter.
fn is_stop_word(word: &str) -> bool {
    let mut chars = word.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        if c.is_ascii_alphabetic() {
            return true;
        }
    }
    STOP_WORDS.binary_search(&word).is_ok()
}

/// The ranker's terms of `text`, in order, repeats kept: lower case, split
/// on every character that is not a letter or digit, stop words dropped,
/// each word [`stem`]med; runs of an unspaced script ([`is_unspaced`])
/// become overlapping character pairs ("导出数据" → 导出, 出数, 数据; a
/// lone character is its own term).
pub(super) fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut run: Vec<char> = Vec::new();
    let mut lower = String::new();
    for c in text.chars() {
        lower.clear();
        push_lower(&mut lower, c);
        for l in lower.chars() {
            if is_word_char(l) {
                word.push(l);
            } else {
                flush_word(&mut word, &mut out);
            }
            if is_unspaced(l) {
                run.push(l);
            } else {
                flush_run(&mut run, &mut out);
            }
        }
    }
    flush_word(&mut word, &mut out);
    flush_run(&mut run, &mut out);
    out
}

/// The distinct terms of `text`, in order of first appearance.
pub(super) fn distinct_terms(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    terms(text)
        .into_iter()
        .filter(|t| seen.insert(t.clone()))
        .collect()
}

fn flush_word(word: &mut String, out: &mut Vec<String>) {
    if !word.is_empty() && !is_stop_word(word) {
        out.push(stem(word));
    }
    word.clear();
}

fn flush_run(run: &mut Vec<char>, out: &mut Vec<String>) {
    match run.as_slice() {
        [] => {}
        [c] => out.push(c.to_string()),
        chars => out.extend(chars.windows(2).map(|w| w.iter().collect::<String>())),
    }
    run.clear();
}

/// A light English stemmer: it folds plurals, "-ing" and "-ed" and a final
/// "e" so that the forms of one word meet on one stem (which need not be a
/// word). Only alphabetic words of four characters or more are touched:
///
/// 1. plurals: "-ies" → "-y" (companies → company), "-sses" → "-ss",
///    "-xes", "-ches", "-shes", "-zzes" lose "-es" (boxes → box), any other
///    final "s" goes unless the word ends in "ss", "us" or "is" (invoices →
///    invoice; status, analysis and access stay);
/// 2. "-ied" → "-y" (copied → copy); "-ing" and "-ed" go when at least
///    three characters with a vowel remain (exporting, exported → export;
///    string, need stay), then a doubled final consonant other than l, s,
///    z is undoubled when three characters remain (setting → set,
///    shipped → ship; billing → bill);
/// 3. a final "e" goes when three characters remain (invoice, invoiced,
///    invoicing → invoic; make, making → mak; use stays).
///
/// Words of other languages are left as they are, apart from those rules
/// happening to apply.
pub(super) fn stem(word: &str) -> String {
    let len = |s: &str| s.chars().count();
    if len(word) < 4 || !word.chars().all(char::is_alphabetic) {
        return word.to_owned();
    }
    let mut w = word.to_owned();

    if let Some(base) = w.strip_suffix("ies").filter(|b| len(b) >= 2) {
        w = format!("{base}y");
    } else if w.ends_with("sses")
        || ["xes", "ches", "shes", "zzes"]
            .iter()
            .any(|s| w.ends_with(s))
    {
        w.truncate(w.len() - 2);
    } else if w.ends_with('s') && !["ss", "us", "is"].iter().any(|s| w.ends_with(s)) {
        w.truncate(w.len() - 1);
    }

    let has_vowel = |s: &str| s.chars().any(|c| "aeiouy".contains(c));
    let long_enough = |b: &&str| len(b) >= 3 && has_vowel(b);
    let mut stripped = false;
    if let Some(base) = w.strip_suffix("ied").filter(|b| len(b) >= 2) {
        w = format!("{base}y");
    } else if let Some(base) = w.strip_suffix("ing").filter(long_enough) {
        w = base.to_owned();
        stripped = true;
    } else if let Some(base) = w.strip_suffix("ed").filter(long_enough) {
        w = base.to_owned();
        stripped = true;
    }
    if stripped {
        let mut tail = w.chars().rev();
        if let (Some(a), Some(b)) = (tail.next(), tail.next()) {
            if a == b && a.is_ascii_alphabetic() && !"aeioulsz".contains(a) && len(&w) > 3 {
                w.pop();
            }
        }
    }

    if w.ends_with('e') && len(&w) > 3 {
        w.pop();
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_form() {
        let table = [
            ("Export CSV", "export csv"),
            ("  Export \t\n CSV  ", "export csv"),
            ("EXPORT\u{a0}csv", "export csv"),
            ("Überweisung", "überweisung"),
            ("ΟΔΟΣ", "οδοσ"),
            ("οδος", "οδοσ"),
            ("导出", "导出"),
            ("", ""),
            (" \t ", ""),
        ];
        for (raw, expected) in table {
            assert_eq!(normalize(raw), expected, "{raw:?}");
        }
    }

    #[test]
    fn segments_split_words_from_everything_else() {
        let text = "export-csv, 导出 #1";
        let segs: Vec<&str> = segments(text).iter().map(|&(s, e)| &text[s..e]).collect();
        assert_eq!(
            segs,
            ["export", "-", "csv", ",", " ", "导", "出", " ", "#", "1"]
        );
    }

    #[test]
    fn stop_words_are_sorted_and_lower_case() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(STOP_WORDS.iter().all(|w| *w == w.to_lowercase()));
    }

    #[test]
    fn stems() {
        let table = [
            ("invoices", "invoic"),
            ("invoice", "invoic"),
            ("invoiced", "invoic"),
            ("invoicing", "invoic"),
            ("exports", "export"),
            ("exporting", "export"),
            ("exported", "export"),
            ("companies", "company"),
            ("copied", "copy"),
            ("copying", "copy"),
            ("boxes", "box"),
            ("matches", "match"),
            ("addresses", "address"),
            ("settings", "set"),
            ("shipped", "ship"),
            ("billing", "bill"),
            ("bills", "bill"),
            ("making", "mak"),
            ("make", "mak"),
            ("status", "status"),
            ("analysis", "analysis"),
            ("access", "access"),
            ("string", "string"),
            ("need", "need"),
            ("add", "add"),
            ("use", "use"),
            ("2fa", "2fa"),
            ("überweisung", "überweisung"),
        ];
        for (word, expected) in table {
            assert_eq!(stem(word), expected, "{word}");
        }
    }

    #[test]
    fn terms_drop_stop_words_and_stem() {
        let table: [(&str, &[&str]); 6] = [
            ("How do I download my invoices?", &["download", "invoic"]),
            ("what is it", &[]),
            ("I don't see the user's e-mail", &["see", "user", "mail"]),
            ("Exporting CSV files", &["export", "csv", "fil"]),
            ("如何导出数据", &["如何", "何导", "导出", "出数", "数据"]),
            ("Überweisung 导", &["überweisung", "导"]),
        ];
        for (text, expected) in table {
            assert_eq!(terms(text), expected, "{text}");
        }
        assert_eq!(
            distinct_terms("invoice invoices Invoice"),
            vec!["invoic".to_string()]
        );
    }
}
