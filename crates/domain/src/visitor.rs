//! The visitor's side of the widget: the gate as the SDK sees it, the
//! origin rule, visitors' identities and their sessions' lifetime.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use crate::conversation::{parse_traits, parse_visitor_id};
use crate::error::{Error, Validator};
use crate::secret::verify_user_hash;
use crate::site::Site;
use crate::tenant::Plan;
use crate::widget::{chat_gate, ChatWidget, GateClosed};

/// A visitor's session ends after this long without a question or a vote;
/// the next `POST /sessions` then starts a new one.
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::minutes(30);

/// The longest a session lasts: after this long from its start it is no
/// longer current (the next open starts a new one), however active it
/// was. So a session's `[startedAt, lastActiveAt]` spans at most this,
/// which keeps a date-window query of the Conversations list to a bounded
/// range of its index.
pub const SESSION_MAX_DURATION: Duration = Duration::hours(4);

/// What generating one answer costs the tenant, in credits.
pub const GENERATION_COST: u32 = 1;

/// Everything the widget gate and the SDK's checks need about the site
/// whose API key a request carries: the site, its tenant's plan and its
/// widget, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteGate {
    /// The site.
    pub site: Site,
    /// Its tenant's plan.
    pub plan: Plan,
    /// Its widget, if it has one.
    pub widget: Option<ChatWidget>,
}

impl SiteGate {
    /// The gate ([`chat_gate`]): the widget when the chat may open.
    pub fn open_widget(&self) -> Result<&ChatWidget, GateClosed> {
        chat_gate(&self.site, self.plan, self.widget.as_ref())
    }

    /// [`SiteGate::open_widget`] as a use case's error.
    pub fn require_open(&self) -> Result<&ChatWidget, Error> {
        self.open_widget().map_err(Error::GateClosed)
    }

    /// The origin rule: a browser call (one with an `Origin`) must come
    /// from the site's domain, or a subdomain of it when the site allows
    /// subdomains. Calls without an `Origin` (servers, curl) pass; an
    /// opaque `null` origin never does.
    pub fn admits_origin(&self, origin: Option<&str>) -> Result<(), Error> {
        match origin {
            None => Ok(()),
            Some(origin)
                if self
                    .site
                    .domain
                    .matches_origin(origin, self.site.allow_subdomains) =>
            {
                Ok(())
            }
            Some(_) => Err(Error::OriginNotAllowed),
        }
    }
}

/// A visitor as the widget describes them when it opens a session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VisitorInput {
    /// The id the widget made up and keeps in the browser.
    pub anonymous_id: String,
    /// The site's own id for a signed-in visitor.
    pub external_id: Option<String>,
    /// Free-form traits (email, plan, …).
    pub traits: Option<Value>,
    /// `hex(HMAC-SHA256(identitySecret, externalId))`, computed by the
    /// site's server, when the site verifies identities.
    pub user_hash: Option<String>,
}

/// A visitor's checked identity.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitorIdentity {
    /// The widget's id for the visitor.
    pub anonymous_id: String,
    /// The site's id, when the visitor is identified.
    pub external_id: Option<String>,
    /// Traits, when the widget sent any (`None` keeps the stored ones).
    pub traits: Option<Map<String, Value>>,
    /// Whether `external_id` was signed with the site's identity secret.
    pub verified: bool,
}

impl VisitorInput {
    /// Validates the input and applies the site's identity rule:
    /// - without an `externalId`, the visitor is anonymous (a `userHash`
    ///   alone is refused: there is nothing it could sign);
    /// - on a site with an identity secret, an `externalId` needs the
    ///   `userHash` that secret gives it, else [`Error::IdentityNotVerified`];
    /// - on a site without one, the `externalId` is taken as given and
    ///   marked unverified (a `userHash` is then ignored).
    pub fn verify(&self, site: &Site) -> Result<VisitorIdentity, Error> {
        let mut v = Validator::new();
        let anonymous_id = v.check("anonymousId", parse_visitor_id(&self.anonymous_id));
        let external_id = match &self.external_id {
            Some(raw) => v.check("externalId", parse_visitor_id(raw)),
            None => None,
        };
        let traits = self
            .traits
            .as_ref()
            .filter(|t| !t.is_null())
            .map(|t| parse_traits(Some(t.clone()), &mut v));
        if let Some(hash) = &self.user_hash {
            if self.external_id.is_none() {
                v.push("userHash", "needs an externalId to sign");
            } else if hash.len() > 128 {
                v.push("userHash", "must be at most 128 characters");
            }
        }
        v.finish()?;
        let Some(anonymous_id) = anonymous_id else {
            return Err(Error::Internal("visitor validation lost an error".into()));
        };
        let verified = match (&external_id, &site.identity_secret_hash) {
            (None, _) | (Some(_), None) => false,
            (Some(external), Some(secret)) => {
                let hash = self.user_hash.as_deref().unwrap_or("");
                if !verify_user_hash(secret, external, hash) {
                    return Err(Error::IdentityNotVerified);
                }
                true
            }
        };
        Ok(VisitorIdentity {
            anonymous_id,
            external_id,
            traits,
            verified,
        })
    }
}

/// Whether a request may open a session as the stored visitor with this
/// anonymousId, whose `externalId` is `stored`:
/// - an anonymous visitor may stay anonymous or be identified (signing in
///   keeps the conversation);
/// - an identified visitor is resumed only by a request naming the same
///   `externalId` (verified like any other on a site that verifies).
///
/// Anything else, another person signing in on a shared browser or the
/// same browser after signing out, is [`Error::IdentityConflict`]: it must
/// neither see the identified visitor's conversation nor change their
/// identity or traits. The widget then starts over with a new anonymousId.
pub fn check_identity(stored: Option<&str>, request: &VisitorIdentity) -> Result<(), Error> {
    match (stored, request.external_id.as_deref()) {
        (None, _) => Ok(()),
        (Some(stored), Some(requested)) if stored == requested => Ok(()),
        (Some(_), _) => Err(Error::IdentityConflict),
    }
}

/// Until when a session that started at `started_at` and is idle since
/// `last_active_at` stays current: [`SESSION_IDLE_TIMEOUT`] after its last
/// activity, and no later than [`SESSION_MAX_DURATION`] after its start.
pub fn session_expires_at(
    started_at: DateTime<Utc>,
    last_active_at: DateTime<Utc>,
) -> DateTime<Utc> {
    (last_active_at + SESSION_IDLE_TIMEOUT).min(started_at + SESSION_MAX_DURATION)
}

/// Seconds a rate-limited visitor waits before a new session may start:
/// until the session stops being current (at least 1).
pub fn retry_after_secs(
    started_at: DateTime<Utc>,
    last_active_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> u64 {
    let left = (session_expires_at(started_at, last_active_at) - now).num_seconds();
    u64::try_from(left).unwrap_or(0).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(external_id: Option<&str>) -> VisitorIdentity {
        VisitorIdentity {
            anonymous_id: "anon-1".into(),
            external_id: external_id.map(str::to_string),
            traits: None,
            verified: external_id.is_some(),
        }
    }

    #[test]
    fn an_identified_visitor_is_resumed_only_as_themselves() {
        // (stored externalId, requested externalId, allowed)
        let table = [
            (None, None, true),
            (None, Some("alice"), true),
            (Some("alice"), Some("alice"), true),
            (Some("alice"), Some("bob"), false),
            (Some("alice"), Some("Alice"), false),
            (Some("alice"), None, false),
        ];
        for (stored, requested, allowed) in table {
            let result = check_identity(stored, &identity(requested));
            let expected = if allowed {
                Ok(())
            } else {
                Err(Error::IdentityConflict)
            };
            assert_eq!(result, expected, "{stored:?} then {requested:?}");
        }
        assert_eq!(Error::IdentityConflict.code(), "IDENTITY_CONFLICT");
        assert_eq!(
            Error::IdentityConflict.kind(),
            crate::error::ErrorKind::Conflict
        );
    }
}
