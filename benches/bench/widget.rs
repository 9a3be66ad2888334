//! The embeddable widget's script as a browser downloads it: `GET
//! /widget.js` from the release server, with and without gzip, against
//! the 15 KiB (gzipped) budget, and its revalidation (`If-None-Match`).

use std::io::Read;

use chatdesk_store::testing::TestDatabase;

use crate::servers::chatdesk_server;
use crate::{Result, Settings};

/// What the script may weigh gzipped.
const BUDGET: usize = 15 * 1024;

/// Status, body bytes and one header of a `GET /widget.js`.
fn fetch(
    url: &str,
    headers: &[(&str, &str)],
    wanted: &str,
) -> Result<(u16, usize, Option<String>)> {
    let mut request = ureq::get(url);
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let response = request.call()?;
    let status = response.status();
    let header = response.header(wanted).map(str::to_string);
    let mut body = Vec::new();
    response.into_reader().read_to_end(&mut body)?;
    Ok((status, body.len(), header))
}

pub(crate) fn widget(s: &Settings) -> Result<()> {
    let db = TestDatabase::sqlite();
    let server = chatdesk_server(&s.pin, db.url(), 1, "warn", "widget")?;
    let url = format!("{}/widget.js", server.base());
    let (_, plain, etag) = fetch(&url, &[], "etag")?;
    let (_, gzipped, encoding) = fetch(&url, &[("Accept-Encoding", "gzip")], "content-encoding")?;
    let etag = etag.unwrap_or_default();
    let (revalidated, _, _) = fetch(&url, &[("If-None-Match", &etag)], "etag")?;
    println!("Widget script: GET /widget.js from the release server");
    println!(
        "identity {plain} bytes; gzip ({}) {gzipped} bytes = {:.1} KiB of a {:.0} KiB budget ({:.0} %, {}); \
         If-None-Match with its ETag {etag}: {}",
        encoding.as_deref().unwrap_or("not applied"),
        gzipped as f64 / 1024.0,
        BUDGET as f64 / 1024.0,
        100.0 * gzipped as f64 / BUDGET as f64,
        if gzipped <= BUDGET { "within" } else { "OVER" },
        match revalidated {
            304 => "304 Not Modified".to_string(),
            other => format!("{other} (expected 304)"),
        }
    );
    Ok(())
}
