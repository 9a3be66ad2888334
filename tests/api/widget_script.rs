//! `GET /widget.js` and `GET /widget/{version}.js`: the embeddable chat
//! widget as a browser loads it with a plain `<script src>` — its bytes,
//! type, validators, encodings and cache policy.

use std::io::Read;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::app;

/// The script as written in the repository.
fn asset() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/api/assets/widget.js");
    std::fs::read(path).expect("the widget's script")
}

/// Its version: the first 20 hex digits of its SHA-256.
fn version() -> String {
    Sha256::digest(asset())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..20]
        .to_string()
}

/// An answer with its raw bytes (the body may be gzipped).
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as the browser reads it: inflated when gzipped.
    fn decoded(&self) -> Vec<u8> {
        match self.header("content-encoding") {
            Some("gzip") => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&self.body[..])
                    .read_to_end(&mut out)
                    .expect("a gzip body");
                out
            }
            None => self.body.clone(),
            Some(other) => panic!("unexpected Content-Encoding {other}"),
        }
    }
}

fn fetch(base: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Raw {
    // No automatic Accept-Encoding or decoding: the test says what it accepts.
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let mut req = agent.request(method, &format!("{base}{path}"));
    for (name, value) in headers {
        req = req.set(name, value);
    }
    let response = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .filter_map(|n| response.header(&n).map(|v| (n.clone(), v.to_string())))
        .collect();
    let mut body = Vec::new();
    response
        .into_reader()
        .read_to_end(&mut body)
        .expect("the body");
    Raw {
        status,
        headers,
        body,
    }
}

#[test]
fn the_script_is_served_as_written_with_its_version_and_a_short_cache() {
    let app = app!();
    let version = version();
    let reply = fetch(&app.base, "GET", "/widget.js", &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.body, asset(), "the served bytes are the asset's");
    assert_eq!(
        reply.header("etag"),
        Some(format!("\"{version}\"").as_str())
    );
    assert_eq!(reply.header("cache-control"), Some("public, max-age=300"));
    assert_eq!(
        reply.header("content-location"),
        Some(format!("/widget/{version}.js").as_str())
    );
    assert_eq!(reply.header("vary"), Some("Accept-Encoding"));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        reply.header("cross-origin-resource-policy"),
        Some("cross-origin")
    );
    // A plain <script src> needs no CORS and no credentials.
    assert_eq!(reply.header("access-control-allow-origin"), None);
    assert_eq!(reply.header("set-cookie"), None);

    // The same from a page on any origin, with no key or token.
    let from_a_page = fetch(
        &app.base,
        "GET",
        "/widget.js",
        &[
            ("Origin", "https://docs.acme.test"),
            ("Referer", "https://docs.acme.test/help"),
        ],
    );
    assert_eq!(from_a_page.status, 200);
    assert_eq!(from_a_page.body, asset());
    assert_eq!(from_a_page.header("access-control-allow-origin"), None);
}

#[test]
fn browsers_that_accept_gzip_get_it_and_it_stays_under_15_kib() {
    let app = app!();
    let version = version();
    for accept in ["gzip, deflate, br, zstd", "br;q=1.0, gzip;q=0.8", "*"] {
        let reply = fetch(
            &app.base,
            "GET",
            "/widget.js",
            &[("Accept-Encoding", accept)],
        );
        assert_eq!(reply.status, 200, "{accept}");
        assert_eq!(reply.header("content-encoding"), Some("gzip"), "{accept}");
        assert_eq!(
            reply.header("content-type"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(
            reply.header("etag"),
            Some(format!("\"{version}-gzip\"").as_str())
        );
        assert_eq!(reply.header("vary"), Some("Accept-Encoding"));
        assert_eq!(reply.decoded(), asset(), "{accept}: inflates to the asset");
        assert!(
            reply.body.len() < 15 * 1024,
            "the gzipped script is {} bytes, over 15 KiB",
            reply.body.len()
        );
        assert!(reply.body.len() < asset().len() / 2, "it is compressed");
    }
    // Refused or not offered: the script as written.
    for accept in ["gzip;q=0, br", "identity", "br"] {
        let reply = fetch(
            &app.base,
            "GET",
            "/widget.js",
            &[("Accept-Encoding", accept)],
        );
        assert_eq!(reply.status, 200, "{accept}");
        assert_eq!(reply.header("content-encoding"), None, "{accept}");
        assert_eq!(reply.body, asset(), "{accept}");
        assert_eq!(
            reply.header("etag"),
            Some(format!("\"{version}\"").as_str())
        );
    }
}

#[test]
fn a_client_holding_the_current_version_gets_a_304_and_an_old_one_the_script() {
    let app = app!();
    let version = version();
    let identity_tag = format!("\"{version}\"");
    let gzip_tag = format!("\"{version}-gzip\"");
    let weak_tag = format!("W/\"{version}\"");
    let list = format!("\"0123456789abcdef0123\", {gzip_tag}");
    for (held, accept) in [
        (identity_tag.as_str(), None),
        (gzip_tag.as_str(), Some("gzip")),
        // Either encoding's tag names the same version.
        (identity_tag.as_str(), Some("gzip")),
        (weak_tag.as_str(), None),
        (list.as_str(), Some("gzip")),
        ("*", None),
    ] {
        let mut headers = vec![("If-None-Match", held)];
        if let Some(accept) = accept {
            headers.push(("Accept-Encoding", accept));
        }
        let reply = fetch(&app.base, "GET", "/widget.js", &headers);
        assert_eq!(reply.status, 304, "If-None-Match: {held}");
        assert!(reply.body.is_empty(), "a 304 has no body");
        let expected = if accept.is_some() {
            &gzip_tag
        } else {
            &identity_tag
        };
        assert_eq!(reply.header("etag"), Some(expected.as_str()));
        assert_eq!(reply.header("cache-control"), Some("public, max-age=300"));
        assert_eq!(reply.header("vary"), Some("Accept-Encoding"));
    }
    for held in ["\"0123456789abcdef0123\"", "\"\"", "not a tag", &version] {
        let reply = fetch(&app.base, "GET", "/widget.js", &[("If-None-Match", held)]);
        assert_eq!(reply.status, 200, "If-None-Match: {held}");
        assert_eq!(reply.body, asset());
    }
}

#[test]
fn the_versioned_url_is_cached_for_a_year_and_other_versions_get_the_current_script_briefly() {
    let app = app!();
    let version = version();
    let reply = fetch(
        &app.base,
        "GET",
        &format!("/widget/{version}.js"),
        &[("Accept-Encoding", "gzip")],
    );
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        reply.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(reply.decoded(), asset());
    let revalidated = fetch(
        &app.base,
        "GET",
        &format!("/widget/{version}.js"),
        &[("If-None-Match", &format!("\"{version}\""))],
    );
    assert_eq!(revalidated.status, 304);

    // A page pinned to an earlier release keeps a working chat, and the
    // old URL is never cached for long with new content.
    let old = fetch(&app.base, "GET", "/widget/00000000000000000000.js", &[]);
    assert_eq!(old.status, 200);
    assert_eq!(old.header("cache-control"), Some("public, max-age=300"));
    assert_eq!(old.body, asset());
    assert_eq!(
        old.header("content-location"),
        Some(format!("/widget/{version}.js").as_str())
    );
}

#[test]
fn head_answers_the_headers_and_other_methods_are_405() {
    let app = app!();
    let head = fetch(&app.base, "HEAD", "/widget.js", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        head.header("etag"),
        Some(format!("\"{}\"", version()).as_str())
    );
    for method in ["POST", "PUT", "DELETE"] {
        let reply = fetch(&app.base, method, "/widget.js", &[]);
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"), "{method}");
    }
}

#[test]
fn the_api_document_lists_the_script_as_public() {
    let app = app!();
    let doc = app.get("/api/v1/openapi.json", None);
    assert_eq!(doc.status, 200);
    for path in ["/widget.js", "/widget/{version}.js"] {
        let get = &doc.body["paths"][path]["get"];
        assert_eq!(get["security"], serde_json::json!([]), "{path}");
        assert!(
            get["responses"]["200"]["content"]["text/javascript; charset=utf-8"].is_object(),
            "{path}: {get}"
        );
        assert!(get["responses"]["304"].is_object(), "{path}");
    }
}
