//! The demo of `make run` (`chatdesk serve --demo`): a tenant with a site
//! on `localhost`, a published widget, guides and a few conversations, made
//! through the same use cases as the dashboard's and the widget's requests,
//! and a customer's page embedding the widget ([`page`]).
//!
//! Which database is touched:
//! - no tenant at all: the demo is seeded;
//! - nothing but the demo's tenant: nothing is added; the owner's token
//!   and the site's key are issued again (only their hashes are stored, so
//!   the previous ones cannot be shown), and the old ones stop working;
//! - any other tenant: nothing is read beyond the tenant list and nothing
//!   is changed.

pub mod page;

use std::sync::Arc;

use chatdesk_domain::content::NewContentInput;
use chatdesk_domain::conversation::MessageRole;
use chatdesk_domain::ids::{SessionId, SiteId};
use chatdesk_domain::ports::PageRequest;
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::services::OperatorService;
use chatdesk_domain::site::{NewSiteInput, Theme};
use chatdesk_domain::tenant::{Actor, Plan, Tenant};
use chatdesk_domain::ticket::TicketRequest;
use chatdesk_domain::version::Precondition;
use chatdesk_domain::visitor::{SiteGate, VisitorInput};
use chatdesk_domain::widget::{NamedSettings, WidgetSettingsInput};
use chatdesk_domain::Error;
use serde_json::json;

use crate::Config;

/// The demo tenant's name.
pub const TENANT_NAME: &str = "Demo Outfitters";
/// Its owner's email (the `.test` domain receives no mail).
pub const OWNER_EMAIL: &str = "owner@demo.chatdesk.test";
/// Its plan (the widget needs PRO or ENTERPRISE).
pub const PLAN: Plan = Plan::Pro;
/// The AI credits it starts with.
pub const CREDITS: i64 = 500;
/// The demo site's domain: the demo page is served on `localhost`.
pub const SITE_DOMAIN: &str = "localhost";
/// Where its support tickets go.
pub const SUPPORT_EMAIL: &str = "support@demo.chatdesk.test";
/// Where the demo page listens unless `DEMO_BIND_ADDR` says otherwise.
pub const DEFAULT_PAGE_BIND: &str = "127.0.0.1:8081";

/// The published guides: (kind, name, description). Their names are what
/// a visitor types, and a question containing one is answered with it.
pub const GUIDES: [(&str, &str, &str); 5] = [
    (
        "FLOW",
        "Track my order",
        "Where an order's status and the parcel's tracking link are",
    ),
    (
        "FLOW",
        "Return an item",
        "Start a return from the order page and print the return label",
    ),
    (
        "FLOW",
        "Change my delivery address",
        "Edit the address of an order that has not shipped yet",
    ),
    (
        "TOOLTIP",
        "Gift cards",
        "Where to enter a gift card code at checkout",
    ),
    (
        "TOOLTIP",
        "Size guide",
        "The size chart on every product page",
    ),
];

/// Questions a visitor of the demo page may ask, each naming a guide.
pub const QUESTIONS_TO_TRY: [&str; 5] = [
    "How do I track my order?",
    "I want to return an item",
    "Do you have a size guide?",
    "Where do I enter gift cards?",
    "How do I change my delivery address?",
];

/// One visitor's seeded conversation.
struct Visit {
    anonymous_id: &'static str,
    external_id: Option<&'static str>,
    traits: Option<serde_json::Value>,
    /// Each question with the vote its answer gets.
    questions: &'static [(&'static str, Option<&'static str>)],
    /// A ticket opened after the conversation: (subject, body).
    ticket: Option<(&'static str, &'static str)>,
}

fn visits() -> [Visit; 3] {
    [
        Visit {
            anonymous_id: "demo-visitor-ada",
            external_id: Some("customer-1001"),
            traits: Some(json!({"email": "ada@example.com", "name": "Ada", "plan": "member"})),
            questions: &[
                ("How do I track my order?", Some("UP")),
                ("Do you have a size guide?", Some("UP")),
            ],
            ticket: None,
        },
        Visit {
            anonymous_id: "demo-visitor-ben",
            external_id: None,
            traits: Some(json!({"email": "ben@example.com"})),
            questions: &[("I want to return an item I bought last week", Some("DOWN"))],
            ticket: Some((
                "The return label does not print",
                "The return page shows an error when I try to print the label for order 1042.",
            )),
        },
        Visit {
            anonymous_id: "demo-visitor-cleo",
            external_id: None,
            traits: None,
            questions: &[
                ("Where do I enter gift cards?", Some("DOWN")),
                ("How do I change my delivery address?", None),
            ],
            ticket: None,
        },
    ]
}

/// The demo's credentials, issued by this start.
#[derive(Debug, Clone)]
pub struct DemoAccess {
    /// The demo tenant.
    pub tenant: Tenant,
    /// The owner's dashboard token.
    pub owner_token: String,
    /// The demo site, unless it was deleted since the demo was seeded.
    pub site: Option<DemoSite>,
    /// Whether this start seeded the demo (else it re-issued the
    /// credentials of the demo seeded before).
    pub seeded: bool,
}

/// The demo site and its API key.
#[derive(Debug, Clone)]
pub struct DemoSite {
    /// Its id.
    pub id: SiteId,
    /// Its API key (`cd_live_…`), for the widget's snippet.
    pub key: String,
}

/// What `--demo` did to the database.
#[derive(Debug, Clone)]
pub enum Prepared {
    /// The demo is there and its credentials were issued.
    Ready(DemoAccess),
    /// The database holds another tenant; nothing was changed.
    Untouched {
        /// How many tenants were seen (at most 2 are read).
        tenants_seen: usize,
    },
}

/// Seeds the demo into an empty database, or issues the credentials of
/// the demo it holds, or leaves a database with other tenants untouched
/// (see the module's description).
pub fn prepare(config: &Config) -> Result<Prepared, String> {
    let store = Arc::new(crate::open_store(config)?);
    let operator = crate::operator(&store);
    let services = crate::services((*store).clone(), None, false);
    let tenants = operator
        .oldest_tenants(2)
        .map_err(|e| format!("cannot list the tenants: {e}"))?;
    match tenants.as_slice() {
        [] => seed(&services)
            .map(Prepared::Ready)
            .map_err(|e| format!("cannot seed the demo: {}", crate::describe_error(&e))),
        [only] if is_demo(&operator, only)? => reissue(&operator, &services, only.clone())
            .map(Prepared::Ready)
            .map_err(|e| {
                format!(
                    "cannot issue the demo's credentials: {}",
                    crate::describe_error(&e)
                )
            }),
        _ => Ok(Prepared::Untouched {
            tenants_seen: tenants.len(),
        }),
    }
}

/// Whether `tenant` is the demo's: its name and its owner's email.
fn is_demo(operator: &OperatorService, tenant: &Tenant) -> Result<bool, String> {
    if tenant.name != TENANT_NAME {
        return Ok(false);
    }
    let owner = operator
        .owner(tenant.id)
        .map_err(|e| format!("cannot read the demo tenant's owner: {e}"))?;
    Ok(owner.is_some_and(|o| o.email.as_str() == OWNER_EMAIL))
}

fn all() -> PageRequest<SiteId> {
    PageRequest {
        limit: 100,
        after: None,
    }
}

/// Issues a new owner token and site key for the demo seeded before.
fn reissue(
    operator: &OperatorService,
    services: &chatdesk_api::Services,
    tenant: Tenant,
) -> Result<DemoAccess, Error> {
    let owner = operator.reissue_owner_token(tenant.id)?;
    let actor = services.tenancy.authenticate(Some(&owner.secret))?;
    let site = services
        .sites
        .list_sites(&actor, &all())?
        .items
        .into_iter()
        .find(|s| s.domain.as_str() == SITE_DOMAIN);
    let site = match site {
        Some(site) => {
            let regenerated = services.sites.regenerate_api_key(&actor, site.id)?;
            Some(DemoSite {
                id: site.id,
                key: regenerated.secret,
            })
        }
        None => None,
    };
    Ok(DemoAccess {
        tenant: actor.tenant,
        owner_token: owner.secret,
        site,
        seeded: false,
    })
}

/// Seeds the whole demo through the use cases.
fn seed(services: &chatdesk_api::Services) -> Result<DemoAccess, Error> {
    let created = services
        .tenancy
        .create_tenant(TENANT_NAME, PLAN, OWNER_EMAIL)?;
    services.tenancy.add_credits(created.tenant.id, CREDITS)?;
    let actor = services.tenancy.authenticate(Some(&created.token))?;
    let site = seed_site(services, &actor)?;
    seed_conversations(services, &site.key)?;
    Ok(DemoAccess {
        tenant: services.tenancy.authenticate(Some(&created.token))?.tenant,
        owner_token: created.token,
        site: Some(site),
        seeded: true,
    })
}

/// The site, mapped, with a published widget and published guides.
fn seed_site(services: &chatdesk_api::Services, actor: &Actor) -> Result<DemoSite, Error> {
    let created = services.sites.create_site(
        actor,
        &NewSiteInput {
            domain: SITE_DOMAIN.into(),
            name: TENANT_NAME.into(),
            allow_subdomains: false,
            theme: Some(Theme {
                primary_color: "#0f766e".into(),
                background_color: "#f8fafc".into(),
                text_color: "#1e293b".into(),
                font_family: "system-ui, sans-serif".into(),
            }),
        },
    )?;
    let site = created.value.id;
    services
        .sites
        .set_mapping(actor, site, "COMPLETED", &Precondition::None)?;
    services.widgets.save_widget(
        actor,
        site,
        &WidgetSettingsInput {
            welcome_message: "Hi! I'm the Demo Outfitters helper. Ask me how to do something in \
                              the shop: tracking an order, returns, sizes, gift cards."
                .into(),
            disclaimer: Some(
                "Answers point at the shop's own guides. This is chatdesk's demo: tickets go \
                 to chatdesk's log unless mail is set up."
                    .into(),
            ),
            position: "BOTTOM_RIGHT".into(),
            support_email: Some(SUPPORT_EMAIL.into()),
            persona: Some(
                "You are the friendly help assistant of Demo Outfitters, an outdoor gear shop."
                    .into(),
            ),
            insufficient_credits_message: Some(
                "The assistant has answered all it can for today; please open a support ticket."
                    .into(),
            ),
            rate_limit_per_session: Some(20),
            named: NamedSettings::ALL,
        },
        &Precondition::None,
    )?;
    services.widgets.publish_widget(actor, site)?;
    for (kind, name, description) in GUIDES {
        services.content.create_content(
            actor,
            site,
            &NewContentInput {
                kind: kind.into(),
                name: name.into(),
                description: Some(description.into()),
                status: Some("PUBLISHED".into()),
                audiences: Vec::new(),
            },
        )?;
    }
    Ok(DemoSite {
        id: site,
        key: created.secret,
    })
}

/// The visitors' conversations, through the widget's use cases.
fn seed_conversations(services: &chatdesk_api::Services, key: &str) -> Result<(), Error> {
    let visitors = &services.visitors;
    let key = SecretHash::of(key);
    let gate: SiteGate = visitors
        .gate(&key)?
        .ok_or_else(|| Error::Internal("the demo site's new key is unknown".into()))?;
    for visit in visits() {
        let opened = visitors.open_session(
            &gate,
            &key,
            &VisitorInput {
                anonymous_id: visit.anonymous_id.into(),
                external_id: visit.external_id.map(str::to_string),
                traits: visit.traits.clone(),
                user_hash: None,
            },
        )?;
        let token = opened.secret.as_str();
        let session: SessionId = opened.value.session.id;
        for (question, vote) in visit.questions {
            let answered = visitors.ask(&gate, &key, Some(token), session, question)?;
            if answered.reply.role != MessageRole::Assistant {
                return Err(Error::Internal(format!(
                    "the demo question {question:?} was not answered with a guide"
                )));
            }
            if let Some(vote) = vote {
                visitors.vote(&key, Some(token), answered.reply.id, vote)?;
            }
        }
        if let Some((subject, body)) = visit.ticket {
            visitors.open_ticket(
                &gate,
                &key,
                Some(token),
                session,
                &TicketRequest {
                    email: None,
                    subject: subject.into(),
                    body: body.into(),
                },
            )?;
        }
    }
    Ok(())
}
