//! The widget SDK's storage (`VisitorRepository`): the gate of a site key,
//! visitors and their sessions, the origin lookup, the published library,
//! and the content version. Exchanges and votes are in the submodules.

mod durations;
mod exchanges;
mod races;
mod votes;

use std::sync::Barrier;

use chatdesk_domain::content::{ContentKind, ContentPatch, ContentStatus};
use chatdesk_domain::conversation::{ChatMessage, ChatSession, MessageRole, MessageStatus};
use chatdesk_domain::ids::{EndUserId, MessageId, SessionId};
use chatdesk_domain::ports::{
    AskContext, ContentRepository, Exchange, OpenSession, OpenedSession, SiteRepository,
    TenantRepository, VisitorRepository, WidgetRepository,
};
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::site::{Site, SiteChanges};
use chatdesk_domain::tenant::{Plan, Tenant};
use chatdesk_domain::testing::builders::{a_content_item, a_widget};
use chatdesk_domain::version::Precondition;
use chatdesk_domain::visitor::{VisitorIdentity, SESSION_IDLE_TIMEOUT, SESSION_MAX_DURATION};
use chatdesk_domain::widget::{ChatWidget, NamedSettings};
use chatdesk_domain::Error;
use chatdesk_store::schema::{chat_session_tokens, chat_sessions, end_users};
use chatdesk_store::{connect, Store};
use chrono::{DateTime, Duration, NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::helpers::{mapped_site, site_of, stores, tenant_with_owner};

/// Now, to the microsecond (as stored).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A tenant, its mapped site `example.com` and the site's widget.
pub struct Fixture {
    pub tenant: Tenant,
    pub site: Site,
    pub widget: ChatWidget,
}

pub fn fixture(store: &Store) -> Fixture {
    let (tenant, _, _) = tenant_with_owner(store, Plan::Pro);
    let site = mapped_site(store, tenant.id, "example.com");
    let widget = a_widget().site_id(site.id).build();
    store
        .save_widget_settings(tenant.id, &widget, &NamedSettings::ALL, &Precondition::None)
        .expect("stores the widget");
    Fixture {
        tenant,
        site,
        widget,
    }
}

/// An anonymous visitor.
pub fn anonymous(id: &str) -> VisitorIdentity {
    VisitorIdentity {
        anonymous_id: id.into(),
        external_id: None,
        traits: None,
        verified: false,
    }
}

/// A fresh session token's hash.
pub fn new_token() -> SecretHash {
    SecretHash::of(&format!("cd_sess_{}", Uuid::new_v4().simple()))
}

impl Fixture {
    /// A request to open `identity`'s session at `at`, with the site's key,
    /// fresh ids and its own token.
    pub fn request(&self, identity: VisitorIdentity, at: DateTime<Utc>) -> OpenSession {
        OpenSession {
            site_id: self.site.id,
            widget_id: self.widget.id,
            key: self.site.api_key_hash.clone(),
            identity,
            new_visitor_id: EndUserId(Uuid::now_v7()),
            new_session_id: SessionId(Uuid::now_v7()),
            token: new_token(),
            idle_cutoff: at - SESSION_IDLE_TIMEOUT,
            start_cutoff: at - SESSION_MAX_DURATION,
            now: at,
        }
    }

    /// Opens the anonymous visitor `id`'s session now; returns it and its
    /// token.
    pub fn open(&self, store: &Store, id: &str) -> (ChatSession, SecretHash) {
        let request = self.request(anonymous(id), now());
        let opened = store.open_session(&request).expect("opens a session");
        (opened.session, request.token)
    }

    /// A message of `session`, created now.
    pub fn message(
        &self,
        session: &ChatSession,
        role: MessageRole,
        status: MessageStatus,
        content: &str,
    ) -> ChatMessage {
        ChatMessage {
            id: MessageId(Uuid::now_v7()),
            session_id: session.id,
            site_id: self.site.id,
            role,
            status,
            content: content.into(),
            content_ref: None,
            model: None,
            tokens_used: None,
            created_at: now(),
        }
    }

    /// A question and a reply in `session` under `limit`; a reply that
    /// `cost`s credits is being generated (ANALYZING) and has an unpaid
    /// alternative.
    pub fn exchange(
        &self,
        session: &ChatSession,
        question: &str,
        limit: u32,
        cost: u32,
    ) -> Exchange {
        let question = self.message(
            session,
            MessageRole::User,
            MessageStatus::Completed,
            question,
        );
        let (status, text) = if cost > 0 {
            (MessageStatus::Analyzing, "")
        } else {
            (MessageStatus::Completed, "Here is how.")
        };
        let reply = ChatMessage {
            model: (cost > 0).then(|| "test-model".to_string()),
            ..self.message(session, MessageRole::Assistant, status, text)
        };
        let unpaid_reply = (cost > 0).then(|| ChatMessage {
            id: MessageId(Uuid::now_v7()),
            ..self.message(
                session,
                MessageRole::Assistant,
                MessageStatus::InsufficientCredits,
                "We are out of answers for now.",
            )
        });
        Exchange {
            key: self.site.api_key_hash.clone(),
            tenant_id: self.tenant.id,
            limit,
            idle_cutoff: now() - SESSION_IDLE_TIMEOUT,
            start_cutoff: now() - SESSION_MAX_DURATION,
            question,
            reply,
            cost,
            unpaid_reply,
        }
    }

    /// The session's context through `token` and the site's key.
    pub fn context(&self, store: &Store, token: &SecretHash) -> Option<AskContext> {
        store
            .find_session(&self.site.api_key_hash, token)
            .expect("finds the session")
    }
}

/// What is stored of a visitor.
#[derive(Debug, Queryable, PartialEq)]
struct VisitorRow {
    id: String,
    external_id: Option<String>,
    traits: String,
    verified: bool,
    first_seen_at: NaiveDateTime,
    last_seen_at: NaiveDateTime,
}

fn visitors(url: &str) -> Vec<VisitorRow> {
    let mut conn = connect(url).expect("connects");
    end_users::table
        .select((
            end_users::id,
            end_users::external_id,
            end_users::traits,
            end_users::verified,
            end_users::first_seen_at,
            end_users::last_seen_at,
        ))
        .order(end_users::id)
        .load(&mut conn)
        .expect("reads visitors")
}

#[test]
fn the_gate_is_the_keys_site_its_tenants_plan_and_its_widget() {
    for t in stores() {
        let fx = fixture(&t);
        let gate = t
            .load_gate(&fx.site.api_key_hash)
            .expect("loads")
            .expect("a known key");
        assert_eq!(gate.site, fx.site, "{}", t.name());
        assert_eq!(gate.plan, Plan::Pro);
        assert_eq!(gate.widget.map(|w| w.id), Some(fx.widget.id));

        // The plan as it is now; a site without a widget has none.
        t.set_plan(fx.tenant.id, Plan::Starter)
            .expect("sets the plan");
        let bare = site_of(fx.tenant.id, "bare.example.com");
        t.insert_site(&bare).expect("stores the site");
        let gate = t
            .load_gate(&bare.api_key_hash)
            .expect("loads")
            .expect("a known key");
        assert_eq!((gate.site.id, gate.plan), (bare.id, Plan::Starter));
        assert_eq!(gate.widget, None, "{}", t.name());

        assert_eq!(t.load_gate(&new_token()).expect("loads"), None);
    }
}

#[test]
fn a_visitors_session_is_opened_once_and_then_resumed() {
    for t in stores() {
        let fx = fixture(&t);
        let at = now();
        let first = fx.request(anonymous("anon-1"), at);
        let opened = t.open_session(&first).expect("opens");
        assert!(opened.created, "{}", t.name());
        let session = opened.session.clone();
        assert_eq!(session.id, first.new_session_id);
        assert_eq!(session.site_id, fx.site.id);
        assert_eq!(session.widget_id, fx.widget.id);
        assert_eq!(session.end_user_id, first.new_visitor_id);
        assert_eq!(
            fx.context(&t, &first.token).map(|c| c.session.id),
            Some(session.id),
            "{}: the issued token opens it",
            t.name()
        );
        assert_eq!((session.started_at, session.last_active_at), (at, at));
        assert_eq!(session.ended_at, None);
        assert_eq!(
            (session.message_count, session.question_count),
            (0, 0),
            "{}",
            t.name()
        );

        // Again, later but within the idle timeout: the same session, and
        // the new token opens it too. Ids offered for a new visitor and
        // session go unused.
        let later = at + Duration::minutes(5);
        let second = fx.request(anonymous("anon-1"), later);
        let resumed = t.open_session(&second).expect("resumes");
        assert_eq!(
            resumed,
            OpenedSession {
                session: session.clone(),
                created: false
            },
            "{}",
            t.name()
        );
        for token in [&first.token, &second.token] {
            let context = fx.context(&t, token).expect("the token opens the session");
            assert_eq!(context.session, session, "{}", t.name());
            assert_eq!(context.tenant_id, fx.tenant.id);
        }
        let stored = visitors(t.url());
        assert_eq!(stored.len(), 1, "{}", t.name());
        assert_eq!(stored[0].id, first.new_visitor_id.to_string());
        assert_eq!(stored[0].first_seen_at, at.naive_utc());
        assert_eq!(stored[0].last_seen_at, later.naive_utc());

        // Another visitor gets a session of their own.
        let (other, _) = fx.open(&t, "anon-2");
        assert_ne!(other.id, session.id);
        assert_ne!(other.end_user_id, session.end_user_id);
    }
}

#[test]
fn the_identity_and_traits_are_written_only_when_given() {
    for t in stores() {
        let fx = fixture(&t);
        let traits = |json: serde_json::Value| json.as_object().cloned();
        let gold = r#"{"email":"a@b.co","plan":"gold"}"#;
        type Step<'a> = (
            VisitorIdentity,
            Result<(), Error>,
            Option<&'a str>,
            &'a str,
            bool,
        );
        let steps: [Step; 5] = [
            // (request, outcome, external id, traits, verified) stored afterwards
            (anonymous("anon-1"), Ok(()), None, "{}", false),
            // An anonymous visitor signs in.
            (
                VisitorIdentity {
                    external_id: Some("user-42".into()),
                    traits: traits(serde_json::json!({"email": "a@b.co", "plan": "gold"})),
                    verified: true,
                    ..anonymous("anon-1")
                },
                Ok(()),
                Some("user-42"),
                gold,
                true,
            ),
            // Then the browser without an identity, or someone else: refused,
            // nothing written.
            (
                anonymous("anon-1"),
                Err(Error::IdentityConflict),
                Some("user-42"),
                gold,
                true,
            ),
            (
                VisitorIdentity {
                    external_id: Some("user-43".into()),
                    traits: traits(serde_json::json!({})),
                    verified: true,
                    ..anonymous("anon-1")
                },
                Err(Error::IdentityConflict),
                Some("user-42"),
                gold,
                true,
            ),
            // The same visitor again: traits replaced, unverified this time.
            (
                VisitorIdentity {
                    external_id: Some("user-42".into()),
                    traits: traits(serde_json::json!({})),
                    verified: false,
                    ..anonymous("anon-1")
                },
                Ok(()),
                Some("user-42"),
                "{}",
                false,
            ),
        ];
        for (i, (identity, outcome, external_id, stored_traits, verified)) in
            steps.into_iter().enumerate()
        {
            let opened = t.open_session(&fx.request(identity, now())).map(|_| ());
            assert_eq!(opened, outcome, "{}: step {i}", t.name());
            let stored = visitors(t.url());
            assert_eq!(stored.len(), 1, "{}: step {i}", t.name());
            assert_eq!(
                (
                    stored[0].external_id.as_deref(),
                    serde_json::from_str::<serde_json::Value>(&stored[0].traits).expect("JSON"),
                    stored[0].verified
                ),
                (
                    external_id,
                    serde_json::from_str::<serde_json::Value>(stored_traits).expect("JSON"),
                    verified
                ),
                "{}: step {i}",
                t.name()
            );
        }
    }
}

#[test]
fn a_session_idle_past_the_cutoff_ends_and_a_new_one_starts() {
    for t in stores() {
        let fx = fixture(&t);
        let started = now() - Duration::hours(2);
        let first = fx.request(anonymous("anon-1"), started);
        let old = t.open_session(&first).expect("opens").session;

        // Exactly at the cutoff it is still current.
        let at_cutoff = OpenSession {
            idle_cutoff: started,
            ..fx.request(anonymous("anon-1"), started + Duration::minutes(30))
        };
        let resumed = t.open_session(&at_cutoff).expect("resumes");
        assert!(!resumed.created, "{}", t.name());
        assert_eq!(resumed.session.id, old.id);

        let at = now();
        let second = fx.request(anonymous("anon-1"), at);
        let opened = t.open_session(&second).expect("opens");
        assert!(opened.created, "{}", t.name());
        assert_eq!(opened.session.id, second.new_session_id);
        assert_eq!(opened.session.end_user_id, old.end_user_id);
        assert_eq!(opened.session.ended_at, None);

        // The old one ended now; its tokens still name it.
        let ended = fx.context(&t, &first.token).expect("the old token").session;
        assert_eq!(ended.id, old.id);
        assert_eq!(ended.ended_at, Some(at), "{}", t.name());
        let current = fx
            .context(&t, &second.token)
            .expect("the new token")
            .session;
        assert_eq!(current, opened.session);
        let mut conn = connect(t.url()).expect("connects");
        let current_count: i64 = chat_sessions::table
            .filter(chat_sessions::ended_at.is_null())
            .count()
            .get_result(&mut conn)
            .expect("counts");
        assert_eq!(current_count, 1, "{}", t.name());
    }
}

#[test]
fn concurrent_opens_of_one_visitor_share_one_session() {
    const CALLERS: usize = 16;
    for t in stores() {
        let fx = fixture(&t);
        let requests: Vec<OpenSession> = (0..CALLERS)
            .map(|_| fx.request(anonymous("anon-racer"), now()))
            .collect();
        let start = Barrier::new(CALLERS);
        let opened: Vec<OpenedSession> = std::thread::scope(|s| {
            let handles: Vec<_> = requests
                .iter()
                .map(|request| {
                    let (store, start) = (&t.store, &start);
                    s.spawn(move || {
                        start.wait();
                        store.open_session(request)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a caller panicked").expect("opens"))
                .collect()
        });
        let id = opened[0].session.id;
        assert!(
            opened.iter().all(|o| o.session.id == id),
            "{}: {opened:?}",
            t.name()
        );
        assert_eq!(
            opened.iter().filter(|o| o.created).count(),
            1,
            "{}",
            t.name()
        );
        let winner = requests
            .iter()
            .zip(&opened)
            .find(|(_, o)| o.created)
            .map(|(r, _)| r.new_session_id);
        assert_eq!(winner, Some(id));
        for request in &requests {
            let context = fx
                .context(&t, &request.token)
                .expect("every token opens it");
            assert_eq!(context.session.id, id, "{}", t.name());
        }
        assert_eq!(visitors(t.url()).len(), 1, "{}", t.name());
        let mut conn = connect(t.url()).expect("connects");
        let sessions: i64 = chat_sessions::table
            .count()
            .get_result(&mut conn)
            .expect("counts");
        let tokens: i64 = chat_session_tokens::table
            .count()
            .get_result(&mut conn)
            .expect("counts");
        assert_eq!((sessions, tokens), (1, CALLERS as i64), "{}", t.name());
    }
}

#[test]
fn a_regenerated_key_opens_and_finds_nothing() {
    for t in stores() {
        let fx = fixture(&t);
        let (session, token) = fx.open(&t, "anon-1");
        let new_key = new_token();
        t.update_site(
            fx.tenant.id,
            fx.site.id,
            &SiteChanges {
                api_key: Some(("cd_live_new".into(), new_key.clone())),
                ..SiteChanges::default()
            },
            &Precondition::None,
            now(),
        )
        .expect("regenerates the key");

        let stale = fx.request(anonymous("anon-2"), now());
        assert_eq!(
            t.open_session(&stale),
            Err(Error::InvalidCredentials),
            "{}",
            t.name()
        );
        assert_eq!(visitors(t.url()).len(), 1, "{}: nothing stored", t.name());
        assert_eq!(fx.context(&t, &token), None, "{}", t.name());
        assert_eq!(
            t.record_exchange(&fx.exchange(&session, "How?", 20, 0)),
            Err(Error::InvalidCredentials),
            "{}",
            t.name()
        );

        // Another site's key does not open this site's sessions either.
        let other = site_of(fx.tenant.id, "other.example.com");
        t.insert_site(&other).expect("stores the site");
        assert_eq!(
            t.find_session(&other.api_key_hash, &token).expect("finds"),
            None
        );
        let context = t
            .find_session(&new_key, &token)
            .expect("finds")
            .expect("the new key finds it");
        assert_eq!(context.session.id, session.id, "{}", t.name());
        assert_eq!(t.find_session(&new_key, &new_token()).expect("finds"), None);
    }
}

#[test]
fn origin_hosts_are_the_sites_domains_and_their_allowed_subdomains() {
    for t in stores() {
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Enterprise);
        let mut exact = site_of(tenant.id, "example.com");
        exact.allow_subdomains = false;
        let mut wide = site_of(tenant.id, "shop.test");
        wide.allow_subdomains = true;
        for site in [&exact, &wide] {
            t.insert_site(site).expect("stores the site");
        }
        let table = [
            ("example.com", true),
            ("EXAMPLE.com.", true),
            ("www.example.com", false),
            ("shop.test", true),
            ("www.shop.test", true),
            ("a.b.shop.test", true),
            ("xshop.test", false),
            ("test", false),
            ("com", false),
            ("example.org", false),
            ("", false),
        ];
        for (host, admitted) in table {
            assert_eq!(
                t.admits_origin_host(host).expect("looks up"),
                admitted,
                "{}: {host}",
                t.name()
            );
        }
    }
}

#[test]
fn the_published_library_and_its_version() {
    for t in stores() {
        let fx = fixture(&t);
        let (_, token) = fx.open(&t, "anon-1");
        let version = |t: &Store| fx.context(t, &token).expect("the session").content_version;
        assert_eq!(version(&t), 0, "{}", t.name());

        let item = |kind, status, name: &str| {
            a_content_item()
                .site_id(fx.site.id)
                .kind(kind)
                .status(status)
                .name(name.into())
                .build()
        };
        let published = item(ContentKind::Flow, ContentStatus::Published, "Export data");
        let tooltip = item(ContentKind::Tooltip, ContentStatus::Published, "Billing");
        let draft = item(ContentKind::Flow, ContentStatus::Draft, "Draft flow");
        for c in [&published, &draft, &tooltip] {
            t.insert_content(c).expect("inserts");
        }
        assert_eq!(version(&t), 3, "{}: one per insert", t.name());
        assert_eq!(
            t.published_content(fx.site.id).expect("reads"),
            [published.clone(), tooltip.clone()],
            "{}",
            t.name()
        );

        // A change moves the version on; a patch that changes nothing does not.
        let unpublish = ContentPatch {
            status: Some(ContentStatus::Draft),
            audiences: None,
        };
        for expected in [4, 4] {
            t.update_content(
                fx.site.id,
                tooltip.id,
                &unpublish,
                &Precondition::None,
                now(),
            )
            .expect("updates");
            assert_eq!(version(&t), expected, "{}", t.name());
        }
        assert_eq!(t.published_content(fx.site.id).expect("reads"), [published]);

        // Another site's library is its own.
        let other = mapped_site(&t, fx.tenant.id, "other.example.com");
        assert_eq!(t.published_content(other.id).expect("reads"), []);
        assert_eq!(version(&t), 4, "{}", t.name());
    }
}
