//! The demo page: "a customer's site" served by `chatdesk serve --demo` on
//! a second port (`http://localhost:8081/` by default), so that the page's
//! origin differs from the API's and the widget works across origins as it
//! does on a real site. The page embeds the widget with the one-line
//! snippet and shows which guide the widget would start.
//!
//! Its own script and style are files (`/demo.js`, `/demo.css`), so the
//! strict Content-Security-Policy sent with the page allows no inline
//! script or style at all: scripts only from the page itself and the API,
//! connections only to the API.

use std::net::TcpListener;

use actix_web::http::header;
use actix_web::{web, App, HttpResponse, HttpServer};

use super::QUESTIONS_TO_TRY;

/// The page's script: the command queue of the widget's contract, and the
/// `ready` and `content` handlers.
pub const SCRIPT: &str = include_str!("page.js");
/// The page's style.
pub const STYLE: &str = include_str!("page.css");

/// The snippet a site owner pastes into their pages.
pub fn snippet(api_base: &str, site_key: &str) -> String {
    format!(
        "<script src=\"{}/widget.js\" data-site-key=\"{}\" async></script>",
        escape(api_base),
        escape(site_key)
    )
}

/// The policy sent with the page: nothing inline, scripts from the page
/// and the API, connections to the API only.
pub fn content_security_policy(api_base: &str) -> String {
    [
        "default-src 'none'".to_string(),
        format!("script-src 'self' {api_base}"),
        format!("connect-src {api_base}"),
        "style-src 'self'".to_string(),
        "img-src 'self'".to_string(),
        "base-uri 'none'".to_string(),
        "form-action 'none'".to_string(),
        "frame-ancestors 'none'".to_string(),
    ]
    .join("; ")
}

/// The page's HTML.
pub fn html(api_base: &str, site_key: &str) -> String {
    let snippet = snippet(api_base, site_key);
    let questions: String = QUESTIONS_TO_TRY
        .iter()
        .map(|q| format!("        <li>{}</li>\n", escape(q)))
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Demo Outfitters — a chatdesk demo</title>
  <link rel="stylesheet" href="/demo.css">
</head>
<body>
  <header>
    <h1>Demo Outfitters</h1>
    <p>Outdoor gear, shipped fast. This page stands for a customer's site: it is
      served on its own origin, and the chat widget in the corner is loaded from
      chatdesk at <code>{api}</code>.</p>
  </header>
  <main>
    <section aria-labelledby="try">
      <h2 id="try">Try the widget</h2>
      <p>Open the chat and ask, for example:</p>
      <ul>
{questions}      </ul>
      <p>A question naming one of the shop's guides is answered with it. Click the
        answer's guide button, vote on answers, and after a thumbs down open a support
        ticket: it shows in the Tickets tab of the dashboard API.</p>
    </section>
    <section aria-labelledby="guide-heading">
      <h2 id="guide-heading">Which guide would start</h2>
      <p>On a real site the widget's <code>content</code> event starts the Flow or
        Tooltip; this page shows which one.</p>
      <p id="guide" role="status">No guide yet: ask the widget, then click an answer's guide button.</p>
      <ol id="guides"></ol>
    </section>
    <section aria-labelledby="status-heading">
      <h2 id="status-heading">The widget</h2>
      <p id="ready" role="status">Waiting for the widget from {api}…</p>
      <p>It is embedded with one line:</p>
      <pre><code>{snippet_text}</code></pre>
    </section>
  </main>
  <script src="/demo.js"></script>
  {snippet}
</body>
</html>
"#,
        api = escape(api_base),
        snippet_text = escape(&snippet),
    )
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What every answer of the page's server carries.
fn secured(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    builder
}

/// Serves the page on `listener` (one worker: it is one visitor's page).
pub fn serve(
    listener: TcpListener,
    api_base: &str,
    site_key: &str,
) -> std::io::Result<actix_web::dev::Server> {
    let page = web::Data::new((html(api_base, site_key), content_security_policy(api_base)));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(page.clone())
            .route(
                "/",
                web::get().to(|page: web::Data<(String, String)>| async move {
                    secured(HttpResponse::Ok())
                        .insert_header((header::CONTENT_SECURITY_POLICY, page.1.clone()))
                        .content_type("text/html; charset=utf-8")
                        .body(page.0.clone())
                }),
            )
            .route(
                "/demo.js",
                web::get().to(|| async {
                    secured(HttpResponse::Ok())
                        .content_type("text/javascript; charset=utf-8")
                        .body(SCRIPT)
                }),
            )
            .route(
                "/demo.css",
                web::get().to(|| async {
                    secured(HttpResponse::Ok())
                        .content_type("text/css; charset=utf-8")
                        .body(STYLE)
                }),
            )
            // Browsers ask for an icon; the page has none.
            .route(
                "/favicon.ico",
                web::get().to(|| async { secured(HttpResponse::NoContent()).finish() }),
            )
            .default_service(web::to(|| async {
                secured(HttpResponse::NotFound())
                    .content_type("text/plain; charset=utf-8")
                    .body("Not found: this demo page has /, /demo.js and /demo.css.\n")
            }))
    })
    .workers(1)
    .listen(listener)?
    .run();
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snippet_is_the_contracts_one_line() {
        assert_eq!(
            snippet("http://127.0.0.1:8080", "cd_live_abc"),
            "<script src=\"http://127.0.0.1:8080/widget.js\" data-site-key=\"cd_live_abc\" \
             async></script>"
        );
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let page = html("http://127.0.0.1:8080", "cd_live_abc");
        for tag in page.match_indices("<script").map(|(i, _)| &page[i..]) {
            let open = &tag[..tag.find('>').unwrap_or(tag.len())];
            assert!(open.contains(" src="), "inline script: {open}");
            assert!(tag[open.len()..].starts_with("></script>"), "{tag}");
        }
        assert!(!page.contains("<style"), "{page}");
        assert!(!page.contains(" style="), "{page}");
        let handler = page.split(" on").skip(1).find(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(
            handler.is_none(),
            "an event handler attribute: on{handler:?}"
        );
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
