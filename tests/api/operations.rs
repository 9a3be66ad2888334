//! Probes, errors for unknown routes, request ids, the OpenAPI document.

use crate::app;

#[test]
fn healthz_and_readyz_answer() {
    let app = app!();
    let health = app.get("/healthz", None);
    assert_eq!(health.status, 200);
    assert_eq!(health.body["status"], "ok");
    let ready = app.get("/readyz", None);
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["status"], "ready");
}

#[test]
fn every_response_carries_a_request_id() {
    let app = app!();
    let first = app.get("/healthz", None);
    let second = app.get("/healthz", None);
    let a = first.header("x-request-id").expect("request id");
    let b = second.header("x-request-id").expect("request id");
    assert_ne!(a, b);
    assert!(app.get("/nope", None).header("x-request-id").is_some());
}

#[test]
fn unknown_routes_and_methods_are_problems() {
    let app = app!();
    app.get("/api/v1/nothing-here", None)
        .assert_problem(404, "NOT_FOUND");
    let tenant = app.tenant(chatdesk_domain::tenant::Plan::Pro);
    let reply = app.send("PUT", "/api/v1/me", Some(&tenant.token), Some("{}"), &[]);
    reply.assert_problem(405, "METHOD_NOT_ALLOWED");
    assert_eq!(reply.header("allow"), Some("GET"));
    let reply = app.send("TRACE", "/api/v1/sites/x", Some(&tenant.token), None, &[]);
    reply.assert_problem(405, "METHOD_NOT_ALLOWED");
    assert_eq!(reply.header("allow"), Some("GET, PATCH, DELETE"));
}

#[test]
fn openapi_document_lists_every_route() {
    let app = app!();
    let doc = app.get("/api/v1/openapi.json", None);
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let paths = doc.body["paths"].as_object().expect("paths");
    for path in [
        "/healthz",
        "/readyz",
        "/api/v1/me",
        "/api/v1/members",
        "/api/v1/members/{memberId}",
        "/api/v1/sites",
        "/api/v1/sites/{siteId}",
        "/api/v1/sites/{siteId}/api-key",
        "/api/v1/sites/{siteId}/mapping",
        "/api/v1/sites/{siteId}/identity-secret",
        "/api/v1/sites/{siteId}/widget",
        "/api/v1/sites/{siteId}/widget/publish",
        "/api/v1/sites/{siteId}/widget/pause",
        "/api/v1/sites/{siteId}/content",
        "/api/v1/sites/{siteId}/content/{contentId}",
        "/api/v1/openapi.json",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the document");
    }
    let schemas = doc.body["components"]["schemas"]
        .as_object()
        .expect("schemas");
    assert_eq!(
        schemas["WidgetPositionSchema"]["enum"],
        serde_json::json!(["BOTTOM_RIGHT", "BOTTOM_LEFT", "TOP_RIGHT", "TOP_LEFT"])
    );
    assert!(schemas.contains_key("Problem"));
    assert_eq!(
        doc.body["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[test]
fn bodies_must_be_json_objects() {
    let app = app!();
    let tenant = app.tenant(chatdesk_domain::tenant::Plan::Pro);
    let site = app.site(&tenant.token, "objects.example.com")["site"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // serde alone would read `[null, null]` as a patch of two absent fields.
    for body in ["[null, null]", "[\"PUBLISHED\"]", "\"x\"", "42"] {
        app.send(
            "PATCH",
            &format!("/api/v1/sites/{site}"),
            Some(&tenant.token),
            Some(body),
            &[],
        )
        .assert_invalid(&["body"]);
    }
}
