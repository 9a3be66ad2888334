//! JSON shapes of the dashboard API. Domain types never go over the wire
//! directly; each view is built here from them.

mod content;
mod widget;

pub use content::*;
pub use widget::*;

use std::borrow::Cow;

use chatdesk_domain::content::{ContentItem, ContentKind, ContentStatus};
use chatdesk_domain::site::{MappingStatus, Site, Theme};
use chatdesk_domain::tenant::{Plan, Role, Tenant, TenantMember};
use chatdesk_domain::widget::{ChatWidget, WidgetPosition, WidgetStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

/// Gives a domain enum an OpenAPI schema listing its values, so the
/// document is generated from the same `ALL` list the server parses with.
macro_rules! enum_schema {
    ($schema:ident, $domain:ty, $doc:literal) => {
        #[doc = $doc]
        pub struct $schema;

        impl PartialSchema for $schema {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some($doc))
                    .enum_values(Some(<$domain>::ALL.iter().map(|v| v.as_str())))
                    .into()
            }
        }

        impl ToSchema for $schema {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($schema))
            }
        }
    };
}

// After the macro: these shapes use it.
mod conversations;
pub mod sdk;
mod tickets;

pub use conversations::*;
pub use tickets::*;

enum_schema!(PlanSchema, Plan, "A tenant's plan.");
enum_schema!(
    RoleSchema,
    Role,
    "A member's role, weakest first: MEMBER, MANAGER, ADMIN, OWNER."
);
enum_schema!(
    MappingStatusSchema,
    MappingStatus,
    "How far the mapping of the site's pages has got."
);
enum_schema!(
    WidgetStatusSchema,
    WidgetStatus,
    "Whether the widget is live."
);
enum_schema!(
    WidgetPositionSchema,
    WidgetPosition,
    "Where the widget sits on the page."
);
enum_schema!(ContentKindSchema, ContentKind, "Flow or Tooltip.");
enum_schema!(
    ContentStatusSchema,
    ContentStatus,
    "Whether visitors can see the item."
);

/// A team member.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    /// Member id.
    pub id: Uuid,
    /// Email (lower-cased).
    pub email: String,
    /// Role.
    #[schema(value_type = RoleSchema)]
    pub role: Role,
    /// When the member was added.
    pub created_at: DateTime<Utc>,
}

impl From<&TenantMember> for MemberView {
    fn from(m: &TenantMember) -> Self {
        MemberView {
            id: m.id.as_uuid(),
            email: m.email.to_string(),
            role: m.role,
            created_at: m.created_at,
        }
    }
}

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantView {
    /// Tenant id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Plan.
    #[schema(value_type = PlanSchema)]
    pub plan: Plan,
    /// AI credits left.
    pub credits: i64,
}

impl From<&Tenant> for TenantView {
    fn from(t: &Tenant) -> Self {
        TenantView {
            id: t.id.as_uuid(),
            name: t.name.clone(),
            plan: t.plan,
            credits: t.credits,
        }
    }
}

/// The signed-in member and its tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The member.
    pub member: MemberView,
    /// Its tenant.
    pub tenant: TenantView,
}

/// `POST /members` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// Email of the new member.
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    /// Role to grant; only an OWNER may grant OWNER.
    #[schema(value_type = RoleSchema)]
    pub role: String,
}

/// A new member and its dashboard token, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct AddedMember {
    /// The member.
    pub member: MemberView,
    /// Its dashboard token (`cd_pat_…`); not shown again.
    pub token: String,
}

/// A site's widget theme.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThemeView {
    /// Main colour, `#rrggbb`.
    #[schema(example = "#4f46e5")]
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    pub primary_color: String,
    /// Panel background, `#rrggbb`.
    #[schema(example = "#ffffff")]
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    pub background_color: String,
    /// Text colour, `#rrggbb`.
    #[schema(example = "#111827")]
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    pub text_color: String,
    /// CSS font family (1–100 characters).
    #[schema(example = "Inter, sans-serif")]
    #[schema(min_length = 1, max_length = 100)]
    pub font_family: String,
}

impl From<&Theme> for ThemeView {
    fn from(t: &Theme) -> Self {
        ThemeView {
            primary_color: t.primary_color.clone(),
            background_color: t.background_color.clone(),
            text_color: t.text_color.clone(),
            font_family: t.font_family.clone(),
        }
    }
}

impl From<ThemeView> for Theme {
    fn from(t: ThemeView) -> Self {
        Theme {
            primary_color: t.primary_color,
            background_color: t.background_color,
            text_color: t.text_color,
            font_family: t.font_family,
        }
    }
}

/// A site. The full API key is only in the create and regenerate answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteView {
    /// Site id.
    pub id: Uuid,
    /// Domain, lower-cased.
    pub domain: String,
    /// Display name (≤ 20 characters).
    pub name: String,
    /// Whether subdomains of the domain count as the site.
    pub allow_subdomains: bool,
    /// Mapping status.
    #[schema(value_type = MappingStatusSchema)]
    pub mapping_status: MappingStatus,
    /// The API key's visible prefix, e.g. `cd_live_3f9a1c`.
    pub api_key_prefix: String,
    /// Whether visitors' external ids must be signed (see identity-secret).
    pub identity_verification: bool,
    /// Widget theme.
    pub theme: ThemeView,
    /// When the site was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<&Site> for SiteView {
    fn from(s: &Site) -> Self {
        SiteView {
            id: s.id.as_uuid(),
            domain: s.domain.to_string(),
            name: s.name.clone(),
            allow_subdomains: s.allow_subdomains,
            mapping_status: s.mapping_status,
            api_key_prefix: s.api_key_prefix.clone(),
            identity_verification: s.identity_verification(),
            theme: ThemeView::from(&s.theme),
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// `POST /sites` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSite {
    /// Bare domain, e.g. `example.com`: a host name (letters, digits and
    /// hyphens in dot-separated labels, not an IP address; lower-cased on
    /// the way in; ≤ 253 characters).
    #[schema(min_length = 1, max_length = 253, example = "docs.example.com")]
    #[schema(
        pattern = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
    )]
    pub domain: String,
    /// Display name, 1–20 characters on one line, not blank (no control,
    /// line-breaking or invisible formatting characters).
    #[schema(min_length = 1, max_length = 20)]
    #[schema(
        pattern = r"^[^\u0000-\u001F\u007F-\u009F\u2028\u2029\u061C\u180E\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF\uFFF9-\uFFFB]*[^\s\u0000-\u001F\u007F-\u009F\u2028\u2029\u061C\u180E\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF\uFFF9-\uFFFB][^\u0000-\u001F\u007F-\u009F\u2028\u2029\u061C\u180E\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF\uFFF9-\uFFFB]*$"
    )]
    pub name: String,
    /// Whether subdomains count as the site (default false).
    #[serde(default)]
    pub allow_subdomains: bool,
    /// Widget theme (default theme when absent).
    pub theme: Option<ThemeView>,
}

/// A new site and its API key, shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedSite {
    /// The site.
    pub site: SiteView,
    /// The full API key (`cd_live_…`); not shown again.
    pub api_key: String,
}

/// `PATCH /sites/{siteId}` body; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateSite {
    /// New domain (a host name, as on create).
    #[schema(min_length = 1, max_length = 253)]
    #[schema(
        pattern = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
    )]
    pub domain: Option<String>,
    /// New name (1–20 characters on one line, as on create).
    #[schema(min_length = 1, max_length = 20)]
    #[schema(
        pattern = r"^[^\u0000-\u001F\u007F-\u009F\u2028\u2029\u061C\u180E\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF\uFFF9-\uFFFB]*[^\s\u0000-\u001F\u007F-\u009F\u2028\u2029\u061C\u180E\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF\uFFF9-\uFFFB][^\u0000-\u001F\u007F-\u009F\u2028\u2029\u061C\u180E\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF\uFFF9-\uFFFB]*$"
    )]
    pub name: Option<String>,
    /// New subdomain rule.
    pub allow_subdomains: Option<bool>,
    /// New theme (replaces the whole theme).
    pub theme: Option<ThemeView>,
}

/// A regenerated API key, shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegeneratedKey {
    /// The full new key; the old one no longer works.
    pub api_key: String,
    /// Its visible prefix.
    pub api_key_prefix: String,
}

/// A new identity secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedIdentitySecret {
    /// Sign visitors' external ids with it:
    /// `userHash = hex(HMAC-SHA256(identitySecret, externalId))`.
    pub identity_secret: String,
}

/// `PUT /sites/{siteId}/mapping` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMapping {
    /// The new mapping status.
    #[schema(value_type = MappingStatusSchema)]
    pub status: String,
}
