//! The data every scenario starts from, made through the use cases on the
//! scenario's database: one PRO tenant (with some AI credits) and one
//! mapped site with a published widget (whose support address receives
//! the tickets) and a published Flow that questions can name.

use chatdesk::config::Config;
use chatdesk_domain::content::NewContentInput;
use chatdesk_domain::site::NewSiteInput;
use chatdesk_domain::tenant::Plan;
use chatdesk_domain::version::Precondition;
use chatdesk_domain::widget::{NamedSettings, WidgetSettingsInput};

use crate::Result;

/// The Flow a matched question names.
pub(crate) const FLOW: &str = "Export invoices";
/// Where the site's tickets are emailed.
pub(crate) const SUPPORT: &str = "support@chaos.example.com";

/// What the clients need.
#[derive(Debug, Clone)]
pub(crate) struct Seeded {
    /// The SDK's site key.
    pub(crate) key: String,
    /// The OWNER's dashboard token.
    pub(crate) token: String,
    pub(crate) site_id: String,
}

/// Migrates `database_url` and makes the tenant and its site; the widget
/// allows `rate_limit` questions per session and the tenant has
/// `credits`.
pub(crate) fn seed(database_url: &str, rate_limit: i64, credits: i64) -> Result<Seeded> {
    let mut config = Config::from_env(Some(database_url.to_string()))?;
    config.pool_size = 2;
    let app = chatdesk::services(chatdesk::open_store(&config)?, None, false);
    let created = app
        .tenancy
        .create_tenant("Chaos", Plan::Pro, "owner@chaos.example.com")?;
    if credits > 0 {
        app.tenancy.add_credits(created.tenant.id, credits)?;
    }
    let owner = app.tenancy.authenticate(Some(&created.token))?;
    let site = app.sites.create_site(
        &owner,
        &NewSiteInput {
            domain: "help.chaos.example.com".into(),
            name: "Chaos help".into(),
            allow_subdomains: false,
            theme: None,
        },
    )?;
    let (key, site) = (site.secret, site.value.id);
    app.sites
        .set_mapping(&owner, site, "COMPLETED", &Precondition::None)?;
    app.widgets.save_widget(
        &owner,
        site,
        &WidgetSettingsInput {
            welcome_message: "Hi! Ask me how to do anything.".into(),
            disclaimer: None,
            position: "BOTTOM_RIGHT".into(),
            support_email: Some(SUPPORT.into()),
            persona: None,
            insufficient_credits_message: Some("We are out of answers for today.".into()),
            rate_limit_per_session: Some(rate_limit),
            named: NamedSettings::ALL,
        },
        &Precondition::None,
    )?;
    app.widgets.publish_widget(&owner, site)?;
    app.content.create_content(
        &owner,
        site,
        &NewContentInput {
            kind: "FLOW".into(),
            name: FLOW.into(),
            description: Some("Download every invoice of a period as a CSV file.".into()),
            status: Some("PUBLISHED".into()),
            audiences: Vec::new(),
        },
    )?;
    Ok(Seeded {
        key,
        token: created.token,
        site_id: site.to_string(),
    })
}
