//! Member bearer tokens and `GET /api/v1/me`.

use chatdesk_domain::tenant::Plan;

use crate::app;

#[test]
fn me_returns_the_member_and_tenant() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let me = app.get("/api/v1/me", Some(&tenant.token));
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["member"]["id"], tenant.owner_id);
    assert_eq!(me.body["member"]["role"], "OWNER");
    assert!(me.body["member"]["email"]
        .as_str()
        .unwrap()
        .starts_with("owner-"));
    assert_eq!(me.body["tenant"]["id"], tenant.id);
    assert_eq!(me.body["tenant"]["plan"], "PRO");
    assert_eq!(me.body["tenant"]["credits"], 0);
}

#[test]
fn tokens_are_prefixed_and_stored_hashed() {
    let app = app!();
    let tenant = app.tenant(Plan::Free);
    assert!(tenant.token.starts_with("cd_pat_"));
    assert_eq!(tenant.token.len(), "cd_pat_".len() + 64);
    // The plaintext is nowhere in the database file or tables: only its hash.
    let hash = chatdesk_domain::secret::SecretHash::of(&tenant.token);
    use chatdesk_domain::ports::MemberRepository;
    let found = app
        .store()
        .find_by_token(&hash)
        .unwrap()
        .expect("found by hash");
    assert_eq!(found.member.id.to_string(), tenant.owner_id);
}

#[test]
fn missing_or_bad_credentials_are_401_problems() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let missing = app.get("/api/v1/me", None);
    missing.assert_problem(401, "MISSING_CREDENTIALS");
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));

    app.get("/api/v1/me", Some("cd_pat_not-a-real-token"))
        .assert_problem(401, "INVALID_CREDENTIALS");
    app.get("/api/v1/me", Some("something-else"))
        .assert_problem(401, "INVALID_CREDENTIALS");
    // A token with one character changed.
    let mut tampered = tenant.token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    app.get("/api/v1/me", Some(&tampered))
        .assert_problem(401, "INVALID_CREDENTIALS");
    // Not a bearer scheme.
    app.send(
        "GET",
        "/api/v1/me",
        None,
        None,
        &[("Authorization", &format!("Basic {}", tenant.token))],
    )
    .assert_problem(401, "MISSING_CREDENTIALS");
}
