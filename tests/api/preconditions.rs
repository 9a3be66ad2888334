//! Optimistic concurrency for the dashboard: `GET` of a site, widget or
//! content item returns a strong `ETag`; `PUT`/`PATCH` with `If-Match`
//! apply only to the state that tag names (412 `PRECONDITION_FAILED`
//! otherwise, changing nothing); every write changes the tag; and a write
//! without `If-Match` still changes only the fields it names.

use chatdesk_domain::tenant::Plan;
use serde_json::{json, Value};

use crate::app;
use crate::helpers::{at_once, expect_eq, widget_body, Reply, Rounds, TestApp};

fn site_path(site: &str) -> String {
    format!("/api/v1/sites/{site}")
}

fn widget_path(site: &str) -> String {
    format!("/api/v1/sites/{site}/widget")
}

fn content_path(site: &str, item: &str) -> String {
    format!("/api/v1/sites/{site}/content/{item}")
}

/// The reply's `ETag`, which must be a strong entity tag (`"…"`).
#[track_caller]
fn etag(reply: &Reply) -> String {
    let tag = reply
        .header("etag")
        .unwrap_or_else(|| panic!("no ETag ({}): {}", reply.status, reply.body));
    assert!(
        tag.len() > 2
            && tag.starts_with('"')
            && tag.ends_with('"')
            && !tag[1..tag.len() - 1].contains('"'),
        "not a strong entity tag: {tag}"
    );
    tag.to_string()
}

/// A GET that must succeed; returns the body and its `ETag`.
#[track_caller]
fn read(app: &TestApp, path: &str, token: &str) -> (Value, String) {
    let reply = app.get(path, Some(token));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let tag = etag(&reply);
    (reply.body, tag)
}

fn write(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Reply {
    let headers: Vec<(&str, &str)> = if_match.map(|t| ("If-Match", t)).into_iter().collect();
    app.send(method, path, Some(token), Some(&body.to_string()), &headers)
}

/// A write with `If-Match` that must succeed: returns its body and the new
/// `ETag`, which differs from the one before and is what a GET then shows.
#[track_caller]
fn write_matching(
    app: &TestApp,
    method: &str,
    path: &str,
    get_path: &str,
    token: &str,
    body: &Value,
    if_match: &str,
) -> (Value, String) {
    let (_, old) = read(app, get_path, token);
    let reply = write(app, method, path, token, body, Some(if_match));
    assert_eq!(reply.status, 200, "If-Match {if_match}: {}", reply.body);
    let new = etag(&reply);
    assert_ne!(new, old, "the write kept the ETag");
    let (_, got) = read(app, get_path, token);
    assert_eq!(got, new, "GET shows another ETag than the write returned");
    (reply.body, new)
}

#[test]
fn reads_carry_a_strong_etag_that_holds_while_nothing_changes() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let t = tenant.token.as_str();
    let site = app.site_id(t, "example.com");
    app.widget(t, &site);
    let item = app.content(t, &site, &json!({"kind": "FLOW", "name": "Invite"}))["id"]
        .as_str()
        .unwrap()
        .to_string();
    for path in [
        site_path(&site),
        widget_path(&site),
        content_path(&site, &item),
    ] {
        let (_, first) = read(&app, &path, t);
        let (_, again) = read(&app, &path, t);
        assert_eq!(first, again, "{path}");
        // Another member reads the same tag.
        let member = app.member(t, "MEMBER");
        assert_eq!(read(&app, &path, &member).1, first, "{path}");
    }
}

#[test]
fn patching_a_site_with_if_match() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let t = tenant.token.as_str();
    let site = app.site_id(t, "example.com");
    let path = site_path(&site);
    let (_, v1) = read(&app, &path, t);

    let (body, v2) = write_matching(
        &app,
        "PATCH",
        &path,
        &path,
        t,
        &json!({"name": "First"}),
        &v1,
    );
    assert_eq!(body["name"], "First");

    // The tag read before that write is stale now.
    let stale = write(
        &app,
        "PATCH",
        &path,
        t,
        &json!({"name": "Stale", "allowSubdomains": true}),
        Some(&v1),
    );
    stale.assert_problem(412, "PRECONDITION_FAILED");
    let (got, tag) = read(&app, &path, t);
    assert_eq!(got["name"], "First");
    assert_eq!(got["allowSubdomains"], false);
    assert_eq!(tag, v2, "a refused write changed the ETag");

    // A list of tags matches when one of them is current.
    let listed = format!("{v1}, {v2}");
    let (body, _) = write_matching(
        &app,
        "PATCH",
        &path,
        &path,
        t,
        &json!({"name": "Second"}),
        &listed,
    );
    assert_eq!(body["name"], "Second");

    // `*` matches whatever the site's state.
    let (body, _) = write_matching(
        &app,
        "PATCH",
        &path,
        &path,
        t,
        &json!({"name": "Third"}),
        "*",
    );
    assert_eq!(body["name"], "Third");

    // If-Match compares strongly: the weak form of the current tag is no match.
    let (_, current) = read(&app, &path, t);
    write(
        &app,
        "PATCH",
        &path,
        t,
        &json!({"name": "Weak"}),
        Some(&format!("W/{current}")),
    )
    .assert_problem(412, "PRECONDITION_FAILED");
    assert_eq!(read(&app, &path, t).0["name"], "Third");
}

#[test]
fn setting_the_mapping_with_if_match() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let t = tenant.token.as_str();
    let site = app.site_id(t, "example.com");
    let path = site_path(&site);
    let mapping = format!("{path}/mapping");
    let (_, v1) = read(&app, &path, t);

    let (body, v2) = write_matching(
        &app,
        "PUT",
        &mapping,
        &path,
        t,
        &json!({"status": "IN_PROGRESS"}),
        &v1,
    );
    assert_eq!(body["mappingStatus"], "IN_PROGRESS");

    write(
        &app,
        "PUT",
        &mapping,
        t,
        &json!({"status": "COMPLETED"}),
        Some(&v1),
    )
    .assert_problem(412, "PRECONDITION_FAILED");
    let (got, tag) = read(&app, &path, t);
    assert_eq!(got["mappingStatus"], "IN_PROGRESS");
    assert_eq!(tag, v2);

    let (body, _) = write_matching(
        &app,
        "PUT",
        &mapping,
        &path,
        t,
        &json!({"status": "COMPLETED"}),
        "*",
    );
    assert_eq!(body["mappingStatus"], "COMPLETED");
}

#[test]
fn saving_a_widget_with_if_match() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let t = tenant.token.as_str();
    let site = app.site_id(t, "example.com");
    let path = widget_path(&site);
    app.widget(t, &site);
    let (_, v1) = read(&app, &path, t);

    let mut first = widget_body();
    first["welcomeMessage"] = json!("First");
    let (body, v2) = write_matching(&app, "PUT", &path, &path, t, &first, &v1);
    assert_eq!(body["welcomeMessage"], "First");

    let mut stale = widget_body();
    stale["welcomeMessage"] = json!("Stale");
    stale["position"] = json!("TOP_LEFT");
    write(&app, "PUT", &path, t, &stale, Some(&v1)).assert_problem(412, "PRECONDITION_FAILED");
    let (got, tag) = read(&app, &path, t);
    assert_eq!(got["welcomeMessage"], "First");
    assert_eq!(got["position"], "BOTTOM_RIGHT");
    assert_eq!(tag, v2);

    let mut third = widget_body();
    third["welcomeMessage"] = json!("Third");
    let (body, _) = write_matching(&app, "PUT", &path, &path, t, &third, "*");
    assert_eq!(body["welcomeMessage"], "Third");
}

#[test]
fn if_match_on_a_widget_not_yet_made_matches_nothing() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let t = tenant.token.as_str();
    let site = app.site_id(t, "example.com");
    let path = widget_path(&site);
    // `*` matches only a current representation (RFC 9110, 13.1.1), and a
    // site's tag is not its widget's.
    let (_, site_tag) = read(&app, &site_path(&site), t);
    for tag in ["*", site_tag.as_str()] {
        write(&app, "PUT", &path, t, &widget_body(), Some(tag))
            .assert_problem(412, "PRECONDITION_FAILED");
        app.get(&path, Some(t)).assert_problem(404, "NOT_FOUND");
    }
    // Without If-Match the first save makes it.
    let made = write(&app, "PUT", &path, t, &widget_body(), None);
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(etag(&made), read(&app, &path, t).1);
}

#[test]
fn patching_content_with_if_match() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let t = tenant.token.as_str();
    let site = app.site_id(t, "example.com");
    let item = app.content(t, &site, &json!({"kind": "TOOLTIP", "name": "Hint"}))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = content_path(&site, &item);
    let (_, v1) = read(&app, &path, t);

    let (body, v2) = write_matching(
        &app,
        "PATCH",
        &path,
        &path,
        t,
        &json!({"status": "PUBLISHED"}),
        &v1,
    );
    assert_eq!(body["status"], "PUBLISHED");

    write(
        &app,
        "PATCH",
        &path,
        t,
        &json!({"status": "DRAFT", "audiences": ["Beta"]}),
        Some(&v1),
    )
    .assert_problem(412, "PRECONDITION_FAILED");
    let (got, tag) = read(&app, &path, t);
    assert_eq!(got["status"], "PUBLISHED");
    assert_eq!(got["audiences"], json!([]));
    assert_eq!(tag, v2);

    let (body, _) = write_matching(
        &app,
        "PATCH",
        &path,
        &path,
        t,
        &json!({"audiences": ["Beta"]}),
        "*",
    );
    assert_eq!(body["audiences"], json!(["Beta"]));
    assert_eq!(body["status"], "PUBLISHED");
}

#[test]
fn every_write_changes_the_etag() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let t = tenant.token.as_str();
    let site = app.site_id(t, "example.com");
    let path = site_path(&site);
    let widget = widget_path(&site);
    app.widget(t, &site);

    let mut seen = vec![read(&app, &path, t).1];
    let mut changes = |what: &str, reply: Reply| {
        assert_eq!(reply.status, 200, "{what}: {}", reply.body);
        let (_, tag) = read(&app, &path, t);
        assert!(!seen.contains(&tag), "{what} left the site's ETag at {tag}");
        seen.push(tag);
    };
    changes(
        "PATCH",
        app.patch(&path, Some(t), &json!({"name": "Renamed"})),
    );
    changes(
        "api-key",
        app.post_empty(&format!("{path}/api-key"), Some(t)),
    );
    changes(
        "mapping",
        app.put(
            &format!("{path}/mapping"),
            Some(t),
            &json!({"status": "COMPLETED"}),
        ),
    );
    changes(
        "identity-secret",
        app.post_empty(&format!("{path}/identity-secret"), Some(t)),
    );

    let mut seen = vec![read(&app, &widget, t).1];
    let mut changes = |what: &str, reply: Reply| {
        assert_eq!(reply.status, 200, "{what}: {}", reply.body);
        let (_, tag) = read(&app, &widget, t);
        assert!(
            !seen.contains(&tag),
            "{what} left the widget's ETag at {tag}"
        );
        seen.push(tag);
    };
    let mut settings = widget_body();
    settings["welcomeMessage"] = json!("Changed");
    changes("PUT widget", app.put(&widget, Some(t), &settings));
    changes(
        "publish",
        app.post_empty(&format!("{widget}/publish"), Some(t)),
    );
    changes("pause", app.post_empty(&format!("{widget}/pause"), Some(t)));
    // The widget shows the site's theme, so a new theme is a new widget
    // representation.
    let theme = json!({
        "primaryColor": "#ff0000",
        "backgroundColor": "#000000",
        "textColor": "#ffffff",
        "fontFamily": "Georgia, serif"
    });
    changes(
        "site theme",
        app.patch(&path, Some(t), &json!({"theme": theme})),
    );
    assert_eq!(read(&app, &widget, t).0["theme"], theme);
}

#[test]
fn another_tenants_ids_are_404_whatever_the_if_match() {
    let app = app!();
    let a = app.tenant(Plan::Pro);
    let b = app.tenant(Plan::Pro);
    let site = app.site_id(&a.token, "example.com");
    app.widget(&a.token, &site);
    let item = app.content(&a.token, &site, &json!({"kind": "FLOW", "name": "Invite"}))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let site_tag = read(&app, &site_path(&site), &a.token).1;
    let widget_tag = read(&app, &widget_path(&site), &a.token).1;
    let item_tag = read(&app, &content_path(&site, &item), &a.token).1;

    let attempts = [
        (
            "PATCH",
            site_path(&site),
            json!({"name": "Taken"}),
            &site_tag,
        ),
        (
            "PUT",
            format!("{}/mapping", site_path(&site)),
            json!({"status": "FAILED"}),
            &site_tag,
        ),
        ("PUT", widget_path(&site), widget_body(), &widget_tag),
        (
            "PATCH",
            content_path(&site, &item),
            json!({"status": "PUBLISHED"}),
            &item_tag,
        ),
    ];
    for (method, path, body, tag) in &attempts {
        for if_match in ["*", tag.as_str(), "\"stale\""] {
            write(&app, method, path, &b.token, body, Some(if_match))
                .assert_problem(404, "NOT_FOUND");
        }
    }
    let (got, tag) = read(&app, &site_path(&site), &a.token);
    assert_eq!(
        (got["name"].as_str(), got["mappingStatus"].as_str()),
        (Some("Docs"), Some("PENDING"))
    );
    assert_eq!(tag, site_tag);
    assert_eq!(read(&app, &widget_path(&site), &a.token).1, widget_tag);
    let (got, tag) = read(&app, &content_path(&site, &item), &a.token);
    assert_eq!(got["status"], "DRAFT");
    assert_eq!(tag, item_tag);
}

/// `Err` unless the reply is a 200.
fn ok(what: &str, reply: &Reply) -> Result<(), String> {
    if reply.status == 200 {
        Ok(())
    } else {
        Err(format!("{what} answered {}: {}", reply.status, reply.body))
    }
}

#[test]
fn patches_of_different_site_fields_at_once_both_stick() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let t = tenant.token.as_str();
    let site = app.site_id(t, "example.com");
    let path = site_path(&site);
    let mut rounds = Rounds::new("PATCH name vs PATCH allowSubdomains+theme");
    while let Some(round) = rounds.next_round() {
        let name = json!(format!("Name {round}"));
        let other = json!({
            "allowSubdomains": round % 2 == 0,
            "theme": {
                "primaryColor": format!("#{:06x}", round),
                "backgroundColor": "#ffffff",
                "textColor": "#000000",
                "fontFamily": "system-ui"
            }
        });
        let (named, styled) = at_once(
            || app.patch(&path, Some(t), &json!({ "name": name })),
            || app.patch(&path, Some(t), &other),
        );
        let outcome = (|| {
            ok("PATCH name", &named)?;
            ok("PATCH allowSubdomains and theme", &styled)?;
            let got = app.get(&path, Some(t));
            ok("GET", &got)?;
            expect_eq("name", &got.body["name"], &name)?;
            expect_eq(
                "allowSubdomains",
                &got.body["allowSubdomains"],
                &other["allowSubdomains"],
            )?;
            expect_eq("theme", &got.body["theme"], &other["theme"])
        })();
        rounds.record(outcome);
    }
    rounds.finish();
}

#[test]
fn patches_of_different_content_fields_at_once_both_stick() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let t = tenant.token.as_str();
    let site = app.site_id(t, "example.com");
    let item = app.content(t, &site, &json!({"kind": "FLOW", "name": "Invite"}))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = content_path(&site, &item);
    let mut rounds = Rounds::new("PATCH content status vs PATCH audiences");
    while let Some(round) = rounds.next_round() {
        let status = json!(if round % 2 == 0 { "PUBLISHED" } else { "DRAFT" });
        let audiences = json!([format!("Audience {round}")]);
        let (statused, targeted) = at_once(
            || app.patch(&path, Some(t), &json!({ "status": status })),
            || app.patch(&path, Some(t), &json!({ "audiences": audiences })),
        );
        let outcome = (|| {
            ok("PATCH status", &statused)?;
            ok("PATCH audiences", &targeted)?;
            let got = app.get(&path, Some(t));
            ok("GET", &got)?;
            expect_eq("status", &got.body["status"], &status)?;
            expect_eq("audiences", &got.body["audiences"], &audiences)
        })();
        rounds.record(outcome);
    }
    rounds.finish();
}

/// Two writes made from the same read (`If-Match` the same tag) at once:
/// exactly one applies, the other is 412, and what a GET then shows is the
/// winner's answer under the winner's tag.
fn one_tag_one_winner(
    app: &TestApp,
    name: &'static str,
    method: &str,
    path: &str,
    token: &str,
    body: impl Fn(usize, usize) -> Value,
    field: &str,
) {
    let mut rounds = Rounds::new(name);
    while let Some(round) = rounds.next_round() {
        let (_, tag) = read(app, path, token);
        let bodies = [body(round, 0), body(round, 1)];
        let (first, second) = at_once(
            || write(app, method, path, token, &bodies[0], Some(&tag)),
            || write(app, method, path, token, &bodies[1], Some(&tag)),
        );
        let outcome = (|| {
            let (winner, loser, won) = match (first.status, second.status) {
                (200, 412) => (&first, &second, 0),
                (412, 200) => (&second, &first, 1),
                (a, b) => {
                    return Err(format!(
                        "answers {a} and {b}, expected one 200 and one 412: {} / {}",
                        first.body, second.body
                    ))
                }
            };
            expect_eq(
                "loser's code",
                &loser.body["code"],
                &json!("PRECONDITION_FAILED"),
            )?;
            let got = app.get(path, Some(token));
            ok("GET", &got)?;
            expect_eq(field, &got.body[field], &bodies[won][field])?;
            expect_eq("ETag", got.header("etag"), winner.header("etag"))
        })();
        rounds.record(outcome);
    }
    rounds.finish();
}

fn site_with_widget_and_item(app: &TestApp, token: &str) -> (String, String) {
    let site = app.site_id(token, "example.com");
    app.widget(token, &site);
    let item = app.content(token, &site, &json!({"kind": "FLOW", "name": "Invite"}))["id"]
        .as_str()
        .unwrap()
        .to_string();
    (site, item)
}

#[test]
fn of_two_site_patches_from_one_read_one_wins() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let t = tenant.token.as_str();
    let (site, _) = site_with_widget_and_item(&app, t);
    one_tag_one_winner(
        &app,
        "site PATCH from one read",
        "PATCH",
        &site_path(&site),
        t,
        |round, n| json!({"name": format!("Name {round}.{n}")}),
        "name",
    );
}

#[test]
fn of_two_widget_saves_from_one_read_one_wins() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let t = tenant.token.as_str();
    let (site, _) = site_with_widget_and_item(&app, t);
    one_tag_one_winner(
        &app,
        "widget PUT from one read",
        "PUT",
        &widget_path(&site),
        t,
        |round, n| {
            let mut body = widget_body();
            body["welcomeMessage"] = json!(format!("Welcome {round}.{n}"));
            body
        },
        "welcomeMessage",
    );
}

#[test]
fn of_two_content_patches_from_one_read_one_wins() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let t = tenant.token.as_str();
    let (site, item) = site_with_widget_and_item(&app, t);
    one_tag_one_winner(
        &app,
        "content PATCH from one read",
        "PATCH",
        &content_path(&site, &item),
        t,
        |round, n| json!({"audiences": [format!("Audience {round}.{n}")]}),
        "audiences",
    );
}
