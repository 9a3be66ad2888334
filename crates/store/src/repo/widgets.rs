//! Chat widgets, one per site. Every write locks the site's row first, so
//! writes of one site's widget are serialised and a publish or pause sees
//! the site's current mapping.

use chatdesk_domain::ids::{SiteId, TenantId};
use chatdesk_domain::ports::{SiteWidget, WidgetRepository};
use chatdesk_domain::site::Site;
use chatdesk_domain::version::Precondition;
use chatdesk_domain::widget::{ChatWidget, NamedSettings, WidgetTransition};
use chatdesk_domain::{Entity, Error};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::{lock_site, Failure};
use crate::changes::{record_change, ChangeTarget};
use crate::connection::{write_transaction, DbConnection};
use crate::rows::{as_stored, to_db_time, WidgetRow, WidgetSettingsChangeset};
use crate::schema::chat_widgets;
use crate::{Store, StoreError};

/// The tenant's site `site_id`, its row locked, and its widget if any.
fn lock_site_and_widget(
    conn: &mut DbConnection,
    tenant: TenantId,
    site_id: &str,
) -> Result<(Site, Option<ChatWidget>), Failure> {
    let site = match lock_site(conn, site_id)? {
        Some(row) if row.tenant_id == tenant.to_string() => row.into_domain()?,
        _ => return Err(Error::NotFound(Entity::Site).into()),
    };
    let widget = chat_widgets::table
        .filter(chat_widgets::site_id.eq(site_id))
        .select(WidgetRow::as_select())
        .first(conn)
        .optional()?
        .map(WidgetRow::into_domain)
        .transpose()?;
    Ok((site, widget))
}

/// Fails when a write conditional on the version it read changed no row
/// (it cannot happen while the site's row is locked; kept as a guard).
fn one_row(updated: usize) -> Result<(), Failure> {
    if updated == 1 {
        Ok(())
    } else {
        Err(Error::PreconditionFailed(Entity::Widget).into())
    }
}

impl WidgetRepository for Store {
    fn get_widget(&self, site: SiteId) -> Result<Option<ChatWidget>, Error> {
        let mut conn = self.conn()?;
        let row = chat_widgets::table
            .filter(chat_widgets::site_id.eq(site.to_string()))
            .select(WidgetRow::as_select())
            .first(&mut *conn)
            .optional()
            .map_err(StoreError::Query)?;
        Ok(row.map(WidgetRow::into_domain).transpose()?)
    }

    fn save_widget_settings(
        &self,
        tenant: TenantId,
        draft: &ChatWidget,
        named: &NamedSettings,
        precondition: &Precondition,
    ) -> Result<(SiteWidget, bool), Error> {
        // What is returned is what a later read gives.
        let draft = &ChatWidget {
            created_at: as_stored(draft.created_at),
            updated_at: as_stored(draft.updated_at),
            ..draft.clone()
        };
        let site_id = draft.site_id.to_string();
        let mut conn = self.conn()?;
        let saved = write_transaction(&mut conn, |conn| -> Result<_, Failure> {
            let (site, existing) = lock_site_and_widget(conn, tenant, &site_id)?;
            let Some(mut widget) = existing else {
                // Nothing to match an entity tag against.
                if !precondition.allows_creation() {
                    return Err(Error::PreconditionFailed(Entity::Widget).into());
                }
                let row = WidgetRow::from_domain(draft, tenant.to_string())?;
                diesel::insert_into(chat_widgets::table)
                    .values(&row)
                    .execute(conn)?;
                record_change(conn, ChangeTarget::Site(site.id), draft.updated_at)?;
                let widget = draft.clone();
                return Ok((SiteWidget { site, widget }, true));
            };
            precondition.check(&widget.entity_tag(&site), Entity::Widget)?;
            let read = widget.version;
            let settings = draft.settings.clone().keeping(&widget.settings, *named);
            if widget.change_settings(settings, draft.updated_at) {
                let row = WidgetRow::from_domain(&widget, tenant.to_string())?;
                let updated = diesel::update(
                    chat_widgets::table
                        .filter(chat_widgets::site_id.eq(&site_id))
                        .filter(chat_widgets::version.eq(read.0)),
                )
                .set((
                    WidgetSettingsChangeset::from(&row),
                    chat_widgets::version.eq(row.version),
                    chat_widgets::updated_at.eq(row.updated_at),
                ))
                .execute(conn)?;
                one_row(updated)?;
                record_change(conn, ChangeTarget::Site(site.id), widget.updated_at)?;
            }
            Ok((SiteWidget { site, widget }, false))
        })?;
        Ok(saved)
    }

    fn transition_widget(
        &self,
        tenant: TenantId,
        site: SiteId,
        transition: WidgetTransition,
        now: DateTime<Utc>,
    ) -> Result<SiteWidget, Error> {
        let now = as_stored(now);
        let site_id = site.to_string();
        let mut conn = self.conn()?;
        let changed = write_transaction(&mut conn, |conn| -> Result<_, Failure> {
            let (site, widget) = lock_site_and_widget(conn, tenant, &site_id)?;
            let mut widget = widget.ok_or(Error::NotFound(Entity::Widget))?;
            let read = widget.version;
            // The rule runs on the locked site row: the mapping it checks
            // cannot change before this transaction ends.
            transition.apply(&mut widget, &site, now)?;
            let updated = diesel::update(
                chat_widgets::table
                    .filter(chat_widgets::site_id.eq(&site_id))
                    .filter(chat_widgets::version.eq(read.0)),
            )
            .set((
                chat_widgets::status.eq(widget.status.as_str()),
                chat_widgets::published_at.eq(widget.published_at.map(to_db_time)),
                chat_widgets::updated_at.eq(to_db_time(widget.updated_at)),
                chat_widgets::version.eq(widget.version.0),
            ))
            .execute(conn)?;
            one_row(updated)?;
            record_change(conn, ChangeTarget::Site(site.id), now)?;
            Ok(SiteWidget { site, widget })
        })?;
        Ok(changed)
    }
}
