//! The interactive API reference: Swagger UI served by chatdesk itself,
//! rendering its own OpenAPI document, with every asset local so the page
//! works with no network access.

use std::io::Read;

use crate::app;

/// GETs a path of the server under test: status, content type and raw bytes
/// (the helpers' `send` reads bodies as text; the favicons are PNG).
fn fetch(base: &str, path: &str) -> (u16, String, Vec<u8>) {
    let response = match ureq::get(&format!("{base}{path}")).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {path}: {e}"),
    };
    let status = response.status();
    let content_type = response.content_type().to_string();
    let mut bytes = Vec::new();
    response
        .into_reader()
        .read_to_end(&mut bytes)
        .expect("body");
    (status, content_type, bytes)
}

/// The values of every `src="…"` and `href="…"` attribute of a page.
fn asset_urls(html: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(start) = rest.find(attribute) {
            rest = &rest[start + attribute.len()..];
            let end = rest.find('"').expect("closing quote");
            urls.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    urls
}

/// True if a URL as written in a page or stylesheet points at another host.
fn is_remote(url: &str) -> bool {
    url.contains("://") || url.starts_with("//")
}

/// What a stylesheet's `url(…)` and `@import` load, as written; a `data:`
/// URL only up to its first quote (its SVG's namespace URIs are not loads).
fn css_urls(css: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for marker in ["url(", "@import"] {
        let mut rest = css;
        while let Some(start) = rest.find(marker) {
            rest = rest[start + marker.len()..].trim_start();
            let url = rest.trim_start_matches(['"', '\'']);
            let end = url.find(['"', '\'', ')', ';']).unwrap_or(url.len());
            urls.push(url[..end].trim().to_string());
        }
    }
    urls
}

#[test]
fn api_reference_page_and_every_asset_are_served_by_chatdesk() {
    let app = app!();
    let (status, content_type, page) = fetch(&app.base, "/api/docs/");
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = String::from_utf8(page).expect("UTF-8 page");
    assert!(html.contains("swagger-ui"), "{html}");

    let assets = asset_urls(&html);
    assert!(assets.iter().any(|a| a.ends_with(".js")), "{assets:?}");
    assert!(assets.iter().any(|a| a.ends_with(".css")), "{assets:?}");
    for asset in &assets {
        assert!(
            !is_remote(asset),
            "the page loads {asset} from another host"
        );
        let path = format!("/api/docs/{}", asset.trim_start_matches("./"));
        let (status, content_type, body) = fetch(&app.base, &path);
        assert_eq!(status, 200, "{path}");
        assert!(!body.is_empty(), "{path} is empty");
        if asset.ends_with(".css") {
            assert!(
                content_type.starts_with("text/css"),
                "{path}: {content_type}"
            );
            let css = String::from_utf8(body).expect("UTF-8 stylesheet");
            for url in css_urls(&css) {
                assert!(!is_remote(&url), "{path} loads {url}");
            }
        } else if asset.ends_with(".js") {
            assert!(
                content_type.contains("javascript"),
                "{path}: {content_type}"
            );
        }
    }

    // The initializer points Swagger UI at chatdesk's own document, and at
    // no online validator (Swagger UI's default sends the document away).
    let (status, _, initializer) = fetch(&app.base, "/api/docs/swagger-initializer.js");
    assert_eq!(status, 200);
    let initializer = String::from_utf8(initializer).expect("UTF-8 script");
    assert!(
        initializer.contains("\"/api/v1/openapi.json\""),
        "{initializer}"
    );
    assert!(
        initializer.contains("\"validatorUrl\": \"none\""),
        "{initializer}"
    );
    assert!(
        !initializer.contains("http://") && !initializer.contains("https://"),
        "{initializer}"
    );

    // The document the page reads is there, on the same server.
    let doc = app.get("/api/v1/openapi.json", None);
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
}

#[test]
fn api_reference_without_its_trailing_slash_redirects_to_it() {
    let app = app!();
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let response = match agent.get(&format!("{}/api/docs", app.base)).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET /api/docs: {e}"),
    };
    assert!(
        (300..400).contains(&response.status()),
        "{}",
        response.status()
    );
    assert_eq!(response.header("location"), Some("/api/docs/"));
}

#[test]
fn openapi_document_names_every_operation_once_and_declares_its_security() {
    let app = app!();
    let doc = app.get("/api/v1/openapi.json", None);
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["servers"][0]["url"], "/");
    let mut ids = std::collections::BTreeSet::new();
    for (path, item) in doc.body["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let id = op["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_string()), "{id} repeats ({method} {path})");
            let security = op["security"].as_array().expect("security");
            let public = [
                "/healthz",
                "/readyz",
                "/metrics",
                "/api/v1/openapi.json",
                "/api/docs/",
                "/widget.js",
                "/widget/{version}.js",
            ];
            assert_eq!(
                security.is_empty(),
                public.contains(&path.as_str()),
                "{method} {path}"
            );
        }
    }
    let list_sites = &doc.body["paths"]["/api/v1/sites"]["get"];
    assert_eq!(list_sites["operationId"], "listSites");
    assert_eq!(
        list_sites["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/SiteList"
    );
    let unavailable = &list_sites["responses"]["503"];
    assert!(
        unavailable["headers"]["Retry-After"].is_object(),
        "{unavailable}"
    );
}
