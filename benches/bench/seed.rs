//! The data every measurement reads: one PRO tenant, one site and its
//! content library, made through the use cases.

use chatdesk_api::Services;
use chatdesk_domain::content::NewContentInput;
use chatdesk_domain::ids::SiteId;
use chatdesk_domain::site::NewSiteInput;
use chatdesk_domain::tenant::Plan;

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
