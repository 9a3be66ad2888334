//! Sites: create, read, list, edit, delete; plan caps; API keys, mapping
//! and identity secrets; request bodies.

use chatdesk_domain::ports::SiteRepository;
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::tenant::Plan;
use serde_json::{json, Value};

use crate::app;
use crate::helpers::{at_micros, Reply, TestApp};

/// The fields of a Site in api.md.
const SITE_FIELDS: [&str; 9] = [
    "id",
    "domain",
    "name",
    "allowSubdomains",
    "mappingStatus",
    "apiKeyPrefix",
    "identityVerification",
    "theme",
    "createdAt",
];

fn create(app: &TestApp, token: &str, body: &Value) -> Reply {
    app.post("/api/v1/sites", Some(token), body)
}

fn site_body(domain: &str) -> Value {
    json!({"domain": domain, "name": "Docs", "allowSubdomains": false})
}

fn keys_of(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    keys
}

/// The site the API key resolves to, as the SDK would find it.
fn site_of_key(app: &TestApp, key: &str) -> Option<String> {
    app.store()
        .find_by_api_key(&SecretHash::of(key))
        .expect("lookup")
        .map(|s| s.id.to_string())
}

fn list_ids(app: &TestApp, token: &str) -> Vec<String> {
    let list = app.get("/api/v1/sites", Some(token));
    assert_eq!(list.status, 200, "{}", list.body);
    list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn creating_a_site_returns_it_and_its_key_once() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let reply = create(
        &app,
        &tenant.token,
        &json!({"domain": "Example.COM", "name": "Docs", "allowSubdomains": true}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.content_type, "application/json");
    assert_eq!(keys_of(&reply.body), ["apiKey", "site"]);
    let site = &reply.body["site"];
    for key in SITE_FIELDS {
        assert!(site.get(key).is_some(), "site.{key} missing: {site}");
    }
    assert!(uuid::Uuid::parse_str(site["id"].as_str().unwrap()).is_ok());
    assert_eq!(site["domain"], "example.com");
    assert_eq!(site["name"], "Docs");
    assert_eq!(site["allowSubdomains"], true);
    assert_eq!(site["mappingStatus"], "PENDING");
    assert_eq!(site["identityVerification"], false);
    assert_eq!(
        keys_of(&site["theme"]),
        ["backgroundColor", "fontFamily", "primaryColor", "textColor"]
    );
    assert!(site["createdAt"].is_string());

    let key = reply.body["apiKey"].as_str().unwrap();
    let prefix = site["apiKeyPrefix"].as_str().unwrap();
    assert!(key.starts_with("cd_live_"), "{key}");
    assert!(
        prefix.starts_with("cd_live_") && prefix.len() > "cd_live_".len(),
        "{prefix}"
    );
    assert!(
        key.starts_with(prefix),
        "{key} does not start with {prefix}"
    );
    assert!(
        key.len() > prefix.len() + 16,
        "the prefix must not be the whole key"
    );
    assert_eq!(site_of_key(&app, key).as_deref(), site["id"].as_str());

    // Never shown again: neither by GET nor in the list.
    let id = site["id"].as_str().unwrap();
    let got = app.get(&format!("/api/v1/sites/{id}"), Some(&tenant.token));
    assert_eq!(got.status, 200, "{}", got.body);
    assert!(got.body.get("apiKey").is_none());
    assert!(!got.body.to_string().contains(key));
    for field in SITE_FIELDS {
        assert_eq!(
            at_micros(&got.body)[field],
            at_micros(site)[field],
            "{field}"
        );
    }
    let list = app.get("/api/v1/sites", Some(&tenant.token));
    assert_eq!(list.status, 200);
    assert_eq!(keys_of(&list.body), ["items", "nextCursor"]);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["items"][0]["id"], site["id"]);
    assert_eq!(list.body["items"][0]["apiKeyPrefix"], prefix);
    assert!(!list.body.to_string().contains(key));
}

#[test]
fn a_custom_theme_is_kept_and_allow_subdomains_defaults_to_false() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let theme = json!({
        "primaryColor": "#112233",
        "backgroundColor": "#FAFAFA",
        "textColor": "#000000",
        "fontFamily": "Inter, sans-serif"
    });
    let reply = create(
        &app,
        &tenant.token,
        &json!({"domain": "docs.example.com", "name": "Docs", "theme": theme}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["site"]["theme"], theme);
    assert_eq!(reply.body["site"]["allowSubdomains"], false);
}

#[test]
fn domains_are_lower_cased_and_must_be_host_names() {
    let app = app!();
    let tenant = app.tenant(Plan::Enterprise);
    let label = "a".repeat(63);
    let at_limit = format!("{label}.{label}.{label}.{}", "b".repeat(61));
    assert_eq!(at_limit.len(), 253);
    for (raw, stored) in [
        ("Example.COM", "example.com"),
        ("  Shop.Example.org ", "shop.example.org"),
        (at_limit.as_str(), at_limit.as_str()),
    ] {
        let reply = create(&app, &tenant.token, &site_body(raw));
        assert_eq!(reply.status, 201, "{raw}: {}", reply.body);
        assert_eq!(reply.body["site"]["domain"], stored);
    }
    let too_long = format!("{at_limit}c");
    assert_eq!(too_long.len(), 254);
    for bad in [
        "https://x.com",
        "http://example.net",
        "exa mple.com",
        "example.com/path",
        "example.com:8080",
        "10.0.0.1",
        "-bad.com",
        "",
        too_long.as_str(),
    ] {
        create(&app, &tenant.token, &site_body(bad)).assert_invalid(&["domain"]);
    }
    assert_eq!(list_ids(&app, &tenant.token).len(), 3);
}

#[test]
fn names_have_1_to_20_characters() {
    let app = app!();
    let tenant = app.tenant(Plan::Enterprise);
    let twenty = "n".repeat(20);
    let reply = create(
        &app,
        &tenant.token,
        &json!({"domain": "a.example.com", "name": twenty, "allowSubdomains": false}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["site"]["name"], twenty);
    // Characters, not bytes.
    let accents = "é".repeat(20);
    let reply = create(
        &app,
        &tenant.token,
        &json!({"domain": "b.example.com", "name": accents, "allowSubdomains": false}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);

    for bad in ["n".repeat(21), String::new(), "   ".into()] {
        create(
            &app,
            &tenant.token,
            &json!({"domain": "c.example.com", "name": bad, "allowSubdomains": false}),
        )
        .assert_invalid(&["name"]);
    }
    // Every invalid field is named at once.
    create(
        &app,
        &tenant.token,
        &json!({"domain": "https://x.com", "name": "n".repeat(21), "allowSubdomains": false}),
    )
    .assert_invalid(&["domain", "name"]);
}

#[test]
fn themes_are_validated() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let good = json!({
        "primaryColor": "#4f46e5",
        "backgroundColor": "#ffffff",
        "textColor": "#111827",
        "fontFamily": "Inter"
    });
    for (field, value) in [
        ("primaryColor", "red"),
        ("primaryColor", "#fff"),
        ("backgroundColor", "#12345g"),
        ("textColor", "4f46e5"),
        ("fontFamily", ""),
        ("fontFamily", "x; color: red"),
    ] {
        let mut theme = good.clone();
        theme[field] = json!(value);
        create(
            &app,
            &tenant.token,
            &json!({"domain": "example.com", "name": "Docs", "theme": theme}),
        )
        .assert_invalid(&[&format!("theme.{field}")]);
    }
    // A theme missing a colour, or with an unknown key.
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("textColor");
    create(
        &app,
        &tenant.token,
        &json!({"domain": "example.com", "name": "Docs", "theme": missing}),
    )
    .assert_invalid(&["theme.textColor"]);
    let mut extra = good.clone();
    extra["borderColor"] = json!("#000000");
    create(
        &app,
        &tenant.token,
        &json!({"domain": "example.com", "name": "Docs", "theme": extra}),
    )
    .assert_invalid(&["theme.borderColor"]);
    assert!(list_ids(&app, &tenant.token).is_empty());

    // PATCH validates the theme the same way.
    let id = app.site_id(&tenant.token, "example.com");
    let mut bad = good.clone();
    bad["primaryColor"] = json!("blue");
    app.patch(
        &format!("/api/v1/sites/{id}"),
        Some(&tenant.token),
        &json!({"theme": bad}),
    )
    .assert_invalid(&["theme.primaryColor"]);
}

#[test]
fn free_allows_one_site_and_starter_three() {
    let app = app!();
    let free = app.tenant(Plan::Free);
    app.site(&free.token, "one.example.com");
    let over = create(&app, &free.token, &site_body("two.example.com"));
    over.assert_problem(409, "PLAN_LIMIT");
    assert!(
        over.body["detail"].as_str().unwrap().contains("FREE"),
        "{}",
        over.body
    );
    assert_eq!(list_ids(&app, &free.token).len(), 1);

    let starter = app.tenant(Plan::Starter);
    for n in 1..=3 {
        app.site(&starter.token, &format!("s{n}.example.com"));
    }
    create(&app, &starter.token, &site_body("s4.example.com")).assert_problem(409, "PLAN_LIMIT");
    assert_eq!(list_ids(&app, &starter.token).len(), 3);
}

#[test]
fn a_bigger_plan_lifts_the_cap() {
    let app = app!();
    let tenant = app.tenant(Plan::Free);
    app.site(&tenant.token, "one.example.com");
    create(&app, &tenant.token, &site_body("two.example.com")).assert_problem(409, "PLAN_LIMIT");

    app.set_plan(&tenant, Plan::Enterprise);
    assert_eq!(
        app.get("/api/v1/me", Some(&tenant.token)).body["tenant"]["plan"],
        "ENTERPRISE"
    );
    for n in 2..=12 {
        app.site(&tenant.token, &format!("s{n}.example.com"));
    }
    let list = app.get("/api/v1/sites?limit=100", Some(&tenant.token));
    assert_eq!(list.body["items"].as_array().unwrap().len(), 12);

    // Back down to FREE: no new site, the existing ones stay.
    app.set_plan(&tenant, Plan::Free);
    create(&app, &tenant.token, &site_body("more.example.com")).assert_problem(409, "PLAN_LIMIT");
    let list = app.get("/api/v1/sites?limit=100", Some(&tenant.token));
    assert_eq!(list.body["items"].as_array().unwrap().len(), 12);
}

#[test]
fn deleting_a_site_frees_its_place_under_the_cap() {
    let app = app!();
    let tenant = app.tenant(Plan::Free);
    let id = app.site_id(&tenant.token, "one.example.com");
    assert_eq!(
        app.delete(&format!("/api/v1/sites/{id}"), Some(&tenant.token))
            .status,
        204
    );
    app.site(&tenant.token, "two.example.com");
}

#[test]
fn a_domain_is_used_once_per_tenant() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    app.site(&tenant.token, "example.com");
    for again in ["example.com", "EXAMPLE.com", " example.com "] {
        create(&app, &tenant.token, &site_body(again)).assert_problem(409, "SITE_EXISTS");
    }
    assert_eq!(list_ids(&app, &tenant.token).len(), 1);

    // Another tenant may use the same domain.
    let other = app.tenant(Plan::Pro);
    let reply = create(&app, &other.token, &site_body("example.com"));
    assert_eq!(reply.status, 201, "{}", reply.body);

    // Renaming a site onto a taken domain is refused too.
    let second = app.site_id(&tenant.token, "second.example.com");
    app.patch(
        &format!("/api/v1/sites/{second}"),
        Some(&tenant.token),
        &json!({"domain": "Example.com"}),
    )
    .assert_problem(409, "SITE_EXISTS");
    let got = app.get(&format!("/api/v1/sites/{second}"), Some(&tenant.token));
    assert_eq!(got.body["domain"], "second.example.com");
}

#[test]
fn members_read_sites_but_cannot_change_them() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let created = app.site(&tenant.token, "example.com");
    let id = created["site"]["id"].as_str().unwrap();
    let member = app.member(&tenant.token, "MEMBER");
    let m = Some(member.as_str());

    create(&app, &member, &site_body("other.example.com")).assert_problem(403, "ROLE_TOO_WEAK");
    app.patch(&format!("/api/v1/sites/{id}"), m, &json!({"name": "Mine"}))
        .assert_problem(403, "ROLE_TOO_WEAK");
    app.delete(&format!("/api/v1/sites/{id}"), m)
        .assert_problem(403, "ROLE_TOO_WEAK");
    app.post_empty(&format!("/api/v1/sites/{id}/api-key"), m)
        .assert_problem(403, "ROLE_TOO_WEAK");
    app.post_empty(&format!("/api/v1/sites/{id}/identity-secret"), m)
        .assert_problem(403, "ROLE_TOO_WEAK");
    app.put(
        &format!("/api/v1/sites/{id}/mapping"),
        m,
        &json!({"status": "COMPLETED"}),
    )
    .assert_problem(403, "ROLE_TOO_WEAK");

    let got = app.get(&format!("/api/v1/sites/{id}"), m);
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.body["name"], "Docs");
    assert_eq!(got.body["mappingStatus"], "PENDING");
    assert_eq!(got.body["apiKeyPrefix"], created["site"]["apiKeyPrefix"]);
    assert_eq!(got.body["identityVerification"], false);
    assert_eq!(list_ids(&app, &member), [id.to_string()]);
    let key = created["apiKey"].as_str().unwrap();
    assert_eq!(site_of_key(&app, key).as_deref(), Some(id));
}

#[test]
fn managers_create_edit_and_delete_sites() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let manager = app.member(&tenant.token, "MANAGER");
    let id = app.site_id(&manager, "example.com");
    let patched = app.patch(
        &format!("/api/v1/sites/{id}"),
        Some(&manager),
        &json!({"name": "Help"}),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["name"], "Help");
    assert_eq!(
        app.delete(&format!("/api/v1/sites/{id}"), Some(&manager))
            .status,
        204
    );
}

#[test]
fn patch_changes_only_the_fields_sent() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let created = app.site(&tenant.token, "example.com");
    let id = created["site"]["id"].as_str().unwrap();
    let path = format!("/api/v1/sites/{id}");
    let t = Some(tenant.token.as_str());

    let reply = app.patch(&path, t, &json!({"name": "Help Center"}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["name"], "Help Center");
    assert_eq!(reply.body["domain"], "example.com");
    assert_eq!(reply.body["allowSubdomains"], false);

    let reply = app.patch(&path, t, &json!({"domain": "Help.Example.COM"}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["domain"], "help.example.com");
    assert_eq!(reply.body["name"], "Help Center");

    let reply = app.patch(&path, t, &json!({"allowSubdomains": true}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["allowSubdomains"], true);

    let theme = json!({
        "primaryColor": "#ff0000",
        "backgroundColor": "#000000",
        "textColor": "#ffffff",
        "fontFamily": "Georgia, serif"
    });
    let reply = app.patch(&path, t, &json!({"theme": theme}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["theme"], theme);

    // An empty patch changes nothing.
    let reply = app.patch(&path, t, &json!({}));
    assert_eq!(reply.status, 200, "{}", reply.body);

    // What GET shows is what was patched; key, mapping and id are untouched.
    let got = app.get(&path, t);
    assert_eq!(got.status, 200);
    assert_eq!(got.body["id"], created["site"]["id"]);
    assert_eq!(got.body["name"], "Help Center");
    assert_eq!(got.body["domain"], "help.example.com");
    assert_eq!(got.body["allowSubdomains"], true);
    assert_eq!(got.body["theme"], theme);
    assert_eq!(got.body["mappingStatus"], "PENDING");
    assert_eq!(got.body["apiKeyPrefix"], created["site"]["apiKeyPrefix"]);
    assert_eq!(
        at_micros(&got.body)["createdAt"],
        at_micros(&created["site"])["createdAt"]
    );

    // Invalid values are refused, naming the field, and change nothing.
    app.patch(&path, t, &json!({"name": "n".repeat(21)}))
        .assert_invalid(&["name"]);
    app.patch(&path, t, &json!({"name": ""}))
        .assert_invalid(&["name"]);
    app.patch(&path, t, &json!({"domain": "https://x.com"}))
        .assert_invalid(&["domain"]);
    app.patch(&path, t, &json!({"allowSubdomains": "yes"}))
        .assert_invalid(&["allowSubdomains"]);
    app.patch(&path, t, &json!({"mappingStatus": "COMPLETED"}))
        .assert_invalid(&["mappingStatus"]);
    let again = app.get(&path, t);
    assert_eq!(again.body["name"], "Help Center");
    assert_eq!(again.body["domain"], "help.example.com");
    assert_eq!(again.body["mappingStatus"], "PENDING");
}

#[test]
fn a_deleted_site_is_gone() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let created = app.site(&tenant.token, "example.com");
    let keep = app.site_id(&tenant.token, "keep.example.com");
    let id = created["site"]["id"].as_str().unwrap();
    let t = Some(tenant.token.as_str());
    app.widget(&tenant.token, id);
    app.content(
        &tenant.token,
        id,
        &json!({"kind": "FLOW", "name": "Invite"}),
    );

    let reply = app.delete(&format!("/api/v1/sites/{id}"), t);
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(reply.body, Value::Null);

    app.get(&format!("/api/v1/sites/{id}"), t)
        .assert_problem(404, "NOT_FOUND");
    app.get(&format!("/api/v1/sites/{id}/widget"), t)
        .assert_problem(404, "NOT_FOUND");
    app.get(&format!("/api/v1/sites/{id}/content"), t)
        .assert_problem(404, "NOT_FOUND");
    app.delete(&format!("/api/v1/sites/{id}"), t)
        .assert_problem(404, "NOT_FOUND");
    assert_eq!(list_ids(&app, &tenant.token), [keep]);
    assert_eq!(site_of_key(&app, created["apiKey"].as_str().unwrap()), None);
    // The domain is free again.
    app.site(&tenant.token, "example.com");
}

#[test]
fn unknown_and_malformed_site_ids_are_404() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let t = Some(tenant.token.as_str());
    for id in [
        uuid::Uuid::now_v7().to_string(),
        "not-a-uuid".into(),
        "42".into(),
    ] {
        app.get(&format!("/api/v1/sites/{id}"), t)
            .assert_problem(404, "NOT_FOUND");
        app.patch(&format!("/api/v1/sites/{id}"), t, &json!({"name": "x"}))
            .assert_problem(404, "NOT_FOUND");
        app.delete(&format!("/api/v1/sites/{id}"), t)
            .assert_problem(404, "NOT_FOUND");
        app.post_empty(&format!("/api/v1/sites/{id}/api-key"), t)
            .assert_problem(404, "NOT_FOUND");
    }
}

#[test]
fn sites_list_pages_with_limit() {
    let app = app!();
    let tenant = app.tenant(Plan::Enterprise);
    let mut made = Vec::new();
    for n in 1..=5 {
        made.push(app.site_id(&tenant.token, &format!("s{n}.example.com")));
    }
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut path = "/api/v1/sites?limit=2".to_string();
    loop {
        let page = app.get(&path, Some(&tenant.token));
        assert_eq!(page.status, 200, "{}", page.body);
        let items = page.body["items"].as_array().unwrap();
        sizes.push(items.len());
        seen.extend(items.iter().map(|s| s["id"].as_str().unwrap().to_string()));
        match page.body["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/sites?limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(sizes.len() < 10, "paging does not end");
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(seen, made);
    app.get("/api/v1/sites?limit=0", Some(&tenant.token))
        .assert_invalid(&["limit"]);
    app.get("/api/v1/sites?limit=101", Some(&tenant.token))
        .assert_invalid(&["limit"]);
    app.get("/api/v1/sites?limit=abc", Some(&tenant.token))
        .assert_problem(400, "MALFORMED_QUERY");
}

#[test]
fn regenerating_the_key_stops_the_old_one_at_once() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let created = app.site(&tenant.token, "example.com");
    let id = created["site"]["id"].as_str().unwrap();
    let old_key = created["apiKey"].as_str().unwrap();
    assert_eq!(site_of_key(&app, old_key).as_deref(), Some(id));

    let manager = app.member(&tenant.token, "MANAGER");
    let reply = app.post_empty(&format!("/api/v1/sites/{id}/api-key"), Some(&manager));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(keys_of(&reply.body), ["apiKey", "apiKeyPrefix"]);
    let new_key = reply.body["apiKey"].as_str().unwrap();
    let new_prefix = reply.body["apiKeyPrefix"].as_str().unwrap();
    assert!(new_key.starts_with("cd_live_"), "{new_key}");
    assert!(new_key.starts_with(new_prefix));
    assert_ne!(new_key, old_key);

    let got = app.get(&format!("/api/v1/sites/{id}"), Some(&tenant.token));
    assert_eq!(got.body["apiKeyPrefix"], new_prefix);
    assert!(!got.body.to_string().contains(new_key));

    assert_eq!(
        site_of_key(&app, old_key),
        None,
        "the old key still resolves"
    );
    assert_eq!(site_of_key(&app, new_key).as_deref(), Some(id));

    // Again, by the owner: only the newest works.
    let third = app.post_empty(&format!("/api/v1/sites/{id}/api-key"), Some(&tenant.token));
    assert_eq!(third.status, 200, "{}", third.body);
    let third_key = third.body["apiKey"].as_str().unwrap();
    assert_eq!(site_of_key(&app, new_key), None);
    assert_eq!(site_of_key(&app, third_key).as_deref(), Some(id));
}

#[test]
fn members_cannot_regenerate_the_key() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let created = app.site(&tenant.token, "example.com");
    let id = created["site"]["id"].as_str().unwrap();
    let member = app.member(&tenant.token, "MEMBER");
    app.post_empty(&format!("/api/v1/sites/{id}/api-key"), Some(&member))
        .assert_problem(403, "ROLE_TOO_WEAK");
    let key = created["apiKey"].as_str().unwrap();
    assert_eq!(site_of_key(&app, key).as_deref(), Some(id));
    let got = app.get(&format!("/api/v1/sites/{id}"), Some(&member));
    assert_eq!(got.body["apiKeyPrefix"], created["site"]["apiKeyPrefix"]);
}

#[test]
fn mapping_is_set_by_admins_and_owners() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let id = app.site_id(&tenant.token, "example.com");
    let path = format!("/api/v1/sites/{id}/mapping");
    let manager = app.member(&tenant.token, "MANAGER");
    let admin = app.member(&tenant.token, "ADMIN");

    app.put(&path, Some(&manager), &json!({"status": "COMPLETED"}))
        .assert_problem(403, "ROLE_TOO_WEAK");
    let got = app.get(&format!("/api/v1/sites/{id}"), Some(&tenant.token));
    assert_eq!(got.body["mappingStatus"], "PENDING");

    for status in ["IN_PROGRESS", "FAILED", "COMPLETED", "PENDING", "COMPLETED"] {
        let reply = app.put(&path, Some(&admin), &json!({"status": status}));
        assert_eq!(reply.status, 200, "{status}: {}", reply.body);
        assert_eq!(reply.body["mappingStatus"], status);
        assert_eq!(reply.body["id"], id.as_str());
        let got = app.get(&format!("/api/v1/sites/{id}"), Some(&manager));
        assert_eq!(got.body["mappingStatus"], status);
    }
    // The owner may too.
    let reply = app.put(&path, Some(&tenant.token), &json!({"status": "FAILED"}));
    assert_eq!(reply.status, 200, "{}", reply.body);

    for bad in ["DONE", "completed", ""] {
        app.put(&path, Some(&admin), &json!({"status": bad}))
            .assert_invalid(&["status"]);
    }
    app.put(&path, Some(&admin), &json!({}))
        .assert_invalid(&["status"]);
    app.put(&path, Some(&admin), &json!({"status": 3}))
        .assert_invalid(&["status"]);
    let got = app.get(&format!("/api/v1/sites/{id}"), Some(&tenant.token));
    assert_eq!(got.body["mappingStatus"], "FAILED");
}

#[test]
fn identity_secret_turns_verification_on() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let id = app.site_id(&tenant.token, "example.com");
    let path = format!("/api/v1/sites/{id}/identity-secret");
    let member = app.member(&tenant.token, "MEMBER");
    let manager = app.member(&tenant.token, "MANAGER");

    app.post_empty(&path, Some(&member))
        .assert_problem(403, "ROLE_TOO_WEAK");
    let got = app.get(&format!("/api/v1/sites/{id}"), Some(&tenant.token));
    assert_eq!(got.body["identityVerification"], false);

    let reply = app.post_empty(&path, Some(&manager));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(keys_of(&reply.body), ["identitySecret"]);
    let secret = reply.body["identitySecret"].as_str().unwrap();
    assert!(secret.starts_with("cd_ids_"), "{secret}");
    assert!(secret.len() > "cd_ids_".len() + 16);

    let got = app.get(&format!("/api/v1/sites/{id}"), Some(&member));
    assert_eq!(got.body["identityVerification"], true);
    assert!(!got.body.to_string().contains(secret));

    // Issuing again replaces the secret; verification stays on.
    let again = app.post_empty(&path, Some(&tenant.token));
    assert_eq!(again.status, 200, "{}", again.body);
    assert_ne!(again.body["identitySecret"], reply.body["identitySecret"]);
    let got = app.get(&format!("/api/v1/sites/{id}"), Some(&tenant.token));
    assert_eq!(got.body["identityVerification"], true);
}

#[test]
fn a_body_over_the_limit_is_413() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let big = json!({
        "domain": "example.com",
        "name": "Docs",
        "allowSubdomains": false,
        "theme": {"primaryColor": "#000000", "backgroundColor": "#ffffff", "textColor": "#000000",
                  "fontFamily": "x".repeat(300 * 1024)}
    })
    .to_string();
    assert!(big.len() > 300 * 1024);
    app.send(
        "POST",
        "/api/v1/sites",
        Some(&tenant.token),
        Some(&big),
        &[],
    )
    .assert_problem(413, "PAYLOAD_TOO_LARGE");
    assert!(list_ids(&app, &tenant.token).is_empty());
    // The server still answers afterwards.
    app.site(&tenant.token, "example.com");
}

#[test]
fn bodies_of_the_wrong_shape_name_the_field() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let t = Some(tenant.token.as_str());
    app.post(
        "/api/v1/sites",
        t,
        &json!({"domain": "example.com", "name": "Docs", "allowSubdomains": "yes"}),
    )
    .assert_invalid(&["allowSubdomains"]);
    app.post("/api/v1/sites", t, &json!({"name": "Docs"}))
        .assert_invalid(&["domain"]);
    app.post("/api/v1/sites", t, &json!({"domain": "example.com"}))
        .assert_invalid(&["name"]);
    app.post("/api/v1/sites", t, &json!({"domain": 7, "name": "Docs"}))
        .assert_invalid(&["domain"]);
    app.post(
        "/api/v1/sites",
        t,
        &json!({"domain": "example.com", "name": "Docs", "theme": "dark"}),
    )
    .assert_invalid(&["theme"]);
    app.post(
        "/api/v1/sites",
        t,
        &json!({"domain": "example.com", "name": "Docs", "apiKey": "cd_live_mine"}),
    )
    .assert_invalid(&["apiKey"]);
    app.send("POST", "/api/v1/sites", t, Some("{\"domain\":"), &[])
        .assert_problem(400, "MALFORMED_JSON");
    app.send("POST", "/api/v1/sites", t, Some(""), &[])
        .assert_problem(400, "MALFORMED_JSON");
    app.send(
        "POST",
        "/api/v1/sites",
        t,
        None,
        &[("Content-Type", "text/plain")],
    )
    .assert_problem(415, "UNSUPPORTED_MEDIA_TYPE");
    assert!(list_ids(&app, &tenant.token).is_empty());
}

#[test]
fn timestamps_read_back_exactly_as_returned() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let created = app.site(&tenant.token, "example.com");
    let id = created["site"]["id"].as_str().unwrap();
    let got = app.get(&format!("/api/v1/sites/{id}"), Some(&tenant.token));
    assert_eq!(
        got.body, created["site"],
        "GET shows another site than the 201 did"
    );
    let patched = app.patch(
        &format!("/api/v1/sites/{id}"),
        Some(&tenant.token),
        &json!({"name": "Help"}),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    let got = app.get(&format!("/api/v1/sites/{id}"), Some(&tenant.token));
    assert_eq!(
        got.body, patched.body,
        "GET shows another site than the PATCH did"
    );
}

#[test]
fn patching_a_site_to_its_own_domain_is_not_a_conflict() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let id = app.site_id(&tenant.token, "example.com");
    let reply = app.patch(
        &format!("/api/v1/sites/{id}"),
        Some(&tenant.token),
        &json!({"domain": "EXAMPLE.com", "name": "Docs"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["domain"], "example.com");
}

#[test]
fn concurrent_creates_stop_at_the_cap() {
    let app = app!();
    let tenant = app.tenant(Plan::Starter);
    let statuses = app.in_parallel(8, |n| {
        create(
            &app,
            &tenant.token,
            &site_body(&format!("c{n}.example.com")),
        )
    });
    let created = statuses.iter().filter(|(s, _)| *s == 201).count();
    let refused = statuses
        .iter()
        .filter(|(s, c)| *s == 409 && c == "PLAN_LIMIT")
        .count();
    assert_eq!((created, refused), (3, 5), "{statuses:?}");
    assert_eq!(list_ids(&app, &tenant.token).len(), 3);
}

#[test]
fn concurrent_creates_of_one_domain_make_one_site() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let statuses = app.in_parallel(6, |_| {
        create(&app, &tenant.token, &site_body("same.example.com"))
    });
    let created = statuses.iter().filter(|(s, _)| *s == 201).count();
    let refused = statuses
        .iter()
        .filter(|(s, c)| *s == 409 && c == "SITE_EXISTS")
        .count();
    assert_eq!((created, refused), (1, 5), "{statuses:?}");
    assert_eq!(list_ids(&app, &tenant.token).len(), 1);
}
