//! The visitor side's pure rules ([`chatdesk_domain::visitor`]): a
//! visitor's identity, the origin rule, the widget gate as the SDK applies
//! it, and how long a rate-limited visitor waits.
//!
//! The builders live behind the `testing` feature:
//! `cargo nextest run -p chatdesk-domain --features testing`.
#![cfg(feature = "testing")]

use chrono::Duration;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use chatdesk_domain::secret::{IssuedSecret, SecretHash, SecretKind, SECRET_BYTES};
use chatdesk_domain::site::{MappingStatus, Site};
use chatdesk_domain::tenant::Plan;
use chatdesk_domain::testing::builders::{a_site, a_widget, t0};
use chatdesk_domain::visitor::{
    retry_after_secs, session_expires_at, SiteGate, VisitorIdentity, VisitorInput, GENERATION_COST,
    SESSION_IDLE_TIMEOUT, SESSION_MAX_DURATION,
};
use chatdesk_domain::widget::{GateClosed, WidgetStatus};
use chatdesk_domain::{Error, ErrorKind};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `hex(HMAC-SHA256(key, externalId))`: what a site's server computes.
fn hmac_hex(key: &[u8], external_id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(external_id.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// An identity secret as chatdesk issues it (shown once to the site).
fn identity_secret(seed: u8) -> IssuedSecret {
    IssuedSecret::new(SecretKind::IdentitySecret, [seed; SECRET_BYTES])
}

/// The fields a validation error names, in order.
fn fields(error: &Error) -> Vec<&str> {
    error
        .field_errors()
        .iter()
        .map(|f| f.field.as_str())
        .collect()
}

fn input(anonymous_id: &str) -> VisitorInput {
    VisitorInput {
        anonymous_id: anonymous_id.into(),
        ..VisitorInput::default()
    }
}

#[test]
fn the_user_hash_keyed_by_the_secret_equals_the_one_keyed_by_its_sha256() {
    // A site's server keys the HMAC with the raw secret; chatdesk keeps only
    // the secret's SHA-256 and keys with that. They agree because the
    // secret is longer than HMAC-SHA256's 64-byte block.
    let secret = identity_secret(3);
    assert!(secret.plaintext.len() > 64);
    let sha = Sha256::digest(secret.plaintext.as_bytes());
    assert_eq!(sha.as_slice(), SecretHash::of(&secret.plaintext).as_bytes());
    for external in ["user-42", "", "ünïcode@example.com"] {
        assert_eq!(
            hmac_hex(secret.plaintext.as_bytes(), external),
            hmac_hex(&sha, external),
            "{external:?}"
        );
    }
}

/// What verifying an input should give.
#[derive(Debug)]
enum Want {
    /// The identity, with the given external id, verification and traits.
    Identity {
        external_id: Option<&'static str>,
        verified: bool,
        traits: Option<Value>,
    },
    /// 422 naming these fields.
    Invalid(&'static [&'static str]),
    /// 401 IDENTITY_NOT_VERIFIED.
    NotVerified,
}

#[test]
fn verifying_a_visitor() {
    let secret = identity_secret(7);
    let other_secret = identity_secret(8);
    let right = hmac_hex(secret.plaintext.as_bytes(), "user-42");
    let plain = a_site().build();
    let verifying = a_site()
        .identity_secret_hash(Some(secret.hash.clone()))
        .build();
    let identified = |external: &str, hash: Option<&str>| VisitorInput {
        anonymous_id: "anon-1".into(),
        external_id: Some(external.into()),
        user_hash: hash.map(str::to_string),
        ..VisitorInput::default()
    };
    let with_traits = |traits: Value| VisitorInput {
        traits: Some(traits),
        ..input("anon-1")
    };
    let anonymous = || Want::Identity {
        external_id: None,
        verified: false,
        traits: None,
    };
    let unverified = Want::Identity {
        external_id: Some("user-42"),
        verified: false,
        traits: None,
    };
    let verified = || Want::Identity {
        external_id: Some("user-42"),
        verified: true,
        traits: None,
    };
    let many_keys: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), json!(i))).collect();

    let table: Vec<(&str, &Site, VisitorInput, Want)> = vec![
        ("anonymous", &plain, input("anon-1"), anonymous()),
        (
            "anonymous on a verifying site needs no hash",
            &verifying,
            input("anon-1"),
            anonymous(),
        ),
        (
            "the anonymousId is trimmed",
            &plain,
            input("  anon-1 "),
            anonymous(),
        ),
        (
            "200 characters of anonymousId",
            &plain,
            input(&"a".repeat(200)),
            Want::Identity {
                external_id: None,
                verified: false,
                traits: None,
            },
        ),
        (
            "externalId on a site without a secret is taken as given",
            &plain,
            identified("user-42", None),
            unverified,
        ),
        (
            "a userHash is ignored on a site without a secret",
            &plain,
            identified("user-42", Some("not-even-hex")),
            Want::Identity {
                external_id: Some("user-42"),
                verified: false,
                traits: None,
            },
        ),
        (
            "the right hash",
            &verifying,
            identified("user-42", Some(&right)),
            verified(),
        ),
        (
            "the right hash in upper case",
            &verifying,
            identified("user-42", Some(&right.to_uppercase())),
            verified(),
        ),
        (
            "the right hash with surrounding spaces",
            &verifying,
            identified("user-42", Some(&format!(" {right} "))),
            verified(),
        ),
        (
            "the hash of another externalId",
            &verifying,
            identified(
                "user-42",
                Some(&hmac_hex(secret.plaintext.as_bytes(), "user-43")),
            ),
            Want::NotVerified,
        ),
        (
            "a hash made with another secret",
            &verifying,
            identified(
                "user-42",
                Some(&hmac_hex(other_secret.plaintext.as_bytes(), "user-42")),
            ),
            Want::NotVerified,
        ),
        (
            "the hash of the secret's hash in plain SHA-256, not HMAC",
            &verifying,
            identified("user-42", Some(&secret.hash.to_hex())),
            Want::NotVerified,
        ),
        (
            "a truncated hash",
            &verifying,
            identified("user-42", Some(&right[..63])),
            Want::NotVerified,
        ),
        (
            "no hash",
            &verifying,
            identified("user-42", None),
            Want::NotVerified,
        ),
        (
            "an empty hash",
            &verifying,
            identified("user-42", Some("")),
            Want::NotVerified,
        ),
        (
            "a userHash without an externalId",
            &plain,
            VisitorInput {
                user_hash: Some(right.clone()),
                ..input("anon-1")
            },
            Want::Invalid(&["userHash"]),
        ),
        (
            "a userHash without an externalId on a verifying site",
            &verifying,
            VisitorInput {
                user_hash: Some(right.clone()),
                ..input("anon-1")
            },
            Want::Invalid(&["userHash"]),
        ),
        (
            "a userHash of 129 characters",
            &verifying,
            identified("user-42", Some(&"a".repeat(129))),
            Want::Invalid(&["userHash"]),
        ),
        (
            "an empty anonymousId",
            &plain,
            input(""),
            Want::Invalid(&["anonymousId"]),
        ),
        (
            "a blank anonymousId",
            &plain,
            input("   "),
            Want::Invalid(&["anonymousId"]),
        ),
        (
            "201 characters of anonymousId",
            &plain,
            input(&"a".repeat(201)),
            Want::Invalid(&["anonymousId"]),
        ),
        (
            "a bell in the anonymousId",
            &plain,
            input("anon\u{7}1"),
            Want::Invalid(&["anonymousId"]),
        ),
        (
            "a newline in the anonymousId",
            &plain,
            input("anon\n1"),
            Want::Invalid(&["anonymousId"]),
        ),
        (
            "a tab in the anonymousId",
            &plain,
            input("anon\t1"),
            Want::Invalid(&["anonymousId"]),
        ),
        (
            "a NUL in the anonymousId",
            &plain,
            input("anon\u{0}1"),
            Want::Invalid(&["anonymousId"]),
        ),
        (
            "an empty externalId",
            &plain,
            identified("", None),
            Want::Invalid(&["externalId"]),
        ),
        (
            "a control character in the externalId on a verifying site",
            &verifying,
            identified("user\u{1b}42", Some(&right)),
            Want::Invalid(&["externalId"]),
        ),
        (
            "traits that are an array",
            &plain,
            with_traits(json!(["a", "b"])),
            Want::Invalid(&["traits"]),
        ),
        (
            "traits that are a string",
            &plain,
            with_traits(json!("gold")),
            Want::Invalid(&["traits"]),
        ),
        (
            "traits that are a number",
            &plain,
            with_traits(json!(3)),
            Want::Invalid(&["traits"]),
        ),
        (
            "51 traits",
            &plain,
            with_traits(Value::Object(many_keys)),
            Want::Invalid(&["traits"]),
        ),
        (
            "null traits keep the stored ones",
            &plain,
            with_traits(Value::Null),
            anonymous(),
        ),
        (
            "traits that are an object",
            &plain,
            with_traits(json!({"email": "ada@example.com", "plan": "gold"})),
            Want::Identity {
                external_id: None,
                verified: false,
                traits: Some(json!({"email": "ada@example.com", "plan": "gold"})),
            },
        ),
        (
            "an empty object of traits",
            &plain,
            with_traits(json!({})),
            Want::Identity {
                external_id: None,
                verified: false,
                traits: Some(json!({})),
            },
        ),
        (
            "every invalid field at once",
            &plain,
            VisitorInput {
                anonymous_id: String::new(),
                external_id: None,
                traits: Some(json!([])),
                user_hash: Some(right.clone()),
            },
            Want::Invalid(&["anonymousId", "traits", "userHash"]),
        ),
    ];

    for (case, site, input, want) in table {
        let got = input.verify(site);
        match (&got, &want) {
            (
                Ok(identity),
                Want::Identity {
                    external_id,
                    verified,
                    traits,
                },
            ) => {
                let expected = VisitorIdentity {
                    anonymous_id: input.anonymous_id.trim().to_string(),
                    external_id: external_id.map(str::to_string),
                    traits: traits.as_ref().and_then(|t| t.as_object().cloned()),
                    verified: *verified,
                };
                assert_eq!(identity, &expected, "{case}");
            }
            (Err(error), Want::Invalid(expected)) => {
                assert_eq!(error.code(), "VALIDATION_FAILED", "{case}");
                assert_eq!(error.kind(), ErrorKind::Validation, "{case}");
                assert_eq!(fields(error), *expected, "{case}");
            }
            (Err(error), Want::NotVerified) => {
                assert_eq!(error, &Error::IdentityNotVerified, "{case}");
                assert_eq!(error.code(), "IDENTITY_NOT_VERIFIED", "{case}");
                assert_eq!(error.kind(), ErrorKind::Unauthorized, "{case}");
            }
            _ => panic!("{case}: got {got:?}, wanted {want:?}"),
        }
    }
}

#[test]
fn the_origin_rule() {
    // (origin, site allows subdomains, admitted)
    let table: [(Option<&str>, bool, bool); 30] = [
        // No Origin: a server or curl, not a browser.
        (None, false, true),
        (None, true, true),
        (Some("https://example.com"), false, true),
        (Some("http://example.com"), false, true),
        (Some("https://example.com"), true, true),
        (Some("https://EXAMPLE.com"), false, true),
        (Some("https://example.com:8443"), false, true),
        (Some("http://example.com:80"), true, true),
        (Some("https://app.example.com"), false, false),
        (Some("https://app.example.com"), true, true),
        (Some("https://a.b.example.com:3000"), true, true),
        (Some("https://other.com"), false, false),
        (Some("https://other.com"), true, false),
        (Some("https://evilexample.com"), false, false),
        (Some("https://evilexample.com"), true, false),
        (Some("https://example.com.evil.net"), true, false),
        (Some("https://example.co"), true, false),
        (Some("https://xample.com"), true, false),
        (Some("null"), false, false),
        (Some("null"), true, false),
        (Some(""), false, false),
        (Some("example.com"), false, false),
        (Some("ftp://example.com"), false, false),
        (Some("https://example.com/"), false, false),
        (Some("https://example.com/path"), false, false),
        (Some("https://example.com?x=1"), false, false),
        (Some("https://user@example.com"), false, false),
        (Some("https://example.com:"), false, false),
        (Some("https://example.com:port"), false, false),
        (Some("https://exa mple.com"), false, false),
    ];
    for (origin, allow_subdomains, admitted) in table {
        let gate = SiteGate {
            site: a_site().allow_subdomains(allow_subdomains).build(),
            plan: Plan::Pro,
            widget: None,
        };
        let got = gate.admits_origin(origin);
        if admitted {
            assert_eq!(got, Ok(()), "{origin:?} subdomains {allow_subdomains}");
        } else {
            assert_eq!(
                got,
                Err(Error::OriginNotAllowed),
                "{origin:?} subdomains {allow_subdomains}"
            );
            if let Err(error) = got {
                assert_eq!(error.code(), "ORIGIN_NOT_ALLOWED");
                assert_eq!(error.kind(), ErrorKind::Forbidden);
            }
        }
    }
}

#[test]
fn the_gate_closes_for_the_first_reason_in_the_products_order() {
    use GateClosed::*;
    use MappingStatus::*;
    use WidgetStatus::*;
    // (mapping, plan, widget status or no widget, the reason it is closed)
    let table: [(
        MappingStatus,
        Plan,
        Option<WidgetStatus>,
        Option<GateClosed>,
    ); 20] = [
        // 1. SITE_NOT_MAPPED before everything else.
        (Pending, Plan::Free, None, Some(SiteNotMapped)),
        (InProgress, Plan::Starter, Some(Draft), Some(SiteNotMapped)),
        (Failed, Plan::Pro, Some(Paused), Some(SiteNotMapped)),
        (Pending, Plan::Enterprise, Some(Active), Some(SiteNotMapped)),
        (InProgress, Plan::Pro, Some(Active), Some(SiteNotMapped)),
        // 2. FEATURE_LOCKED before the widget's state.
        (Completed, Plan::Free, None, Some(FeatureLocked)),
        (Completed, Plan::Free, Some(Active), Some(FeatureLocked)),
        (Completed, Plan::Starter, None, Some(FeatureLocked)),
        (Completed, Plan::Starter, Some(Paused), Some(FeatureLocked)),
        (Completed, Plan::Starter, Some(Active), Some(FeatureLocked)),
        // 3. WIDGET_DISABLED: no widget row.
        (Completed, Plan::Pro, None, Some(WidgetDisabled)),
        (Completed, Plan::Enterprise, None, Some(WidgetDisabled)),
        // 4. WIDGET_PAUSED, or WIDGET_NOT_PUBLISHED for a never-published draft.
        (Completed, Plan::Pro, Some(Paused), Some(WidgetPaused)),
        (
            Completed,
            Plan::Enterprise,
            Some(Paused),
            Some(WidgetPaused),
        ),
        (Completed, Plan::Pro, Some(Draft), Some(WidgetNotPublished)),
        (
            Completed,
            Plan::Enterprise,
            Some(Draft),
            Some(WidgetNotPublished),
        ),
        // Open.
        (Completed, Plan::Pro, Some(Active), None),
        (Completed, Plan::Enterprise, Some(Active), None),
        // The widget's state never hides an earlier reason.
        (Failed, Plan::Free, Some(Active), Some(SiteNotMapped)),
        (Completed, Plan::Free, Some(Draft), Some(FeatureLocked)),
    ];
    for (mapping, plan, status, closed) in table {
        let site = a_site().mapping_status(mapping).build();
        // Active and paused widgets were published once.
        let published = (status != Some(Draft)).then(t0);
        let widget = status.map(|s| {
            a_widget()
                .site_id(site.id)
                .status(s)
                .published_at(published)
                .build()
        });
        let gate = SiteGate {
            site,
            plan,
            widget: widget.clone(),
        };
        let case = format!("{mapping} {plan} {status:?}");
        match closed {
            None => {
                assert_eq!(
                    gate.open_widget(),
                    Ok(&widget.clone().expect("open")),
                    "{case}"
                );
                assert_eq!(gate.require_open(), Ok(&widget.expect("open")), "{case}");
            }
            Some(reason) => {
                assert_eq!(gate.open_widget(), Err(reason), "{case}");
                let error = gate.require_open().expect_err(&case);
                assert_eq!(error, Error::GateClosed(reason), "{case}");
                assert_eq!(error.code(), reason.as_str(), "{case}");
                assert_eq!(error.kind(), ErrorKind::Forbidden, "{case}");
            }
        }
    }
}

#[test]
fn reason_codes_are_the_contracts() {
    let table = [
        (GateClosed::SiteNotMapped, "SITE_NOT_MAPPED"),
        (GateClosed::FeatureLocked, "FEATURE_LOCKED"),
        (GateClosed::WidgetDisabled, "WIDGET_DISABLED"),
        (GateClosed::WidgetPaused, "WIDGET_PAUSED"),
        (GateClosed::WidgetNotPublished, "WIDGET_NOT_PUBLISHED"),
    ];
    for (reason, code) in table {
        assert_eq!(Error::GateClosed(reason).code(), code);
    }
}

#[test]
fn a_rate_limited_visitor_waits_until_the_session_idles_out() {
    let now = t0();
    // (minutes since the session's last activity, seconds to wait)
    let table: [(i64, u64); 8] = [
        (0, 1800),
        (1, 1740),
        (10, 1200),
        (29, 60),
        // Due now or overdue: at least one second.
        (30, 1),
        (31, 1),
        (24 * 60, 1),
        // A clock that ran behind: the whole timeout from that activity.
        (-5, 2100),
    ];
    for (idle_minutes, wait) in table {
        let last_active_at = now - Duration::minutes(idle_minutes);
        // A session that started a minute before that activity.
        let started_at = last_active_at - Duration::minutes(1);
        assert_eq!(
            retry_after_secs(started_at, last_active_at, now),
            wait,
            "idle {idle_minutes} min"
        );
        assert_eq!(
            session_expires_at(started_at, last_active_at),
            last_active_at + Duration::minutes(30)
        );
    }
    // Sub-second remainders are cut, never rounded up to a longer wait.
    let last = now - Duration::milliseconds(1_500);
    assert_eq!(retry_after_secs(last, last, now), 1798);
    // A session near its maximum duration ends then, however recently
    // it was active: 4 h after its start.
    let started_at = now - Duration::hours(4) + Duration::minutes(10);
    assert_eq!(
        session_expires_at(started_at, now),
        started_at + Duration::hours(4)
    );
    assert_eq!(retry_after_secs(started_at, now, now), 600);
}

#[test]
fn the_visitor_side_constants() {
    assert_eq!(SESSION_IDLE_TIMEOUT, Duration::minutes(30));
    assert_eq!(SESSION_MAX_DURATION, Duration::hours(4));
    assert_eq!(GENERATION_COST, 1);
}
