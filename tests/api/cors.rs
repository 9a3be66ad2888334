//! CORS for the dashboard SPA: answered for the configured origins only.

use chatdesk_domain::tenant::Plan;

use crate::app;
use crate::helpers::TestApp;

const DASHBOARD: &str = "https://dash.example.com";
const EVIL: &str = "https://evil.example.com";

fn dashboard_app() -> Option<TestApp> {
    TestApp::try_spawn_with(|c| c.dashboard_origins = vec![DASHBOARD.into()])
}

fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> crate::helpers::Reply {
    app.send(
        "OPTIONS",
        path,
        None,
        None,
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", method),
            (
                "Access-Control-Request-Headers",
                "authorization, content-type, if-match, idempotency-key",
            ),
        ],
    )
}

#[test]
fn a_preflight_from_the_dashboard_is_answered() {
    let Some(app) = dashboard_app() else { return };
    for (path, method) in [
        ("/api/v1/sites", "POST"),
        (
            "/api/v1/sites/0190b5d2-0000-7000-8000-000000000000",
            "PATCH",
        ),
        (
            "/api/v1/members/0190b5d2-0000-7000-8000-000000000000",
            "DELETE",
        ),
    ] {
        let reply = preflight(&app, path, DASHBOARD, method);
        assert!(
            (200..300).contains(&reply.status),
            "{path}: {} {}",
            reply.status,
            reply.body
        );
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some(DASHBOARD),
            "{path}"
        );
        let methods = reply.header("access-control-allow-methods").unwrap_or("");
        assert!(
            methods.contains(method),
            "{path}: allow-methods {methods:?}"
        );
        let headers = reply
            .header("access-control-allow-headers")
            .unwrap_or("")
            .to_ascii_lowercase();
        assert!(
            headers.contains("authorization")
                && headers.contains("content-type")
                && headers.contains("if-match"),
            "{path}: allow-headers {headers:?}"
        );
    }
}

#[test]
fn a_preflight_from_another_origin_is_not_allowed() {
    let Some(app) = dashboard_app() else { return };
    for origin in [
        EVIL,
        "https://dash.example.com.evil.io",
        "http://dash.example.com",
        "null",
    ] {
        let reply = preflight(&app, "/api/v1/sites", origin, "POST");
        assert!(
            reply.status < 500,
            "{origin}: {} {}",
            reply.status,
            reply.body
        );
        assert_eq!(
            reply.header("access-control-allow-origin"),
            None,
            "{origin}"
        );
    }
}

#[test]
fn a_refused_preflight_is_a_problem_document() {
    let Some(app) = dashboard_app() else { return };
    let reply = preflight(&app, "/api/v1/sites", EVIL, "POST");
    assert_eq!(reply.header("access-control-allow-origin"), None);
    // Every error is application/problem+json (api.md, Errors).
    reply.assert_problem(403, "ORIGIN_NOT_ALLOWED");
}

#[test]
fn simple_requests_from_the_dashboard_carry_the_header() {
    let Some(app) = dashboard_app() else { return };
    let tenant = app.tenant(Plan::Pro);
    let site = app.site_id(&tenant.token, "cors.example.com");
    let reply = app.send(
        "GET",
        &format!("/api/v1/sites/{site}"),
        Some(&tenant.token),
        None,
        &[("Origin", DASHBOARD)],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("access-control-allow-origin"), Some(DASHBOARD));
    // The SPA must be able to read the ETag to send it back as If-Match,
    // and Retry-After on a 429 or 503.
    assert!(reply.header("etag").is_some());
    let exposed = reply
        .header("access-control-expose-headers")
        .unwrap_or("")
        .to_ascii_lowercase();
    for name in [
        "x-request-id",
        "etag",
        "retry-after",
        "idempotency-replayed",
    ] {
        assert!(exposed.contains(name), "expose-headers {exposed:?}");
    }

    // Errors too, so the SPA can read the problem.
    let reply = app.send("GET", "/api/v1/me", None, None, &[("Origin", DASHBOARD)]);
    reply.assert_problem(401, "MISSING_CREDENTIALS");
    assert_eq!(reply.header("access-control-allow-origin"), Some(DASHBOARD));
}

#[test]
fn simple_requests_from_another_origin_do_not_carry_the_header() {
    let Some(app) = dashboard_app() else { return };
    let tenant = app.tenant(Plan::Pro);
    let reply = app.send(
        "GET",
        "/api/v1/me",
        Some(&tenant.token),
        None,
        &[("Origin", EVIL)],
    );
    assert!(reply.status < 500, "{} {}", reply.status, reply.body);
    assert_eq!(reply.header("access-control-allow-origin"), None);
}

#[test]
fn without_configured_origins_no_origin_is_allowed() {
    let app = app!();
    let reply = preflight(&app, "/api/v1/sites", DASHBOARD, "POST");
    assert!(reply.status < 500, "{} {}", reply.status, reply.body);
    assert_eq!(reply.header("access-control-allow-origin"), None);
}
