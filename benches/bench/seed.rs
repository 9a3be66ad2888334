//! The data every measurement reads, made through the use cases: one PRO
//! tenant, one site and its content library ([`seed`]); for the SDK, a
//! site whose chat is open, with a generated library ([`seed_widget_site`]).

use chatdesk_api::Services;
use chatdesk_domain::content::{ContentKind, ContentStatus, NewContentInput};
use chatdesk_domain::ids::{ContentId, SiteId, WidgetId};
use chatdesk_domain::site::NewSiteInput;
use chatdesk_domain::tenant::Plan;
use chatdesk_domain::version::Precondition;
use chatdesk_domain::widget::{NamedSettings, WidgetSettingsInput};

use crate::catalog::LibraryItem;
use crate::Result;

/// A tenant's owner token and the site holding the library.
pub(crate) struct Seeded {
    pub(crate) token: String,
    pub(crate) site: SiteId,
}

/// One PRO tenant, one site and `items` content items, through the use
/// cases (as the CLI and the API would make them).
pub(crate) fn seed(app: &Services, items: usize) -> Result<Seeded> {
    let created = app
        .tenancy
        .create_tenant("Bench", Plan::Pro, "owner@bench.example.com")?;
    let actor = app.tenancy.authenticate(Some(&created.token))?;
    let site = app
        .sites
        .create_site(
            &actor,
            &NewSiteInput {
                domain: "docs.bench.example.com".into(),
                name: "Bench docs".into(),
                allow_subdomains: false,
                theme: None,
            },
        )?
        .value;
    for i in 0..items {
        let mut audiences = vec!["Admins".to_string()];
        if i % 4 == 0 {
            audiences.push("Editors".to_string());
        }
        let input = NewContentInput {
            kind: if i % 2 == 0 { "FLOW" } else { "TOOLTIP" }.into(),
            name: format!("Guide {i:04}: set up feature {}", i % 37),
            description: Some(
                "A walk through the settings page: the buttons to press, \
                 in order, and what each one changes."
                    .into(),
            ),
            status: Some(if i % 3 == 2 { "DRAFT" } else { "PUBLISHED" }.into()),
            audiences,
        };
        app.content.create_content(&actor, site.id, &input)?;
    }
    Ok(Seeded {
        token: created.token,
        site: site.id,
    })
}

/// A published item of a widget site's library, as questions name it.
#[derive(Debug, Clone)]
pub(crate) struct Published {
    pub(crate) id: ContentId,
    pub(crate) kind: ContentKind,
    pub(crate) name: String,
    /// A question that names it verbatim.
    pub(crate) question: String,
}

/// A site whose chat is open: its key, widget and published library.
pub(crate) struct WidgetSite {
    pub(crate) key: String,
    pub(crate) site: SiteId,
    pub(crate) widget: WidgetId,
    /// The site's domain; browsers on `https://{domain}` may call the SDK.
    pub(crate) domain: String,
    pub(crate) published: Vec<Published>,
}

/// One PRO tenant and one site on `domain`, mapped, with a published
/// widget (default settings: 20 questions per session) and `library` as
/// its content, 4 in 5 items PUBLISHED; made through the use cases.
pub(crate) fn seed_widget_site(
    app: &Services,
    domain: &str,
    library: &[LibraryItem],
) -> Result<WidgetSite> {
    let created =
        app.tenancy
            .create_tenant("Bench SDK", Plan::Pro, "owner@sdk.bench.example.com")?;
    let actor = app.tenancy.authenticate(Some(&created.token))?;
    let site = app.sites.create_site(
        &actor,
        &NewSiteInput {
            domain: domain.into(),
            name: "Bench help".into(),
            allow_subdomains: false,
            theme: None,
        },
    )?;
    let (key, site) = (site.secret, site.value.id);
    app.sites
        .set_mapping(&actor, site, "COMPLETED", &Precondition::None)?;
    app.widgets.save_widget(
        &actor,
        site,
        &WidgetSettingsInput {
            welcome_message: "Hi! Ask me how to do anything in Bench.".into(),
            disclaimer: None,
            position: "BOTTOM_RIGHT".into(),
            support_email: None,
            persona: None,
            insufficient_credits_message: None,
            rate_limit_per_session: None,
            named: NamedSettings::ALL,
        },
        &Precondition::None,
    )?;
    let widget = app.widgets.publish_widget(&actor, site)?.widget.id;
    let mut published = Vec::new();
    for (i, item) in library.iter().enumerate() {
        let status = if i % 5 == 4 { "DRAFT" } else { "PUBLISHED" };
        let input = NewContentInput {
            kind: item.kind.as_str().into(),
            name: item.name.clone(),
            description: Some(item.description.clone()),
            status: Some(status.into()),
            audiences: vec!["Everyone".to_string()],
        };
        let made = app.content.create_content(&actor, site, &input)?;
        if made.status == ContentStatus::Published {
            published.push(Published {
                id: made.id,
                kind: made.kind,
                name: made.name,
                question: item.named_question(i),
            });
        }
    }
    Ok(WidgetSite {
        key,
        site,
        widget,
        domain: domain.to_string(),
        published,
    })
}
