//! Lost updates: two dashboard writes to one site or widget fired at the
//! same moment, round after round; after each round the state must be one
//! that some serial order of the two requests produces. A write that reads
//! a row, changes it in memory and writes every column back fails these.

use chatdesk_domain::ports::SiteRepository;
use chatdesk_domain::secret::SecretHash;
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

/// `Err` unless the reply has this status.
fn status(what: &str, reply: &Reply, expected: u16) -> Result<(), String> {
    if reply.status == expected {
        Ok(())
    } else {
        Err(format!(
            "{what} answered {}, expected {expected}: {}",
            reply.status, reply.body
        ))
    }
}

fn get_ok(app: &TestApp, path: &str, token: &str) -> Result<Value, String> {
    let reply = app.get(path, Some(token));
    status(&format!("GET {path}"), &reply, 200)?;
    Ok(reply.body)
}

/// A site whose mapping is COMPLETED, with a DRAFT widget; returns its id.
fn site_with_draft_widget(app: &TestApp, token: &str, round: usize) -> String {
    let site = app.mapped_site(token, &format!("r{round}.example.com"));
    app.widget(token, &site);
    site
}

#[test]
fn patching_a_site_never_brings_back_a_replaced_api_key() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let t = tenant.token.as_str();
    let created = app.site(t, "example.com");
    let id = created["site"]["id"].as_str().unwrap().to_string();
    let store = app.store();
    let resolves = |key: &str| -> Result<Option<String>, String> {
        store
            .find_by_api_key(&SecretHash::of(key))
            .map(|site| site.map(|s| s.id.to_string()))
            .map_err(|e| format!("key lookup: {e}"))
    };
    let mut previous_key = created["apiKey"].as_str().unwrap().to_string();
    let mut rounds = Rounds::new("PATCH site vs POST api-key");
    while let Some(round) = rounds.next_round() {
        let name = format!("Name {round}");
        let (patched, regenerated) = at_once(
            || app.patch(&site_path(&id), Some(t), &json!({ "name": name })),
            || app.post_empty(&format!("{}/api-key", site_path(&id)), Some(t)),
        );
        let outcome = (|| {
            status("PATCH", &patched, 200)?;
            status("POST api-key", &regenerated, 200)?;
            let key = regenerated.body["apiKey"]
                .as_str()
                .ok_or("no apiKey")?
                .to_string();
            let got = get_ok(&app, &site_path(&id), t)?;
            let old_key = std::mem::replace(&mut previous_key, key.clone());
            expect_eq(
                "apiKeyPrefix",
                &got["apiKeyPrefix"],
                &regenerated.body["apiKeyPrefix"],
            )?;
            expect_eq("name", &got["name"], &json!(name))?;
            expect_eq("the new key's site", resolves(&key)?, Some(id.clone()))?;
            expect_eq("the replaced key's site", resolves(&old_key)?, None)
        })();
        rounds.record(outcome);
    }
    rounds.finish();
}

#[test]
fn patching_a_site_never_undoes_a_mapping_change() {
    let app = app!();
    let tenant = app.tenant(Plan::Pro);
    let t = tenant.token.as_str();
    let id = app.site_id(t, "example.com");
    let mut rounds = Rounds::new("PATCH site vs PUT mapping");
    while let Some(round) = rounds.next_round() {
        let name = format!("Name {round}");
        let mapping = if round % 2 == 0 {
            "COMPLETED"
        } else {
            "FAILED"
        };
        let (patched, mapped) = at_once(
            || app.patch(&site_path(&id), Some(t), &json!({ "name": name })),
            || {
                app.put(
                    &format!("{}/mapping", site_path(&id)),
                    Some(t),
                    &json!({ "status": mapping }),
                )
            },
        );
        let outcome = (|| {
            status("PATCH", &patched, 200)?;
            status("PUT mapping", &mapped, 200)?;
            let got = get_ok(&app, &site_path(&id), t)?;
            expect_eq("mappingStatus", &got["mappingStatus"], &json!(mapping))?;
            expect_eq("name", &got["name"], &json!(name))
        })();
        rounds.record(outcome);
    }
    rounds.finish();
}

#[test]
fn patching_a_site_never_undoes_its_first_identity_secret() {
    let app = app!();
    let tenant = app.tenant(Plan::Enterprise);
    let t = tenant.token.as_str();
    let mut rounds = Rounds::new("PATCH site vs first identity secret");
    while let Some(round) = rounds.next_round() {
        let id = app.site_id(t, &format!("r{round}.example.com"));
        let (patched, issued) = at_once(
            || app.patch(&site_path(&id), Some(t), &json!({"name": "Renamed"})),
            || app.post_empty(&format!("{}/identity-secret", site_path(&id)), Some(t)),
        );
        let outcome = (|| {
            status("PATCH", &patched, 200)?;
            status("POST identity-secret", &issued, 200)?;
            let got = get_ok(&app, &site_path(&id), t)?;
            expect_eq(
                "identityVerification",
                &got["identityVerification"],
                &json!(true),
            )?;
            expect_eq("name", &got["name"], &json!("Renamed"))
        })();
        rounds.record(outcome);
    }
    rounds.finish();
}

#[test]
fn saving_widget_settings_never_undoes_a_publish() {
    let app = app!();
    let tenant = app.tenant(Plan::Enterprise);
    let t = tenant.token.as_str();
    let mut rounds = Rounds::new("PUT widget vs publish");
    while let Some(round) = rounds.next_round() {
        let site = site_with_draft_widget(&app, t, round);
        let mut settings = widget_body();
        settings["welcomeMessage"] = json!(format!("Welcome, round {round}"));
        settings["position"] = json!("TOP_LEFT");
        let (saved, published) = at_once(
            || app.put(&widget_path(&site), Some(t), &settings),
            || app.post_empty(&format!("{}/publish", widget_path(&site)), Some(t)),
        );
        let outcome = (|| {
            status("PUT widget", &saved, 200)?;
            status("publish", &published, 200)?;
            let got = get_ok(&app, &widget_path(&site), t)?;
            expect_eq("status", &got["status"], &json!("ACTIVE"))?;
            if !got["publishedAt"].is_string() {
                return Err(format!("publishedAt not set: {got}"));
            }
            expect_eq(
                "welcomeMessage",
                &got["welcomeMessage"],
                &settings["welcomeMessage"],
            )?;
            expect_eq("position", &got["position"], &settings["position"])
        })();
        rounds.record(outcome);
    }
    rounds.finish();
}

/// Publish (from DRAFT) or pause (from ACTIVE) racing `PUT mapping FAILED`,
/// whose caller reads the widget as soon as the mapping change is answered.
/// Serially either the transition came first (200; the widget changed) or
/// the mapping did (409 `SITE_NOT_MAPPED`; the widget unchanged). A
/// transition answered 200 whose effect was not yet visible after the
/// mapping change had been answered took effect after it: its mapping check
/// read a stale site.
fn transition_racing_unmapping(app: &TestApp, transition: &'static str) {
    let tenant = app.tenant(Plan::Enterprise);
    let t = tenant.token.as_str();
    let (before, after) = match transition {
        "publish" => ("DRAFT", "ACTIVE"),
        _ => ("ACTIVE", "PAUSED"),
    };
    let name = if transition == "publish" {
        "publish vs PUT mapping FAILED"
    } else {
        "pause vs PUT mapping FAILED"
    };
    let mut rounds = Rounds::new(name);
    while let Some(round) = rounds.next_round() {
        let site = site_with_draft_widget(app, t, round);
        if transition == "pause" {
            let published = app.post_empty(&format!("{}/publish", widget_path(&site)), Some(t));
            assert_eq!(published.status, 200, "{}", published.body);
        }
        let (changed, (unmapped, seen)) = at_once(
            || app.post_empty(&format!("{}/{transition}", widget_path(&site)), Some(t)),
            || {
                let unmapped = app.put(
                    &format!("{}/mapping", site_path(&site)),
                    Some(t),
                    &json!({"status": "FAILED"}),
                );
                (unmapped, app.get(&widget_path(&site), Some(t)))
            },
        );
        let outcome = (|| {
            status("PUT mapping", &unmapped, 200)?;
            status("GET widget after the mapping change", &seen, 200)?;
            let got = get_ok(app, &widget_path(&site), t)?;
            let mapped = get_ok(app, &site_path(&site), t)?;
            expect_eq("mappingStatus", &mapped["mappingStatus"], &json!("FAILED"))?;
            match (changed.status, changed.body["code"].as_str()) {
                (200, _) => {
                    expect_eq("reply's status", &changed.body["status"], &json!(after))?;
                    expect_eq("status", &got["status"], &json!(after))?;
                    if seen.body["status"] == before {
                        return Err(format!(
                            "{transition} answered 200 but took effect after the mapping \
                             change was answered (the widget read {before} then)"
                        ));
                    }
                    Ok(())
                }
                (409, Some("SITE_NOT_MAPPED")) => {
                    expect_eq("status", &got["status"], &json!(before))
                }
                _ => Err(format!(
                    "{transition} answered {}: {}",
                    changed.status, changed.body
                )),
            }
        })();
        rounds.record(outcome);
    }
    rounds.finish();
}

#[test]
fn publishing_never_passes_a_mapping_check_made_stale() {
    let app = app!();
    transition_racing_unmapping(&app, "publish");
}

#[test]
fn pausing_never_passes_a_mapping_check_made_stale() {
    let app = app!();
    transition_racing_unmapping(&app, "pause");
}
