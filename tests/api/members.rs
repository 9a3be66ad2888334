//! Members and roles: `GET/POST /api/v1/members`, `DELETE /api/v1/members/{id}`.

use std::collections::HashSet;

use chatdesk_domain::tenant::Plan;
use serde_json::{json, Value};

use crate::app;
use crate::helpers::TestApp;

fn ids(reply: &Value) -> Vec<String> {
    reply["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_string())
        .collect()
}

fn add(app: &TestApp, token: &str, email: &str, role: &str) -> crate::helpers::Reply {
    app.post(
        "/api/v1/members",
        Some(token),
        &json!({"email": email, "role": role}),
    )
}

#[test]
fn list_has_items_and_next_cursor_and_pages_with_limit() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let mut added = vec![tenant.owner_id.clone()];
    for role in ["ADMIN", "MANAGER", "MEMBER", "MEMBER"] {
        added.push(app.member_with_id(&tenant.token, role).0);
    }

    let all = app.get("/api/v1/members", Some(&tenant.token));
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.content_type, "application/json");
    let keys: Vec<&String> = all.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["items", "nextCursor"]);
    assert_eq!(all.body["nextCursor"], Value::Null);
    assert_eq!(ids(&all.body), added, "oldest first");
    let owner = &all.body["items"][0];
    let mut fields: Vec<&String> = owner.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["createdAt", "email", "id", "role"]);
    assert_eq!(owner["role"], "OWNER");
    assert!(
        owner["createdAt"].as_str().unwrap().ends_with('Z')
            || owner["createdAt"].as_str().unwrap().ends_with("+00:00")
    );

    // Pages of 2: 2, 2, 1, without duplicates or gaps.
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut path = "/api/v1/members?limit=2".to_string();
    loop {
        let page = app.get(&path, Some(&tenant.token));
        assert_eq!(page.status, 200, "{}", page.body);
        let page_ids = ids(&page.body);
        sizes.push(page_ids.len());
        seen.extend(page_ids);
        match page.body["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/members?limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(sizes.len() < 10, "paging does not end");
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(seen, added);

    // The bounds of `limit` are 1 and 100.
    for ok in ["1", "100"] {
        let page = app.get(&format!("/api/v1/members?limit={ok}"), Some(&tenant.token));
        assert_eq!(page.status, 200, "limit={ok}: {}", page.body);
    }
    assert_eq!(
        ids(&app.get("/api/v1/members?limit=1", Some(&tenant.token)).body).len(),
        1
    );
}

#[test]
fn list_limit_and_cursor_are_checked() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    for bad in ["0", "101", "-1"] {
        app.get(&format!("/api/v1/members?limit={bad}"), Some(&tenant.token))
            .assert_invalid(&["limit"]);
    }
    // A limit that is not a number cannot be read at all.
    app.get("/api/v1/members?limit=abc", Some(&tenant.token))
        .assert_problem(400, "MALFORMED_QUERY");
    app.get("/api/v1/members?limit=2.5", Some(&tenant.token))
        .assert_problem(400, "MALFORMED_QUERY");
    // A cursor this API never gave out.
    app.get("/api/v1/members?cursor=zz", Some(&tenant.token))
        .assert_invalid(&["cursor"]);
    // Unauthenticated.
    app.get("/api/v1/members", None)
        .assert_problem(401, "MISSING_CREDENTIALS");
}

#[test]
fn every_role_can_list_members() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    for role in ["ADMIN", "MANAGER", "MEMBER"] {
        let token = app.member(&tenant.token, role);
        let list = app.get("/api/v1/members", Some(&token));
        assert_eq!(list.status, 200, "{role}: {}", list.body);
    }
}

#[test]
fn adding_a_member_returns_it_with_a_working_token() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let reply = add(
        &app,
        &tenant.token,
        "  Ada.Lovelace@Example.COM ",
        "MANAGER",
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.content_type, "application/json");
    let mut keys: Vec<&String> = reply.body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["member", "token"]);
    let member = &reply.body["member"];
    let mut fields: Vec<&String> = member.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["createdAt", "email", "id", "role"]);
    assert_eq!(member["email"], "ada.lovelace@example.com");
    assert_eq!(member["role"], "MANAGER");
    assert!(uuid::Uuid::parse_str(member["id"].as_str().unwrap()).is_ok());
    let token = reply.body["token"].as_str().unwrap();
    assert!(token.starts_with("cd_pat_"), "{token}");

    let me = app.get("/api/v1/me", Some(token));
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["member"]["id"], member["id"]);
    assert_eq!(me.body["member"]["role"], "MANAGER");
    assert_eq!(me.body["member"]["email"], "ada.lovelace@example.com");
    assert_eq!(me.body["tenant"]["id"], tenant.id);

    // The new member is in the list; the token is nowhere in it.
    let list = app.get("/api/v1/members", Some(&tenant.token));
    assert!(ids(&list.body).contains(&member["id"].as_str().unwrap().to_string()));
    assert!(!list.body.to_string().contains(token));
}

#[test]
fn member_and_manager_cannot_add_members() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    for role in ["MEMBER", "MANAGER"] {
        let token = app.member(&tenant.token, role);
        for granted in ["MEMBER", "MANAGER", "ADMIN", "OWNER"] {
            add(
                &app,
                &token,
                &format!("x-{role}-{granted}@example.com"),
                granted,
            )
            .assert_problem(403, "ROLE_TOO_WEAK");
        }
    }
    // Nobody was added: the owner and the two members made above.
    let list = app.get("/api/v1/members", Some(&tenant.token));
    assert_eq!(ids(&list.body).len(), 3);
}

#[test]
fn admin_adds_members_managers_and_admins_but_not_owners() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let admin = app.member(&tenant.token, "ADMIN");
    for role in ["MEMBER", "MANAGER", "ADMIN"] {
        let reply = add(&app, &admin, &format!("by-admin-{role}@example.com"), role);
        assert_eq!(reply.status, 201, "{role}: {}", reply.body);
        assert_eq!(reply.body["member"]["role"], role);
    }
    add(&app, &admin, "would-be-owner@example.com", "OWNER").assert_problem(403, "ROLE_TOO_WEAK");
    let list = app.get("/api/v1/members", Some(&tenant.token));
    assert!(!list.body.to_string().contains("would-be-owner"));
}

#[test]
fn owner_can_grant_owner() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let reply = add(&app, &tenant.token, "co-owner@example.com", "OWNER");
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["member"]["role"], "OWNER");
    // The new owner can grant OWNER too.
    let token = reply.body["token"].as_str().unwrap();
    let third = add(&app, token, "third-owner@example.com", "OWNER");
    assert_eq!(third.status, 201, "{}", third.body);
}

#[test]
fn an_email_is_a_member_once_per_tenant_whatever_its_case() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let first = add(&app, &tenant.token, "Ada@Example.com", "MEMBER");
    assert_eq!(first.status, 201, "{}", first.body);
    for again in ["ada@example.com", "ADA@EXAMPLE.COM", " ada@example.com "] {
        add(&app, &tenant.token, again, "ADMIN").assert_problem(409, "MEMBER_EXISTS");
    }
    // The owner's own address is taken too.
    let me = app.get("/api/v1/me", Some(&tenant.token));
    let owner_email = me.body["member"]["email"].as_str().unwrap().to_uppercase();
    add(&app, &tenant.token, &owner_email, "MEMBER").assert_problem(409, "MEMBER_EXISTS");
    // The existing member was not changed.
    let list = app.get("/api/v1/members", Some(&tenant.token));
    let ada: Vec<&Value> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["email"] == "ada@example.com")
        .collect();
    assert_eq!(ada.len(), 1);
    assert_eq!(ada[0]["role"], "MEMBER");

    // Another tenant may have a member with the same address.
    let other = app.tenant(Plan::Free);
    let reply = add(&app, &other.token, "ada@example.com", "MEMBER");
    assert_eq!(reply.status, 201, "{}", reply.body);
}

#[test]
fn add_member_bodies_are_validated() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let t = Some(tenant.token.as_str());
    for email in [
        "not-an-email",
        "ada@",
        "@example.com",
        "ada@localhost",
        "",
        "ada lovelace@example.com",
    ] {
        app.post(
            "/api/v1/members",
            t,
            &json!({"email": email, "role": "MEMBER"}),
        )
        .assert_invalid(&["email"]);
    }
    for role in ["SUPERUSER", "admin", "", "Owner"] {
        app.post(
            "/api/v1/members",
            t,
            &json!({"email": "ok@example.com", "role": role}),
        )
        .assert_invalid(&["role"]);
    }
    // Both wrong: both named.
    app.post(
        "/api/v1/members",
        t,
        &json!({"email": "nope", "role": "KING"}),
    )
    .assert_invalid(&["email", "role"]);
    // Missing fields are named.
    app.post("/api/v1/members", t, &json!({"role": "MEMBER"}))
        .assert_invalid(&["email"]);
    app.post("/api/v1/members", t, &json!({"email": "ok@example.com"}))
        .assert_invalid(&["role"]);
    // Wrong types are named.
    app.post(
        "/api/v1/members",
        t,
        &json!({"email": 42, "role": "MEMBER"}),
    )
    .assert_invalid(&["email"]);
    app.post(
        "/api/v1/members",
        t,
        &json!({"email": "ok@example.com", "role": ["ADMIN"]}),
    )
    .assert_invalid(&["role"]);
    // Unknown fields are refused.
    let unknown = app.post(
        "/api/v1/members",
        t,
        &json!({"email": "ok@example.com", "role": "MEMBER", "isAdmin": true}),
    );
    unknown.assert_invalid(&["isAdmin"]);
    // Not JSON at all, or not an object.
    app.send("POST", "/api/v1/members", t, Some("{\"email\": "), &[])
        .assert_problem(400, "MALFORMED_JSON");
    app.send("POST", "/api/v1/members", t, Some("not json"), &[])
        .assert_problem(400, "MALFORMED_JSON");
    app.send("POST", "/api/v1/members", t, Some("[]"), &[])
        .assert_invalid(&["body"]);
    // Nothing was added.
    assert_eq!(ids(&app.get("/api/v1/members", t).body).len(), 1);
}

#[test]
fn adding_members_needs_credentials() {
    let app = app!();
    app.post(
        "/api/v1/members",
        None,
        &json!({"email": "ok@example.com", "role": "MEMBER"}),
    )
    .assert_problem(401, "MISSING_CREDENTIALS");
    app.post(
        "/api/v1/members",
        Some("cd_pat_nope"),
        &json!({"email": "ok@example.com", "role": "MEMBER"}),
    )
    .assert_problem(401, "INVALID_CREDENTIALS");
}

#[test]
fn removing_a_member_revokes_its_token() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let (id, token) = app.member_with_id(&tenant.token, "MANAGER");
    assert_eq!(app.get("/api/v1/me", Some(&token)).status, 200);

    let removed = app.delete(&format!("/api/v1/members/{id}"), Some(&tenant.token));
    assert_eq!(removed.status, 204, "{}", removed.body);
    assert_eq!(removed.body, Value::Null);

    app.get("/api/v1/me", Some(&token))
        .assert_problem(401, "INVALID_CREDENTIALS");
    app.get("/api/v1/members", Some(&token))
        .assert_problem(401, "INVALID_CREDENTIALS");
    let list = app.get("/api/v1/members", Some(&tenant.token));
    assert!(!ids(&list.body).contains(&id));
    // Gone: removing again is a 404.
    app.delete(&format!("/api/v1/members/{id}"), Some(&tenant.token))
        .assert_problem(404, "NOT_FOUND");
}

#[test]
fn only_admins_and_owners_remove_members_and_never_a_stronger_one() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let (member_id, member) = app.member_with_id(&tenant.token, "MEMBER");
    let (manager_id, manager) = app.member_with_id(&tenant.token, "MANAGER");
    let (admin_id, admin) = app.member_with_id(&tenant.token, "ADMIN");
    let (other_admin_id, _) = app.member_with_id(&tenant.token, "ADMIN");

    // MEMBER and MANAGER cannot remove anyone, not even a MEMBER.
    for token in [&member, &manager] {
        for target in [&member_id, &manager_id, &admin_id, &tenant.owner_id] {
            app.delete(&format!("/api/v1/members/{target}"), Some(token))
                .assert_problem(403, "ROLE_TOO_WEAK");
        }
    }
    // An ADMIN cannot remove an OWNER.
    app.delete(
        &format!("/api/v1/members/{}", tenant.owner_id),
        Some(&admin),
    )
    .assert_problem(403, "ROLE_TOO_WEAK");
    assert_eq!(app.get("/api/v1/me", Some(&tenant.token)).status, 200);
    // An ADMIN can remove a MANAGER and another ADMIN.
    for target in [&manager_id, &other_admin_id] {
        let reply = app.delete(&format!("/api/v1/members/{target}"), Some(&admin));
        assert_eq!(reply.status, 204, "{}", reply.body);
    }
    let list = app.get("/api/v1/members", Some(&tenant.token));
    let left: HashSet<String> = ids(&list.body).into_iter().collect();
    let expected: HashSet<String> = [tenant.owner_id.clone(), member_id, admin_id]
        .into_iter()
        .collect();
    assert_eq!(left, expected);
}

#[test]
fn the_last_owner_cannot_be_removed() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    // Alone: the owner cannot remove itself.
    app.delete(
        &format!("/api/v1/members/{}", tenant.owner_id),
        Some(&tenant.token),
    )
    .assert_problem(409, "LAST_OWNER");
    assert_eq!(app.get("/api/v1/me", Some(&tenant.token)).status, 200);

    // With two owners, one can go.
    let (second_id, second) = app.member_with_id(&tenant.token, "OWNER");
    let reply = app.delete(
        &format!("/api/v1/members/{}", tenant.owner_id),
        Some(&second),
    );
    assert_eq!(reply.status, 204, "{}", reply.body);
    app.get("/api/v1/me", Some(&tenant.token))
        .assert_problem(401, "INVALID_CREDENTIALS");

    // Now the second is the last one.
    app.delete(&format!("/api/v1/members/{second_id}"), Some(&second))
        .assert_problem(409, "LAST_OWNER");
    let me = app.get("/api/v1/me", Some(&second));
    assert_eq!(me.status, 200);
    assert_eq!(me.body["member"]["role"], "OWNER");
}

#[test]
fn an_owner_can_remove_itself_when_another_owner_remains() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let (_, second) = app.member_with_id(&tenant.token, "OWNER");
    let reply = app.delete(
        &format!("/api/v1/members/{}", tenant.owner_id),
        Some(&tenant.token),
    );
    assert_eq!(reply.status, 204, "{}", reply.body);
    let list = app.get("/api/v1/members", Some(&second));
    assert_eq!(ids(&list.body).len(), 1);
}

#[test]
fn unknown_foreign_and_malformed_member_ids_are_404() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let other = app.tenant(Plan::Pro);
    let (other_member, other_member_token) = app.member_with_id(&other.token, "MEMBER");
    for id in [
        other.owner_id.clone(),
        other_member.clone(),
        uuid::Uuid::now_v7().to_string(),
        "not-a-uuid".to_string(),
        "123".to_string(),
    ] {
        app.delete(&format!("/api/v1/members/{id}"), Some(&tenant.token))
            .assert_problem(404, "NOT_FOUND");
    }
    // The other tenant's members are untouched.
    assert_eq!(app.get("/api/v1/me", Some(&other.token)).status, 200);
    assert_eq!(app.get("/api/v1/me", Some(&other_member_token)).status, 200);
    assert_eq!(
        ids(&app.get("/api/v1/members", Some(&other.token)).body).len(),
        2
    );
    // And never listed to this tenant.
    let list = app.get("/api/v1/members", Some(&tenant.token));
    assert_eq!(ids(&list.body), [tenant.owner_id.as_str()]);
}

#[test]
fn created_at_reads_back_exactly_as_returned() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let reply = add(&app, &tenant.token, "ada@example.com", "MEMBER");
    assert_eq!(reply.status, 201, "{}", reply.body);
    let list = app.get("/api/v1/members", Some(&tenant.token));
    let listed = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == reply.body["member"]["id"])
        .expect("listed")
        .clone();
    assert_eq!(
        listed, reply.body["member"],
        "the list shows another member than the 201 did"
    );
}

#[test]
fn over_long_emails_are_refused() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let long_local = format!("{}@example.com", "a".repeat(65));
    let long_host = format!("a@{}.com", "b".repeat(250));
    for email in [long_local, long_host] {
        add(&app, &tenant.token, &email, "MEMBER").assert_invalid(&["email"]);
    }
}

#[test]
fn concurrent_adds_of_one_email_make_one_member() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let statuses = app.in_parallel(6, |n| {
        let email = if n % 2 == 0 {
            "Race@Example.com"
        } else {
            "race@example.com"
        };
        add(&app, &tenant.token, email, "MEMBER")
    });
    let created = statuses.iter().filter(|(s, _)| *s == 201).count();
    let refused = statuses
        .iter()
        .filter(|(s, c)| *s == 409 && c == "MEMBER_EXISTS")
        .count();
    assert_eq!((created, refused), (1, 5), "{statuses:?}");
    assert_eq!(
        ids(&app.get("/api/v1/members", Some(&tenant.token)).body).len(),
        2
    );
}

#[test]
fn two_owners_removing_each_other_at_once_leave_one() {
    let app = app!();
    for round in 0..5 {
        let tenant = app.tenant(Plan::Pro);
        let (second_id, second) = app.member_with_id(&tenant.token, "OWNER");
        let first_id = tenant.owner_id.clone();
        let replies: Vec<(u16, String)> = std::thread::scope(|s| {
            let a = s
                .spawn(|| app.delete(&format!("/api/v1/members/{second_id}"), Some(&tenant.token)));
            let b = s.spawn(|| app.delete(&format!("/api/v1/members/{first_id}"), Some(&second)));
            [a.join().unwrap(), b.join().unwrap()]
                .into_iter()
                .map(|r| (r.status, r.body["code"].as_str().unwrap_or("").to_string()))
                .collect()
        });
        let removed = replies.iter().filter(|(s, _)| *s == 204).count();
        assert_eq!(removed, 1, "round {round}: {replies:?}");
        assert!(
            replies.iter().all(|(s, c)| *s == 204
                || (*s == 409 && c == "LAST_OWNER")
                || (*s == 401 && c == "INVALID_CREDENTIALS")),
            "round {round}: {replies:?}"
        );
        let left = [&tenant.token, &second]
            .into_iter()
            .filter(|t| app.get("/api/v1/me", Some(t)).status == 200)
            .count();
        assert_eq!(left, 1, "round {round}: exactly one owner remains");
    }
}
