//! Sites: the tenancy boundary, with their domain, name, mapping status,
//! theme, API key and identity secret.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::closed_enum::closed_enum;
use crate::error::Validator;
pub use crate::host::{origin_host, SiteDomain};
use crate::ids::{SiteId, TenantId};
use crate::secret::SecretHash;
use crate::version::Version;

/// The most characters a site name may have.
pub const SITE_NAME_MAX: usize = 20;

/// Checks a site's display name: single-line text
/// ([`crate::text::single_line`]), trimmed, 1–20 characters.
pub fn parse_site_name(raw: &str) -> Result<String, String> {
    crate::text::single_line(raw, 1, SITE_NAME_MAX)
}

closed_enum!(
    /// How far the mapping of a site's pages has got.
    MappingStatus {
        /// Not started.
        Pending => "PENDING",
        /// Running.
        InProgress => "IN_PROGRESS",
        /// Done; the widget may be published.
        Completed => "COMPLETED",
        /// Failed.
        Failed => "FAILED",
    }
);

/// The widget theme a site carries: colours as `#rrggbb` and a font family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Theme {
    /// Main colour (buttons, header).
    pub primary_color: String,
    /// Background colour of the chat panel.
    pub background_color: String,
    /// Text colour.
    pub text_color: String,
    /// CSS font family.
    pub font_family: String,
}

impl Default for Theme {
    fn default() -> Self {
        Theme {
            primary_color: "#4f46e5".into(),
            background_color: "#ffffff".into(),
            text_color: "#111827".into(),
            font_family: "system-ui, sans-serif".into(),
        }
    }
}

impl Theme {
    /// Checks every field, reporting errors under `field_prefix` (e.g.
    /// `theme`); the font family is single-line text without `;{}<>`.
    pub fn validate(&self, field_prefix: &str, v: &mut Validator) {
        for (name, value) in [
            ("primaryColor", &self.primary_color),
            ("backgroundColor", &self.background_color),
            ("textColor", &self.text_color),
        ] {
            if !is_hex_color(value) {
                v.push(
                    &format!("{field_prefix}.{name}"),
                    "must be a colour like #1a2b3c",
                );
            }
        }
        let font = self.font_family.trim();
        if crate::text::check_single_line(&self.font_family).is_err()
            || font.is_empty()
            || font.chars().count() > 100
            || font.contains([';', '{', '}', '<', '>'])
        {
            v.push(
                &format!("{field_prefix}.fontFamily"),
                "must be a CSS font family of 1–100 characters",
            );
        }
    }
}

fn is_hex_color(value: &str) -> bool {
    value.len() == 7 && value.starts_with('#') && value[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A website of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Its id.
    pub id: SiteId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its domain.
    pub domain: SiteDomain,
    /// Display name (≤ 20 characters).
    pub name: String,
    /// Whether subdomains of the domain count as the site.
    pub allow_subdomains: bool,
    /// Mapping progress.
    pub mapping_status: MappingStatus,
    /// The API key's visible prefix, e.g. `cd_live_3f9a1c`.
    pub api_key_prefix: String,
    /// The API key's hash.
    pub api_key_hash: SecretHash,
    /// The identity secret's hash, once verification is turned on.
    pub identity_secret_hash: Option<SecretHash>,
    /// Widget theme.
    pub theme: Theme,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Bumped by every write.
    pub version: Version,
}

impl Site {
    /// The entity tag of the site's representation.
    pub fn entity_tag(&self) -> String {
        crate::version::entity_tag(&[self.version])
    }

    /// Whether visitors' `externalId`s must be signed with the identity secret.
    pub fn identity_verification(&self) -> bool {
        self.identity_secret_hash.is_some()
    }

    /// Whether the site's pages are mapped, which publishing and pausing
    /// the widget need.
    pub fn is_mapped(&self) -> bool {
        self.mapping_status == MappingStatus::Completed
    }
}

/// A new site as a member sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSiteInput {
    /// Domain as typed.
    pub domain: String,
    /// Display name.
    pub name: String,
    /// Whether subdomains count as the site.
    pub allow_subdomains: bool,
    /// Widget theme; the default theme when absent.
    pub theme: Option<Theme>,
}

/// The validated fields of a new site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSite {
    /// Domain.
    pub domain: SiteDomain,
    /// Display name.
    pub name: String,
    /// Whether subdomains count as the site.
    pub allow_subdomains: bool,
    /// Widget theme.
    pub theme: Theme,
}

impl NewSiteInput {
    /// Validates every field.
    pub fn parse(&self) -> Result<NewSite, crate::error::Error> {
        let mut v = Validator::new();
        let domain = v.check("domain", SiteDomain::parse(&self.domain));
        let name = v.check("name", parse_site_name(&self.name));
        let theme = self.theme.clone().unwrap_or_default();
        theme.validate("theme", &mut v);
        v.finish()?;
        match (domain, name) {
            (Some(domain), Some(name)) => Ok(NewSite {
                domain,
                name,
                allow_subdomains: self.allow_subdomains,
                theme,
            }),
            _ => Err(crate::error::Error::Internal(
                "site validation lost an error".into(),
            )),
        }
    }
}

/// A change to a site's editable fields; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SitePatchInput {
    /// New domain.
    pub domain: Option<String>,
    /// New name.
    pub name: Option<String>,
    /// New subdomain rule.
    pub allow_subdomains: Option<bool>,
    /// New theme.
    pub theme: Option<Theme>,
}

/// The columns of a site a write changes; `None` leaves a column as it
/// is. Each use case fills in only what it owns (the Builder's fields, the
/// API key, the mapping, the identity secret), and the store writes only
/// those columns, so concurrent writes of different fields never undo each
/// other.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteChanges {
    /// New domain.
    pub domain: Option<SiteDomain>,
    /// New display name.
    pub name: Option<String>,
    /// New subdomain rule.
    pub allow_subdomains: Option<bool>,
    /// New theme.
    pub theme: Option<Theme>,
    /// New mapping status.
    pub mapping_status: Option<MappingStatus>,
    /// A new API key: its visible prefix and hash.
    pub api_key: Option<(String, SecretHash)>,
    /// A new identity secret's hash (turns verification on).
    pub identity_secret_hash: Option<SecretHash>,
}

impl SiteChanges {
    /// Drops the fields `site` already has, so that writing the rest
    /// changes something (and an empty result changes nothing).
    pub fn without_unchanged(mut self, site: &Site) -> SiteChanges {
        fn keep<T: PartialEq>(new: &mut Option<T>, current: &T) {
            if new.as_ref() == Some(current) {
                *new = None;
            }
        }
        keep(&mut self.domain, &site.domain);
        keep(&mut self.name, &site.name);
        keep(&mut self.allow_subdomains, &site.allow_subdomains);
        keep(&mut self.theme, &site.theme);
        keep(&mut self.mapping_status, &site.mapping_status);
        if self.identity_secret_hash.is_some()
            && self.identity_secret_hash == site.identity_secret_hash
        {
            self.identity_secret_hash = None;
        }
        self
    }

    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == SiteChanges::default()
    }

    /// `site` with these changes made, stamped `now` and one version on
    /// when anything changed.
    pub fn applied_to(&self, mut site: Site, now: DateTime<Utc>) -> Site {
        if self.is_empty() {
            return site;
        }
        if let Some(domain) = &self.domain {
            site.domain = domain.clone();
        }
        if let Some(name) = &self.name {
            site.name = name.clone();
        }
        if let Some(allow) = self.allow_subdomains {
            site.allow_subdomains = allow;
        }
        if let Some(theme) = &self.theme {
            site.theme = theme.clone();
        }
        if let Some(status) = self.mapping_status {
            site.mapping_status = status;
        }
        if let Some((prefix, hash)) = &self.api_key {
            site.api_key_prefix = prefix.clone();
            site.api_key_hash = hash.clone();
        }
        if let Some(hash) = &self.identity_secret_hash {
            site.identity_secret_hash = Some(hash.clone());
        }
        site.updated_at = now;
        site.version = Version(site.version.0 + 1);
        site
    }
}

impl SitePatchInput {
    /// Validates every field named; the result changes only those.
    pub fn parse(&self) -> Result<SiteChanges, crate::error::Error> {
        let mut v = Validator::new();
        let domain = match &self.domain {
            Some(d) => v.check("domain", SiteDomain::parse(d)),
            None => None,
        };
        let name = match &self.name {
            Some(n) => v.check("name", parse_site_name(n)),
            None => None,
        };
        if let Some(theme) = &self.theme {
            theme.validate("theme", &mut v);
        }
        v.finish()?;
        Ok(SiteChanges {
            domain,
            name,
            allow_subdomains: self.allow_subdomains,
            theme: self.theme.clone(),
            ..SiteChanges::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_names() {
        assert_eq!(parse_site_name(" Docs "), Ok("Docs".into()));
        assert!(parse_site_name(&"x".repeat(20)).is_ok());
        assert_eq!(
            parse_site_name(&"x".repeat(21)),
            Err("must be at most 20 characters".into())
        );
        assert!(parse_site_name("  ").is_err());
        // (name, valid): display names are one line of visible text.
        let table = [
            ("Café docs", true),
            ("ドキュメント", true),
            ("Docs 📚", true),
            ("Docs\u{0}", false),
            ("Docs\u{7}", false),
            ("Docs\u{1b}[2J", false),
            ("Docs\u{85}", false),
            ("Docs\u{7f}", false),
            ("Docs\nHelp", false),
            ("Docs\r", false),
            ("\tDocs", false),
            ("Docs\u{202E}cod", false),
            ("Docs\u{2067}x\u{2069}", false),
            ("Do\u{200B}cs", false),
            ("\u{FEFF}Docs", false),
        ];
        for (name, valid) in table {
            assert_eq!(parse_site_name(name).is_ok(), valid, "{name:?}");
        }
    }

    #[test]
    fn domains_reject_control_characters_before_trimming() {
        for raw in [
            "example.com\n",
            "\texample.com",
            "example.com\u{85}",
            "exam\u{0}ple.com",
            "example.com\u{202E}",
        ] {
            assert!(SiteDomain::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn themes() {
        let mut v = Validator::new();
        Theme::default().validate("theme", &mut v);
        assert!(v.finish().is_ok());

        let bad = Theme {
            primary_color: "red".into(),
            background_color: "#fff".into(),
            text_color: "#12345g".into(),
            font_family: "x; color: red".into(),
        };
        let mut v = Validator::new();
        bad.validate("theme", &mut v);
        let err = v.finish().expect_err("invalid theme");
        let fields: Vec<_> = err
            .field_errors()
            .iter()
            .map(|e| e.field.as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "theme.primaryColor",
                "theme.backgroundColor",
                "theme.textColor",
                "theme.fontFamily"
            ]
        );
    }

    #[test]
    fn theme_fonts_are_one_line_of_visible_text() {
        // (font family, valid)
        let table = [
            ("Inter, system-ui, sans-serif", true),
            ("\"Noto Sans JP\", sans-serif", true),
            ("Inter\u{0}", false),
            ("Inter\n", false),
            ("Inter\u{1b}", false),
            ("Inter\u{85}", false),
            ("Inter\u{202E}", false),
        ];
        for (font, valid) in table {
            let theme = Theme {
                font_family: font.into(),
                ..Theme::default()
            };
            let mut v = Validator::new();
            theme.validate("theme", &mut v);
            assert_eq!(v.finish().is_ok(), valid, "{font:?}");
        }
    }

    #[test]
    fn changes_name_only_what_differs_and_bump_the_version() {
        let site = crate::testing::builders::a_site().build();
        let patch = SitePatchInput {
            name: Some(site.name.clone()),
            allow_subdomains: Some(!site.allow_subdomains),
            ..Default::default()
        };
        let changes = patch.parse().unwrap().without_unchanged(&site);
        assert_eq!(changes.name, None);
        assert_eq!(changes.allow_subdomains, Some(!site.allow_subdomains));
        let now = crate::testing::builders::t0() + chrono::Duration::seconds(5);
        let changed = changes.applied_to(site.clone(), now);
        assert_eq!(changed.version, Version(site.version.0 + 1));
        assert_eq!(changed.updated_at, now);
        assert_eq!(changed.name, site.name);
        let same = SiteChanges::default().applied_to(site.clone(), now);
        assert_eq!(same, site);
        let err = SitePatchInput {
            name: Some(String::new()),
            domain: Some("not a domain".into()),
            ..Default::default()
        }
        .parse()
        .unwrap_err();
        let fields: Vec<_> = err
            .field_errors()
            .iter()
            .map(|e| e.field.as_str())
            .collect();
        assert_eq!(fields, ["domain", "name"]);
    }
}
