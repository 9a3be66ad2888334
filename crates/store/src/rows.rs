//! Rows as stored, private to the store, and their mapping to and from the
//! domain types. Ids are hyphenated lower-case UUID text, instants are UTC
//! `TIMESTAMP`s truncated to microseconds, enums their `as_str()` names,
//! and JSON is text.

use std::str::FromStr;

use chatdesk_domain::content::{Audience, ContentItem, GeneratedFrom};
use chatdesk_domain::email::Email;
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::site::{Site, SiteChanges, SiteDomain, Theme};
use chatdesk_domain::tenant::{Tenant, TenantMember};
use chatdesk_domain::version::Version;
use chatdesk_domain::widget::{ChatWidget, WidgetSettings};
use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::error::StoreError;
use crate::schema::{chat_widgets, content_items, sites, tenant_members, tenants};

mod tickets;
mod visitor;

pub(crate) use tickets::{DeliveryRow, TicketRow};
pub(crate) use visitor::{traits_json, EndUserRow, MessageRow, ReplyChangeset, SessionRow};

/// An instant as stored: UTC, microsecond precision.
pub(crate) fn to_db_time(instant: DateTime<Utc>) -> NaiveDateTime {
    instant.trunc_subsecs(6).naive_utc()
}

/// `instant` as it reads back once stored (to the microsecond), so what a
/// write returns equals what a later read gives.
pub(crate) fn as_stored(instant: DateTime<Utc>) -> DateTime<Utc> {
    from_db_time(to_db_time(instant))
}

/// A stored instant.
pub(crate) fn from_db_time(stored: NaiveDateTime) -> DateTime<Utc> {
    stored.and_utc()
}

/// Reads a stored value with `parse`, reporting a bad one as
/// [`StoreError::InvalidValue`] of `table.column`.
fn read<T, E: std::fmt::Display>(
    table: &'static str,
    column: &'static str,
    parsed: Result<T, E>,
) -> Result<T, StoreError> {
    parsed.map_err(|e| StoreError::InvalidValue {
        table,
        column,
        message: e.to_string(),
    })
}

pub(crate) fn read_id<T: From<Uuid>>(
    table: &'static str,
    column: &'static str,
    value: &str,
) -> Result<T, StoreError> {
    read(table, column, Uuid::parse_str(value)).map(T::from)
}

pub(crate) fn read_enum<T: FromStr<Err = String>>(
    table: &'static str,
    column: &'static str,
    value: &str,
) -> Result<T, StoreError> {
    read(
        table,
        column,
        value.parse::<T>().map_err(|e| format!("{value:?} {e}")),
    )
}

fn read_hash(
    table: &'static str,
    column: &'static str,
    value: &str,
) -> Result<SecretHash, StoreError> {
    read(
        table,
        column,
        SecretHash::from_hex(value).ok_or("not a 64-character hex SHA-256 hash"),
    )
}

pub(crate) fn read_email(
    table: &'static str,
    column: &'static str,
    value: &str,
) -> Result<Email, StoreError> {
    read(table, column, Email::parse(value))
}

pub(crate) fn read_u32(
    table: &'static str,
    column: &'static str,
    value: i32,
) -> Result<u32, StoreError> {
    read(table, column, u32::try_from(value))
}

fn write_i32(column: &'static str, value: u32) -> Result<i32, StoreError> {
    i32::try_from(value).map_err(|_| StoreError::OutOfRange {
        column,
        value: value.to_string(),
    })
}

fn write_json(
    column: &'static str,
    value: Result<String, serde_json::Error>,
) -> Result<String, StoreError> {
    value.map_err(|e| StoreError::OutOfRange {
        column,
        value: e.to_string(),
    })
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct TenantRow {
    pub id: String,
    pub name: String,
    pub plan: String,
    pub credits: i64,
    pub created_at: NaiveDateTime,
}

impl TenantRow {
    pub(crate) fn from_domain(tenant: &Tenant) -> Self {
        TenantRow {
            id: tenant.id.to_string(),
            name: tenant.name.clone(),
            plan: tenant.plan.as_str().to_string(),
            credits: tenant.credits,
            created_at: to_db_time(tenant.created_at),
        }
    }

    pub(crate) fn into_domain(self) -> Result<Tenant, StoreError> {
        const T: &str = "tenants";
        Ok(Tenant {
            id: read_id(T, "id", &self.id)?,
            name: self.name,
            plan: read_enum(T, "plan", &self.plan)?,
            credits: self.credits,
            created_at: from_db_time(self.created_at),
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenant_members)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct MemberRow {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub role: String,
    pub token_hash: String,
    pub created_at: NaiveDateTime,
}

impl MemberRow {
    pub(crate) fn from_domain(member: &TenantMember, token: &SecretHash) -> Self {
        MemberRow {
            id: member.id.to_string(),
            tenant_id: member.tenant_id.to_string(),
            email: member.email.as_str().to_string(),
            role: member.role.as_str().to_string(),
            token_hash: token.to_hex(),
            created_at: to_db_time(member.created_at),
        }
    }

    pub(crate) fn into_domain(self) -> Result<TenantMember, StoreError> {
        const T: &str = "tenant_members";
        Ok(TenantMember {
            id: read_id(T, "id", &self.id)?,
            tenant_id: read_id(T, "tenant_id", &self.tenant_id)?,
            email: read_email(T, "email", &self.email)?,
            role: read_enum(T, "role", &self.role)?,
            created_at: from_db_time(self.created_at),
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sites)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct SiteRow {
    pub id: String,
    pub tenant_id: String,
    pub domain: String,
    pub name: String,
    pub allow_subdomains: bool,
    pub mapping_status: String,
    pub api_key_prefix: String,
    pub api_key_hash: String,
    pub identity_secret_hash: Option<String>,
    pub theme: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

impl SiteRow {
    pub(crate) fn from_domain(site: &Site) -> Result<Self, StoreError> {
        Ok(SiteRow {
            id: site.id.to_string(),
            tenant_id: site.tenant_id.to_string(),
            domain: site.domain.as_str().to_string(),
            name: site.name.clone(),
            allow_subdomains: site.allow_subdomains,
            mapping_status: site.mapping_status.as_str().to_string(),
            api_key_prefix: site.api_key_prefix.clone(),
            api_key_hash: site.api_key_hash.to_hex(),
            identity_secret_hash: site.identity_secret_hash.as_ref().map(SecretHash::to_hex),
            theme: write_json("sites.theme", serde_json::to_string(&site.theme))?,
            created_at: to_db_time(site.created_at),
            updated_at: to_db_time(site.updated_at),
            version: site.version.0,
        })
    }

    pub(crate) fn into_domain(self) -> Result<Site, StoreError> {
        const T: &str = "sites";
        Ok(Site {
            id: read_id(T, "id", &self.id)?,
            tenant_id: read_id(T, "tenant_id", &self.tenant_id)?,
            domain: read(T, "domain", SiteDomain::parse(&self.domain))?,
            name: self.name,
            allow_subdomains: self.allow_subdomains,
            mapping_status: read_enum(T, "mapping_status", &self.mapping_status)?,
            api_key_prefix: self.api_key_prefix,
            api_key_hash: read_hash(T, "api_key_hash", &self.api_key_hash)?,
            identity_secret_hash: self
                .identity_secret_hash
                .as_deref()
                .map(|hash| read_hash(T, "identity_secret_hash", hash))
                .transpose()?,
            theme: read(T, "theme", serde_json::from_str::<Theme>(&self.theme))?,
            created_at: from_db_time(self.created_at),
            updated_at: from_db_time(self.updated_at),
            version: Version(self.version),
        })
    }
}

/// The columns of `sites` a [`SiteChanges`] writes; `None` leaves a column
/// as it is.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = sites)]
pub(crate) struct SiteChangeset {
    pub domain: Option<String>,
    pub name: Option<String>,
    pub allow_subdomains: Option<bool>,
    pub theme: Option<String>,
    pub mapping_status: Option<String>,
    pub api_key_prefix: Option<String>,
    pub api_key_hash: Option<String>,
    pub identity_secret_hash: Option<String>,
}

impl SiteChangeset {
    pub(crate) fn from_changes(changes: &SiteChanges) -> Result<Self, StoreError> {
        Ok(SiteChangeset {
            domain: changes.domain.as_ref().map(|d| d.as_str().to_string()),
            name: changes.name.clone(),
            allow_subdomains: changes.allow_subdomains,
            theme: changes
                .theme
                .as_ref()
                .map(|theme| write_json("sites.theme", serde_json::to_string(theme)))
                .transpose()?,
            mapping_status: changes.mapping_status.map(|m| m.as_str().to_string()),
            api_key_prefix: changes.api_key.as_ref().map(|(prefix, _)| prefix.clone()),
            api_key_hash: changes.api_key.as_ref().map(|(_, hash)| hash.to_hex()),
            identity_secret_hash: changes
                .identity_secret_hash
                .as_ref()
                .map(SecretHash::to_hex),
        })
    }
}

/// The Builder's columns of `chat_widgets` (never the status).
#[derive(Debug, AsChangeset)]
#[diesel(table_name = chat_widgets, treat_none_as_null = true)]
pub(crate) struct WidgetSettingsChangeset {
    pub welcome_message: String,
    pub disclaimer: Option<String>,
    pub position: String,
    pub support_email: Option<String>,
    pub persona: Option<String>,
    pub insufficient_credits_message: String,
    pub rate_limit_per_session: i32,
}

impl From<&WidgetRow> for WidgetSettingsChangeset {
    fn from(row: &WidgetRow) -> Self {
        WidgetSettingsChangeset {
            welcome_message: row.welcome_message.clone(),
            disclaimer: row.disclaimer.clone(),
            position: row.position.clone(),
            support_email: row.support_email.clone(),
            persona: row.persona.clone(),
            insufficient_credits_message: row.insufficient_credits_message.clone(),
            rate_limit_per_session: row.rate_limit_per_session,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = chat_widgets)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct WidgetRow {
    pub id: String,
    pub site_id: String,
    pub tenant_id: String,
    pub status: String,
    pub published_at: Option<NaiveDateTime>,
    pub welcome_message: String,
    pub disclaimer: Option<String>,
    pub position: String,
    pub support_email: Option<String>,
    pub persona: Option<String>,
    pub insufficient_credits_message: String,
    pub rate_limit_per_session: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

impl WidgetRow {
    /// The row of `widget`, whose site belongs to `tenant_id` (stored text).
    pub(crate) fn from_domain(widget: &ChatWidget, tenant_id: String) -> Result<Self, StoreError> {
        let s = &widget.settings;
        Ok(WidgetRow {
            id: widget.id.to_string(),
            site_id: widget.site_id.to_string(),
            tenant_id,
            status: widget.status.as_str().to_string(),
            published_at: widget.published_at.map(to_db_time),
            welcome_message: s.welcome_message.clone(),
            disclaimer: s.disclaimer.clone(),
            position: s.position.as_str().to_string(),
            support_email: s.support_email.as_ref().map(|e| e.as_str().to_string()),
            persona: s.persona.clone(),
            insufficient_credits_message: s.insufficient_credits_message.clone(),
            rate_limit_per_session: write_i32(
                "chat_widgets.rate_limit_per_session",
                s.rate_limit_per_session,
            )?,
            created_at: to_db_time(widget.created_at),
            updated_at: to_db_time(widget.updated_at),
            version: widget.version.0,
        })
    }

    pub(crate) fn into_domain(self) -> Result<ChatWidget, StoreError> {
        const T: &str = "chat_widgets";
        Ok(ChatWidget {
            id: read_id(T, "id", &self.id)?,
            site_id: read_id(T, "site_id", &self.site_id)?,
            status: read_enum(T, "status", &self.status)?,
            published_at: self.published_at.map(from_db_time),
            settings: WidgetSettings {
                welcome_message: self.welcome_message,
                disclaimer: self.disclaimer,
                position: read_enum(T, "position", &self.position)?,
                support_email: self
                    .support_email
                    .as_deref()
                    .map(|e| read_email(T, "support_email", e))
                    .transpose()?,
                persona: self.persona,
                insufficient_credits_message: self.insufficient_credits_message,
                rate_limit_per_session: read_u32(
                    T,
                    "rate_limit_per_session",
                    self.rate_limit_per_session,
                )?,
            },
            created_at: from_db_time(self.created_at),
            updated_at: from_db_time(self.updated_at),
            version: Version(self.version),
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = content_items)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct ContentRow {
    pub id: String,
    pub site_id: String,
    pub kind: String,
    pub name: String,
    pub description: String,
    pub status: String,
    pub audiences: String,
    pub generated: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
    pub answer: Option<String>,
    pub source_session_id: Option<String>,
    pub source_message_id: Option<String>,
}

/// A list of audiences as stored: a compact JSON array of names.
pub(crate) fn audiences_json(audiences: &[Audience]) -> Result<String, StoreError> {
    write_json("content_items.audiences", serde_json::to_string(audiences))
}

impl ContentRow {
    pub(crate) fn from_domain(item: &ContentItem) -> Result<Self, StoreError> {
        Ok(ContentRow {
            id: item.id.to_string(),
            site_id: item.site_id.to_string(),
            kind: item.kind.as_str().to_string(),
            name: item.name.clone(),
            description: item.description.clone(),
            status: item.status.as_str().to_string(),
            audiences: audiences_json(&item.audiences)?,
            generated: item.generated,
            created_at: to_db_time(item.created_at),
            updated_at: to_db_time(item.updated_at),
            version: item.version.0,
            answer: item.origin.as_ref().map(|o| o.answer.clone()),
            source_session_id: item.origin.as_ref().map(|o| o.session_id.to_string()),
            source_message_id: item.origin.as_ref().map(|o| o.message_id.to_string()),
        })
    }

    /// The item's origin: all three columns set. Once the session it came
    /// from is gone (`source_session_id` is `ON DELETE SET NULL`), the item
    /// no longer has one the domain can name, and reads as having none.
    fn origin(&self) -> Result<Option<GeneratedFrom>, StoreError> {
        const T: &str = "content_items";
        match (
            &self.answer,
            &self.source_session_id,
            &self.source_message_id,
        ) {
            (Some(answer), Some(session), Some(message)) => Ok(Some(GeneratedFrom {
                session_id: read_id(T, "source_session_id", session)?,
                message_id: read_id(T, "source_message_id", message)?,
                answer: answer.clone(),
            })),
            _ => Ok(None),
        }
    }

    pub(crate) fn into_domain(self) -> Result<ContentItem, StoreError> {
        const T: &str = "content_items";
        let origin = self.origin()?;
        Ok(ContentItem {
            id: read_id(T, "id", &self.id)?,
            site_id: read_id(T, "site_id", &self.site_id)?,
            kind: read_enum(T, "kind", &self.kind)?,
            name: self.name,
            description: self.description,
            status: read_enum(T, "status", &self.status)?,
            audiences: read(
                T,
                "audiences",
                serde_json::from_str::<Vec<Audience>>(&self.audiences),
            )?,
            generated: self.generated,
            origin,
            created_at: from_db_time(self.created_at),
            updated_at: from_db_time(self.updated_at),
            version: Version(self.version),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn instants_are_truncated_to_microseconds() {
        let instant = Utc
            .timestamp_opt(1_767_268_800, 123_456_789)
            .single()
            .expect("valid instant");
        let stored = to_db_time(instant);
        assert_eq!(stored.and_utc().timestamp_subsec_nanos(), 123_456_000);
        assert_eq!(from_db_time(stored), instant.trunc_subsecs(6));
    }

    #[test]
    fn bad_stored_values_are_errors_not_panics() {
        let err = read_enum::<chatdesk_domain::tenant::Plan>("tenants", "plan", "GOLD")
            .expect_err("unknown plan");
        assert!(err.to_string().contains("tenants.plan"), "{err}");
        assert!(read_id::<chatdesk_domain::ids::SiteId>("sites", "id", "nope").is_err());
        assert!(read_hash("sites", "api_key_hash", "abc").is_err());
        assert!(read_u32("chat_widgets", "rate_limit_per_session", -1).is_err());
        assert!(write_i32("x", u32::MAX).is_err());
    }
}
