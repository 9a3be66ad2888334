//! Chat widgets, one per site.

use chatdesk_domain::ids::SiteId;
use chatdesk_domain::ports::WidgetRepository;
use chatdesk_domain::widget::ChatWidget;
use chatdesk_domain::{Entity, Error};
use diesel::prelude::*;

use super::{lock_site, Failure};
use crate::connection::write_transaction;
use crate::rows::WidgetRow;
use crate::schema::chat_widgets;
use crate::{Store, StoreError};

impl WidgetRepository for Store {
    fn get_widget(&self, site: SiteId) -> Result<Option<ChatWidget>, Error> {
        let mut conn = self.conn()?;
        let row = chat_widgets::table
            .filter(chat_widgets::site_id.eq(site.to_string()))
            .select(WidgetRow::as_select())
            .first(&mut conn)
            .optional()
            .map_err(StoreError::Query)?;
        Ok(row.map(WidgetRow::into_domain).transpose()?)
    }

    fn save_widget(&self, widget: &ChatWidget) -> Result<(), Error> {
        let site_id = widget.site_id.to_string();
        let mut conn = self.conn()?;
        write_transaction(&mut conn, |conn| -> Result<(), Failure> {
            // Locking the site serialises concurrent first saves, so the
            // second one updates instead of hitting the unique site_id.
            let Some(site) = lock_site(conn, &site_id)? else {
                return Err(Error::NotFound(Entity::Site).into());
            };
            let row = WidgetRow::from_domain(widget, site.tenant_id)?;
            let updated =
                diesel::update(chat_widgets::table.filter(chat_widgets::site_id.eq(&site_id)))
                    .set((
                        chat_widgets::status.eq(&row.status),
                        chat_widgets::published_at.eq(row.published_at),
                        chat_widgets::welcome_message.eq(&row.welcome_message),
                        chat_widgets::disclaimer.eq(&row.disclaimer),
                        chat_widgets::position.eq(&row.position),
                        chat_widgets::support_email.eq(&row.support_email),
                        chat_widgets::persona.eq(&row.persona),
                        chat_widgets::insufficient_credits_message
                            .eq(&row.insufficient_credits_message),
                        chat_widgets::rate_limit_per_session.eq(row.rate_limit_per_session),
                        chat_widgets::updated_at.eq(row.updated_at),
                    ))
                    .execute(conn)?;
            if updated == 0 {
                diesel::insert_into(chat_widgets::table)
                    .values(&row)
                    .execute(conn)?;
            }
            Ok(())
        })?;
        Ok(())
    }
}
