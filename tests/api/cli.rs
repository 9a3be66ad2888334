//! The `chatdesk` command line against the same database the server uses.

use std::process::Command;

use serde_json::Value;

use crate::app;

fn chatdesk(database_url: &str, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chatdesk"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("RUST_LOG")
        .output()
        .expect("chatdesk runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `chatdesk tenant create --name Acme` with this plan and owner email.
fn create_tenant(database_url: &str, plan: &str, owner_email: &str) -> (i32, Value, String) {
    chatdesk(
        database_url,
        &[
            "tenant",
            "create",
            "--name",
            "Acme",
            "--plan",
            plan,
            "--owner-email",
            owner_email,
        ],
    )
}

#[test]
fn tenant_create_prints_a_token_that_signs_in() {
    let app = app!();
    let url = app.config.database_url.clone();
    let (code, out, err) = create_tenant(&url, "PRO", "Owner@Acme.test");
    assert_eq!(code, 0, "{err}");
    let obj = out.as_object().expect("one JSON object on stdout");
    assert_eq!(obj.len(), 3, "{out}");
    let token = out["token"].as_str().unwrap();
    let me = app.get("/api/v1/me", Some(token));
    assert_eq!(me.status, 200);
    assert_eq!(me.body["tenant"]["id"], out["tenantId"]);
    assert_eq!(me.body["member"]["id"], out["ownerMemberId"]);
    assert_eq!(me.body["member"]["email"], "owner@acme.test");
    assert_eq!(me.body["tenant"]["name"], "Acme");
}

#[test]
fn set_plan_and_add_credits_show_in_me() {
    let app = app!();
    let url = app.config.database_url.clone();
    let tenant = app.tenant(chatdesk_domain::tenant::Plan::Free);

    let (code, out, err) = chatdesk(&url, &["tenant", "set-plan", &tenant.id, "ENTERPRISE"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["plan"], "ENTERPRISE");
    let (code, out, err) = chatdesk(&url, &["tenant", "add-credits", &tenant.id, "250"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["credits"], 250);
    let (code, out, _) = chatdesk(&url, &["tenant", "add-credits", &tenant.id, "-50"]);
    assert_eq!(code, 0);
    assert_eq!(out["credits"], 200);

    let me = app.get("/api/v1/me", Some(&tenant.token));
    assert_eq!(me.body["tenant"]["plan"], "ENTERPRISE");
    assert_eq!(me.body["tenant"]["credits"], 200);

    // Never below zero.
    let (code, _, err) = chatdesk(&url, &["tenant", "add-credits", &tenant.id, "-201"]);
    assert_ne!(code, 0);
    assert!(err.contains("negative"), "{err}");
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let app = app!();
    let url = app.config.database_url.clone();
    let (code, _, err) = create_tenant(&url, "GOLD", "a@b.co");
    assert_ne!(code, 0);
    assert!(err.contains("FREE, STARTER, PRO, ENTERPRISE"), "{err}");

    let (code, _, err) = create_tenant(&url, "PRO", "nope");
    assert_eq!(code, 1);
    assert!(err.contains("ownerEmail"), "{err}");

    let unknown = uuid::Uuid::now_v7().to_string();
    let (code, _, err) = chatdesk(&url, &["tenant", "set-plan", &unknown, "PRO"]);
    assert_eq!(code, 1);
    assert!(err.contains("tenant not found"), "{err}");

    let (code, _, err) = chatdesk(&url, &["tenant", "set-plan", "not-a-uuid", "PRO"]);
    assert_ne!(code, 0);
    assert!(err.contains("UUID"), "{err}");
}

#[test]
fn migrate_is_idempotent_and_reports_a_bad_database() {
    let app = app!();
    let url = app.config.database_url.clone();
    let (code, _, err) = chatdesk(&url, &["migrate"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = chatdesk(&url, &["migrate"]);
    assert_eq!(code, 0, "{err}");

    let (code, _, err) = chatdesk("mysql://localhost/x", &["migrate"]);
    assert_eq!(code, 1);
    assert!(err.contains("mysql"), "{err}");
    let (code, _, err) = chatdesk("postgres://nobody:s3cret@127.0.0.1:1/none", &["migrate"]);
    assert_eq!(code, 1);
    assert!(!err.contains("s3cret"), "the password leaked: {err}");
}
