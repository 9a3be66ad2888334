//! Latency of list pages: the first page and a page half-way down the
//! list, through HTTP and as the store's statement on a dedicated
//! connection, taking turns in rounds so that a slow patch of the machine
//! hits both sides.

use std::hint::black_box;
use std::time::Instant;

use chatdesk_api::extract::encode_cursor;
use chatdesk_domain::conversation::ConversationCursor;
use chatdesk_domain::ids::SiteId;
use chatdesk_store::ListBounds;
use diesel::pg::PgConnection;

use crate::combos::{Client, Combo, PAGE};
use crate::Result;

/// Target: HTTP p95 at most this much above the SQL p95 (ms).
pub(crate) const HTTP_OVER_SQL_MS: f64 = 1.0;
/// Target: the deep page's p95 at most this many times the first's.
pub(crate) const DEEP_OVER_FIRST: f64 = 1.5;

/// One combination, ready to measure.
pub(crate) struct Target<'a> {
    pub(crate) combo: &'a Combo,
    /// Sessions it matches.
    pub(crate) rows: i64,
    first: Page,
    /// Half-way down the list (none when fewer than two sessions match).
    deep: Option<Page>,
    /// Where the deep page starts (1-based row).
    pub(crate) deep_row: Option<i64>,
}

struct Page {
    bounds: ListBounds,
    url: String,
}

impl Target<'_> {
    pub(crate) fn first_bounds(&self) -> &ListBounds {
        &self.first.bounds
    }
}

/// Latencies of one page kind, ns.
#[derive(Default)]
pub(crate) struct Samples {
    pub(crate) sql: Vec<u64>,
    pub(crate) http: Vec<u64>,
}

/// The figures of one combination.
pub(crate) struct Figures {
    pub(crate) first: Samples,
    pub(crate) deep: Samples,
}

/// Counts each combination's sessions, finds its half-way cursor, and
/// checks that HTTP returns the statement's rows for both pages (and
/// that its cursor is the one this program makes).
pub(crate) fn prepare<'a>(
    combos: &'a [Combo],
    conn: &mut PgConnection,
    client: &Client,
    base: &str,
    site: SiteId,
) -> Result<Vec<Target<'a>>> {
    let rows_asked = i64::from(PAGE) + 1;
    let mut targets = Vec::with_capacity(combos.len());
    let mut cursor_checked = false;
    for combo in combos {
        let began = Instant::now();
        let rows = combo.count(conn, site)?;
        let first_bounds = combo.bounds(site, None, rows_asked);
        let first_url = combo.url(base, &site.to_string(), None);
        let sql_first = combo.page(conn, &first_bounds)?;
        let http_first = client.list(&first_url)?;
        same_page(combo, "first", &sql_first, &http_first.ids)?;
        // The API's cursor is the one made here from the row.
        if !cursor_checked && sql_first.len() > PAGE as usize {
            let made = encode_cursor(&sql_first[PAGE as usize - 1].cursor()?.to_string());
            if http_first.next.as_deref() != Some(made.as_str()) {
                return Err(format!(
                    "the API's nextCursor {:?} is not the cursor this program makes ({made}): \
                     update benches/conversations/measure.rs to the new cursor format",
                    http_first.next
                )
                .into());
            }
            cursor_checked = true;
        }
        let (deep, deep_row) = if rows >= 2 {
            let half = rows / 2;
            let row = combo.nth(conn, site, half)?;
            let cursor: ConversationCursor = row.cursor()?;
            let bounds = combo.bounds(site, Some(&cursor), rows_asked);
            let url = combo.url(
                base,
                &site.to_string(),
                Some(&encode_cursor(&cursor.to_string())),
            );
            let sql_deep = combo.page(conn, &bounds)?;
            let http_deep = client.list(&url)?;
            same_page(combo, "deep", &sql_deep, &http_deep.ids)?;
            (Some(Page { bounds, url }), Some(half + 1))
        } else {
            (None, None)
        };
        eprintln!(
            "prepared {:<45} {rows:>8} sessions ({:.1} s)",
            combo.label,
            began.elapsed().as_secs_f64()
        );
        targets.push(Target {
            combo,
            rows,
            first: Page {
                bounds: first_bounds,
                url: first_url,
            },
            deep,
            deep_row,
        });
    }
    Ok(targets)
}

fn same_page(
    combo: &Combo,
    which: &str,
    sql: &[crate::combos::Row],
    http: &[String],
) -> Result<()> {
    let expected: Vec<&str> = sql
        .iter()
        .take(PAGE as usize)
        .map(|r| r.id.as_str())
        .collect();
    let got: Vec<&str> = http.iter().map(String::as_str).collect();
    if expected != got {
        return Err(format!(
            "{}: the {which} page through HTTP ({} items) is not the statement's ({} rows)",
            combo.label,
            got.len(),
            expected.len()
        )
        .into());
    }
    Ok(())
}

fn nanos(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// `batch` HTTP calls then `batch` statements (or the other way round on
/// odd rounds) for each page of each combination, `rounds` times, after
/// one unrecorded round.
///
/// `references` are other GETs measured in the same rounds (what a
/// dashboard request costs before its query).
pub(crate) fn measure(
    targets: &[Target<'_>],
    references: &[(String, String)],
    conn: &mut PgConnection,
    client: &Client,
    rounds: usize,
    batch: usize,
) -> Result<(Vec<Figures>, Vec<Vec<u64>>)> {
    let mut figures: Vec<Figures> = targets
        .iter()
        .map(|_| Figures {
            first: Samples::default(),
            deep: Samples::default(),
        })
        .collect();
    let mut referenced: Vec<Vec<u64>> = references.iter().map(|_| Vec::new()).collect();
    let began = Instant::now();
    for round in 0..=rounds {
        let record = round > 0;
        let http_first = round % 2 == 0;
        for ((_, url), samples) in references.iter().zip(referenced.iter_mut()) {
            for _ in 0..batch {
                let t = Instant::now();
                black_box(client.get(url)?);
                if record {
                    samples.push(nanos(t));
                }
            }
        }
        for (target, fig) in targets.iter().zip(figures.iter_mut()) {
            let pages = [
                (Some(&target.first), &mut fig.first),
                (target.deep.as_ref(), &mut fig.deep),
            ];
            for (page, samples) in pages {
                let Some(page) = page else { continue };
                for side_is_http in [http_first, !http_first] {
                    for _ in 0..batch {
                        let t = Instant::now();
                        if side_is_http {
                            black_box(client.get(&page.url)?);
                            if record {
                                samples.http.push(nanos(t));
                            }
                        } else {
                            black_box(target.combo.page(conn, &page.bounds)?);
                            if record {
                                samples.sql.push(nanos(t));
                            }
                        }
                    }
                }
            }
        }
        eprint!(
            "\rmeasured round {round}/{rounds} ({:.0} s)   ",
            began.elapsed().as_secs_f64()
        );
    }
    eprintln!();
    for fig in &mut figures {
        for s in [&mut fig.first, &mut fig.deep] {
            s.sql.sort_unstable();
            s.http.sort_unstable();
        }
    }
    for samples in &mut referenced {
        samples.sort_unstable();
    }
    Ok((figures, referenced))
}

/// The `q`th percentile (nearest rank below) of sorted ns, in ms.
pub(crate) fn ms(sorted: &[u64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[((n - 1) as f64 * q / 100.0) as usize] as f64 / 1e6,
    }
}

/// Prints the table (Markdown) and returns the combinations that missed
/// a target.
pub(crate) fn report(targets: &[Target<'_>], figures: &[Figures]) -> Vec<String> {
    println!(
        "| combination | sessions | SQL first p50 / p95 | HTTP first p50 / p95 | HTTP−SQL p95 first | \
         deep row | SQL deep p50 / p95 | HTTP deep p50 / p95 | HTTP−SQL p95 deep | deep/first p95 HTTP (SQL) | targets |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut missed = Vec::new();
    for (t, f) in targets.iter().zip(figures) {
        let pair = |s: &[u64]| {
            if s.is_empty() {
                "–".to_string()
            } else {
                format!("{:.2} / {:.2}", ms(s, 50.0), ms(s, 95.0))
            }
        };
        let over_first = ms(&f.first.http, 95.0) - ms(&f.first.sql, 95.0);
        let (over_deep, ratio, sql_ratio) = if f.deep.http.is_empty() {
            (None, None, None)
        } else {
            (
                Some(ms(&f.deep.http, 95.0) - ms(&f.deep.sql, 95.0)),
                Some(ms(&f.deep.http, 95.0) / ms(&f.first.http, 95.0)),
                Some(ms(&f.deep.sql, 95.0) / ms(&f.first.sql, 95.0)),
            )
        };
        let mut failed = Vec::new();
        if over_first > HTTP_OVER_SQL_MS {
            failed.push(format!("first page HTTP−SQL p95 {over_first:.2} ms"));
        }
        if let Some(over) = over_deep.filter(|o| *o > HTTP_OVER_SQL_MS) {
            failed.push(format!("deep page HTTP−SQL p95 {over:.2} ms"));
        }
        if let Some(r) = ratio.filter(|r| *r > DEEP_OVER_FIRST) {
            failed.push(format!("deep/first p95 {r:.2}"));
        }
        let verdict = if failed.is_empty() {
            "PASS".to_string()
        } else {
            format!("FAIL ({})", failed.join("; "))
        };
        if !failed.is_empty() {
            missed.push(format!("{}: {}", t.combo.label, failed.join("; ")));
        }
        println!(
            "| `{}` | {} | {} | {} | {:.2} | {} | {} | {} | {} | {} | {} |",
            t.combo.label,
            t.rows,
            pair(&f.first.sql),
            pair(&f.first.http),
            over_first,
            t.deep_row.map_or("–".to_string(), |r| r.to_string()),
            pair(&f.deep.sql),
            pair(&f.deep.http),
            over_deep.map_or("–".to_string(), |o| format!("{o:.2}")),
            ratio
                .zip(sql_ratio)
                .map_or("–".to_string(), |(r, s)| format!("{r:.2} ({s:.2})")),
            verdict,
        );
    }
    missed
}
