//! The export: `GET …/conversations/{id}/export` of a 100-message and of
//! a 10,000-message session, with the server's resident memory before and
//! after and its peak while exporting (`VmHWM`, reset before each batch).
//! A streamed export holds a chunk of messages at a time, so its peak does
//! not grow with the message count; a buffered one holds the whole body.

use std::io::Read;
use std::time::Instant;

use crate::combos::Client;
use crate::server::Server;
use crate::Result;

/// One session to export.
pub(crate) struct Subject<'a> {
    pub(crate) id: &'a str,
    pub(crate) messages: usize,
}

/// A batch of exports of one session.
pub(crate) struct Batch {
    pub(crate) messages: usize,
    pub(crate) bytes: usize,
    pub(crate) first_byte_ms: f64,
    pub(crate) total_ms: f64,
    pub(crate) rss_before: u64,
    pub(crate) rss_after: u64,
    pub(crate) peak: u64,
}

fn url(base: &str, site: &str, id: &str) -> String {
    format!("{base}/api/v1/sites/{site}/conversations/{id}/export")
}

/// Checks an export: a download of the whole conversation.
fn check(client: &Client, base: &str, site: &str, s: &Subject<'_>) -> Result<usize> {
    let reply = client.call(&url(base, site, s.id))?;
    let disposition = reply
        .header("Content-Disposition")
        .unwrap_or_default()
        .to_string();
    let expected = format!("attachment; filename=\"conversation-{}.json\"", s.id);
    if disposition != expected {
        return Err(format!("export of {}: Content-Disposition {disposition:?}", s.id).into());
    }
    let chunked = reply
        .header("Transfer-Encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
    let body = reply.into_string_limited()?;
    let doc: serde_json::Value = serde_json::from_str(&body)?;
    let got = doc["messages"].as_array().map_or(0, Vec::len);
    if got != s.messages {
        return Err(format!(
            "export of {}: {got} messages, expected {}",
            s.id, s.messages
        )
        .into());
    }
    println!(
        "export of a {}-message session: {} bytes, {} messages, {}",
        s.messages,
        body.len(),
        got,
        if chunked {
            "chunked (streamed)"
        } else {
            "NOT chunked"
        }
    );
    Ok(body.len())
}

trait Limited {
    fn into_string_limited(self) -> Result<String>;
}

impl Limited for ureq::Response {
    /// The whole body (ureq's `into_string` stops at 10 MB).
    fn into_string_limited(self) -> Result<String> {
        let mut body = String::new();
        self.into_reader().take(1 << 30).read_to_string(&mut body)?;
        Ok(body)
    }
}

/// `times` exports of `s`, one after the other, with the peak reset first.
fn batch(
    client: &Client,
    server: &Server,
    base: &str,
    site: &str,
    s: &Subject<'_>,
    times: usize,
) -> Result<Batch> {
    let url = url(base, site, s.id);
    let rss_before = server.memory()?.rss;
    server.reset_peak()?;
    let (mut first_byte, mut total, mut bytes) = (Vec::new(), Vec::new(), 0);
    for _ in 0..times {
        let t = Instant::now();
        let reply = client.call(&url)?;
        first_byte.push(t.elapsed().as_secs_f64() * 1e3);
        let mut reader = reply.into_reader();
        let mut buf = vec![0u8; 1 << 16];
        bytes = 0;
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            bytes += n;
        }
        total.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let after = server.memory()?;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    Ok(Batch {
        messages: s.messages,
        bytes,
        first_byte_ms: median(&mut first_byte),
        total_ms: median(&mut total),
        rss_before,
        rss_after: after.rss,
        peak: after.peak,
    })
}

/// Runs the export measurement over `subjects` (smallest first); returns
/// whether memory stayed constant.
pub(crate) fn export(
    client: &Client,
    server: &Server,
    site: &str,
    subjects: &[Subject<'_>],
    times: usize,
) -> Result<bool> {
    let base = server.base().to_string();
    let mut bodies = Vec::with_capacity(subjects.len());
    for s in subjects {
        bodies.push(check(client, &base, site, s)?);
    }
    println!(
        "server pid {}: {times} exports per batch, one batch per session in turn, three turns; \
         the peak (VmHWM) is reset before each batch",
        server.pid(),
    );
    println!(
        "| session | bytes | first byte ms (median) | whole body ms (median) | RSS before KiB | \
         RSS after KiB | peak KiB | peak − RSS before KiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut growth: Vec<Vec<u64>> = subjects.iter().map(|_| Vec::new()).collect();
    for _ in 0..3 {
        for (s, grew) in subjects.iter().zip(growth.iter_mut()) {
            let b = batch(client, server, &base, site, s, times)?;
            let g = b.peak.saturating_sub(b.rss_before);
            grew.push(g);
            println!(
                "| {} messages | {} | {:.1} | {:.1} | {} | {} | {} | {} |",
                b.messages,
                b.bytes,
                b.first_byte_ms,
                b.total_ms,
                b.rss_before,
                b.rss_after,
                b.peak,
                g
            );
        }
    }
    let most = |v: &[u64]| v.iter().copied().max().unwrap_or(0);
    let (Some(largest), Some(body)) = (subjects.last(), bodies.last()) else {
        return Ok(true);
    };
    let largest_grew = growth.last().map_or(0, |g| most(g));
    let body_kib = (*body / 1024) as u64;
    // A buffered export holds at least its whole body at once.
    let constant = largest_grew < body_kib / 2;
    let grown: Vec<String> = subjects
        .iter()
        .zip(&growth)
        .map(|(s, g)| format!("{} KiB for {} messages", most(g), s.messages))
        .collect();
    println!(
        "peak growth (highest of the three batches): {}; {}: the {}-message export's peak grew by \
         {largest_grew} KiB, under half its body ({body_kib} KiB), which a buffered export would \
         hold whole",
        grown.join(", "),
        if constant { "PASS" } else { "FAIL" },
        largest.messages,
    );
    Ok(constant)
}
