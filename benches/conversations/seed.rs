//! What the use cases make (as the CLI and the dashboard would): one PRO
//! tenant with its owner, a MEMBER who reads the conversations, one
//! mapped site with a published widget, and a small published library
//! the generated answers point at.

use chatdesk_api::Services;
use chatdesk_domain::site::NewSiteInput;
use chatdesk_domain::tenant::Plan;
use chatdesk_domain::version::Precondition;
use chatdesk_domain::widget::{NamedSettings, WidgetSettingsInput};

use crate::Result;

/// How many Flows and Tooltips the site's library holds.
const LIBRARY: usize = 60;

/// A library item as the generated messages reference it.
pub(crate) struct Item {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) name: String,
}

/// The ids and tokens the rest of the run needs.
pub(crate) struct Seeded {
    pub(crate) tenant: String,
    pub(crate) site: String,
    pub(crate) widget: String,
    /// The OWNER (who resolves the generated tickets).
    pub(crate) owner: String,
    /// A MEMBER's dashboard token: the list is read with it.
    pub(crate) member_token: String,
    pub(crate) items: Vec<Item>,
}

pub(crate) const TASKS: [&str; 12] = [
    "invite a teammate",
    "export a report as CSV",
    "change the billing address",
    "set up single sign-on",
    "connect the Slack integration",
    "archive an old project",
    "reset two-factor authentication",
    "add a custom field",
    "schedule a weekly digest",
    "change a member's role",
    "import contacts from a spreadsheet",
    "turn on dark mode",
];

pub(crate) fn seed(app: &Services) -> Result<Seeded> {
    let created = app.tenancy.create_tenant(
        "Bench Conversations",
        Plan::Pro,
        "owner@conversations.bench.example.com",
    )?;
    let owner = app.tenancy.authenticate(Some(&created.token))?;
    let member =
        app.tenancy
            .add_member(&owner, "reader@conversations.bench.example.com", "MEMBER")?;
    let site = app
        .sites
        .create_site(
            &owner,
            &NewSiteInput {
                domain: "help.conversations.bench.example.com".into(),
                name: "Bench help centre".into(),
                allow_subdomains: false,
                theme: None,
            },
        )?
        .value
        .id;
    app.sites
        .set_mapping(&owner, site, "COMPLETED", &Precondition::None)?;
    app.widgets.save_widget(
        &owner,
        site,
        &WidgetSettingsInput {
            welcome_message: "Hi! Ask me how to do anything in Bench.".into(),
            disclaimer: None,
            position: "BOTTOM_RIGHT".into(),
            support_email: Some("support@conversations.bench.example.com".into()),
            persona: None,
            insufficient_credits_message: None,
            rate_limit_per_session: None,
            named: NamedSettings::ALL,
        },
        &Precondition::None,
    )?;
    let widget = app.widgets.publish_widget(&owner, site)?.widget.id;
    let mut items = Vec::with_capacity(LIBRARY);
    for i in 0..LIBRARY {
        let task = TASKS[i % TASKS.len()];
        let input = chatdesk_domain::content::NewContentInput {
            kind: if i % 3 == 2 { "TOOLTIP" } else { "FLOW" }.into(),
            name: format!("How to {task} ({})", i / TASKS.len() + 1),
            description: Some(format!(
                "Walks you through the settings: how to {task}, step by step."
            )),
            status: Some("PUBLISHED".into()),
            audiences: vec!["Everyone".into()],
        };
        let made = app.content.create_content(&owner, site, &input)?;
        items.push(Item {
            id: made.id.to_string(),
            kind: made.kind.as_str().to_string(),
            name: made.name,
        });
    }
    Ok(Seeded {
        tenant: created.tenant.id.to_string(),
        site: site.to_string(),
        widget: widget.to_string(),
        owner: created.owner.id.to_string(),
        member_token: member.secret,
        items,
    })
}
