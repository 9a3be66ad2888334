//! The embeddable chat widget, `crates/api/assets/widget.js`, served as a
//! static script that a site's pages load with a plain `<script src>`.
//!
//! - `GET /widget.js` is the URL of the embed snippet: cached for
//!   [`SHORT_MAX_AGE`] seconds, then revalidated with its `ETag` (a 304 when
//!   unchanged), so a new chatdesk version reaches every page within minutes.
//! - `GET /widget/{version}.js`, where `version` is the script's hash (the
//!   `ETag` of `/widget.js`, and its `Content-Location`), is the same script
//!   cached for a year as `immutable`. Another `version` (a page pinned to
//!   an older release) gets the current script with the short cache, so a
//!   pinned page keeps its chat and no old URL is cached forever with new
//!   content.
//!
//! The script is compiled into the binary; its hash and gzip encoding are
//! made once, at start-up ([`prepare`]), never per request. No
//! authentication and no CORS headers: a `<script src>` needs neither.

use std::io::Write;
use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

/// The script as written, served byte for byte.
pub const SOURCE: &[u8] = include_bytes!("../../assets/widget.js");

/// Seconds `/widget.js` may be reused before revalidation.
pub const SHORT_MAX_AGE: u32 = 300;

/// Seconds the versioned URL may be reused (a year).
pub const LONG_MAX_AGE: u32 = 31_536_000;

/// Hex digits of the SHA-256 of the script naming its version.
const VERSION_LEN: usize = 20;

/// The script with its version and its gzip encoding.
pub struct WidgetScript {
    /// The first hex digits of the SHA-256 of [`SOURCE`].
    pub version: String,
    /// [`SOURCE`] gzipped at the best compression, or `None` if it could
    /// not be compressed (then every client gets the identity encoding).
    pub gzip: Option<Vec<u8>>,
}

impl WidgetScript {
    fn new() -> Self {
        let digest = Sha256::digest(SOURCE);
        let version: String = digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .chars()
            .take(VERSION_LEN)
            .collect();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let gzip = encoder
            .write_all(SOURCE)
            .and_then(|()| encoder.finish())
            .map_err(|error| tracing::warn!(%error, "the widget script could not be gzipped"))
            .ok();
        WidgetScript { version, gzip }
    }

    /// The versioned, long-cached path of the script.
    pub fn versioned_path(&self) -> String {
        format!("/widget/{}.js", self.version)
    }
}

/// The script, hashed and compressed once.
pub static SCRIPT: LazyLock<WidgetScript> = LazyLock::new(WidgetScript::new);

/// Hashes and compresses the script now (the server calls it at start-up),
/// so no request pays for it.
pub fn prepare() {
    LazyLock::force(&SCRIPT);
}

/// Whether `Accept-Encoding` admits gzip: `gzip`, `x-gzip` or `*` with a
/// quality above zero, and no `gzip;q=0` refusing it.
fn accepts_gzip(req: &HttpRequest) -> bool {
    let mut named = None;
    let mut any = None;
    for value in req.headers().get_all(header::ACCEPT_ENCODING) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| {
                    let (name, value) = p.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("q")
                        .then(|| value.trim().parse::<f32>().ok())
                        .flatten()
                })
                .next()
                .unwrap_or(1.0);
            let acceptable = quality > 0.0;
            match coding.as_str() {
                "gzip" | "x-gzip" => named = Some(named.unwrap_or(false) || acceptable),
                "*" => any = Some(acceptable),
                _ => {}
            }
        }
    }
    named.or(any).unwrap_or(false)
}

/// Whether `If-None-Match` names this version (weak comparison, any of its
/// encodings' tags), or is `*`.
fn not_modified(req: &HttpRequest, version: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| {
            if tag == "*" {
                return true;
            }
            let opaque = tag.strip_prefix("W/").unwrap_or(tag);
            opaque
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .is_some_and(|t| t == version || t == format!("{version}-gzip"))
        })
}

/// The answer for the script with this cache policy.
fn serve(req: &HttpRequest, cache_control: String) -> HttpResponse {
    let script = &*SCRIPT;
    let gzip = script.gzip.as_deref().filter(|_| accepts_gzip(req));
    // Each encoding is its own representation, so its own strong tag.
    let etag = match gzip {
        Some(_) => format!("\"{}-gzip\"", script.version),
        None => format!("\"{}\"", script.version),
    };
    let fresh = not_modified(req, &script.version);
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::VARY, HeaderValue::from_static("Accept-Encoding")))
        .insert_header((header::CONTENT_LOCATION, script.versioned_path()))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Pages that isolate themselves (COEP require-corp) may load it.
        .insert_header(("cross-origin-resource-policy", "cross-origin"));
    if fresh {
        return response.finish();
    }
    response.content_type("text/javascript; charset=utf-8");
    match gzip {
        Some(bytes) => response
            .insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(bytes.to_vec()),
        None => response.body(SOURCE),
    }
}

/// The chat widget's script, as the embed snippet loads it.
#[utoipa::path(get, path = "/widget.js", operation_id = "getWidgetScript", tag = "widget", security(),
    params(("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy the client holds")),
    responses(
        (status = 200, description = "The script (gzipped when `Accept-Encoding` admits gzip). Cached for 5 minutes, then revalidated; `Content-Location` names its versioned URL", content_type = "text/javascript; charset=utf-8", body = String,
            headers(("ETag" = String, description = "The script's version (with `-gzip` for the gzipped encoding)"),
                ("Cache-Control" = String, description = "`public, max-age=300`"),
                ("Content-Location" = String, description = "`/widget/{version}.js`, the same script cached for a year"))),
        (status = 304, description = "The copy named in `If-None-Match` is current"),
    ))]
pub async fn latest(req: HttpRequest) -> HttpResponse {
    serve(&req, format!("public, max-age={SHORT_MAX_AGE}"))
}

/// The chat widget's script at a version, for pages that pin it.
#[utoipa::path(get, path = "/widget/{version}.js", operation_id = "getVersionedWidgetScript", tag = "widget", security(),
    params(("version" = String, Path, description = "The script's version: the `ETag` of `/widget.js` without quotes and `-gzip`"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy the client holds")),
    responses(
        (status = 200, description = "The script: the current version cached for a year as immutable; for another version, the current script cached like `/widget.js`", content_type = "text/javascript; charset=utf-8", body = String,
            headers(("ETag" = String, description = "The script's version (with `-gzip` for the gzipped encoding)"),
                ("Cache-Control" = String, description = "`public, max-age=31536000, immutable` for the current version"))),
        (status = 304, description = "The copy named in `If-None-Match` is current"),
    ))]
pub async fn versioned(req: HttpRequest, version: web::Path<String>) -> HttpResponse {
    let cache_control = if version.as_str() == SCRIPT.version {
        format!("public, max-age={LONG_MAX_AGE}, immutable")
    } else {
        format!("public, max-age={SHORT_MAX_AGE}")
    };
    serve(&req, cache_control)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn gzip_for(value: &str) -> bool {
        accepts_gzip(
            &TestRequest::default()
                .insert_header((header::ACCEPT_ENCODING, value))
                .to_http_request(),
        )
    }

    #[test]
    fn accept_encoding_values() {
        assert!(gzip_for("gzip"));
        assert!(gzip_for("gzip, deflate, br"));
        assert!(gzip_for("br;q=1.0, GZIP;q=0.5"));
        assert!(gzip_for("x-gzip"));
        assert!(gzip_for("*"));
        assert!(!gzip_for("gzip;q=0"));
        assert!(!gzip_for("gzip; q=0.0, *"));
        assert!(!gzip_for("br, deflate"));
        assert!(!gzip_for("identity"));
        assert!(!gzip_for("*;q=0"));
        assert!(!accepts_gzip(&TestRequest::default().to_http_request()));
    }

    #[test]
    fn the_version_is_the_sources_hash_and_the_gzip_inflates_to_it() {
        let script = WidgetScript::new();
        assert_eq!(script.version.len(), VERSION_LEN);
        assert!(script.version.chars().all(|c| c.is_ascii_hexdigit()));
        let gzip = script.gzip.expect("gzipped");
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gzip[..]), &mut inflated)
            .expect("inflates");
        assert_eq!(inflated, SOURCE);
    }
}
