//! The content library: Flows and Tooltips of a site.

use chatdesk_domain::content::{ContentFilter, ContentItem, ContentPatch};
use chatdesk_domain::ids::{ContentId, SiteId};
use chatdesk_domain::ports::{ContentRepository, Page, PageRequest};
use chatdesk_domain::version::Precondition;
use chatdesk_domain::{Entity, Error};
use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use super::{convert, overfetch, violates_foreign_key, Failure};
use crate::connection::{write_transaction, Backend, DbConnection};
use crate::rows::{as_stored, audiences_json, to_db_time, ContentRow};
use crate::schema::{content_items, sites};
use crate::{Store, StoreError};

impl ContentRepository for Store {
    fn insert_content(&self, item: &ContentItem) -> Result<(), Error> {
        let row = ContentRow::from_domain(item)?;
        let mut conn = self.conn()?;
        write_transaction(&mut conn, |conn| -> Result<(), Failure> {
            match diesel::insert_into(content_items::table)
                .values(&row)
                .execute(conn)
            {
                Ok(_) => {}
                Err(e) if violates_foreign_key(&e) => {
                    return Err(Error::NotFound(Entity::Site).into())
                }
                Err(e) => return Err(e.into()),
            }
            bump_content_version(conn, &row.site_id)?;
            Ok(())
        })?;
        Ok(())
    }

    fn list_content(
        &self,
        site: SiteId,
        filter: &ContentFilter,
        page: &PageRequest<ContentId>,
    ) -> Result<Page<ContentItem, ContentId>, Error> {
        let mut conn = self.conn()?;
        let mut query = content_items::table
            .filter(content_items::site_id.eq(site.to_string()))
            .select(ContentRow::as_select())
            .order(content_items::id.asc())
            .limit(overfetch(page.limit))
            .into_boxed();
        if let Some(after) = page.after {
            query = query.filter(content_items::id.gt(after.to_string()));
        }
        if let Some(kind) = filter.kind {
            query = query.filter(content_items::kind.eq(kind.as_str()));
        }
        if let Some(status) = filter.status {
            query = query.filter(content_items::status.eq(status.as_str()));
        }
        if let Some(audience) = &filter.audience {
            // Exact membership in the JSON array, by each backend's JSON
            // functions: no pattern matching, so names with `%`, `_`,
            // quotes or commas cannot match the wrong item.
            let name = audience.as_str().to_string();
            query = match self.backend() {
                Backend::Postgres => query.filter(
                    sql::<Bool>("(content_items.audiences::jsonb ? ")
                        .bind::<Text, _>(name)
                        .sql(")"),
                ),
                Backend::Sqlite => query.filter(
                    sql::<Bool>(
                        "EXISTS (SELECT 1 FROM json_each(content_items.audiences) AS audience \
                         WHERE audience.type = 'text' AND audience.value = ",
                    )
                    .bind::<Text, _>(name)
                    .sql(")"),
                ),
            };
        }
        let rows = query.load(&mut *conn).map_err(StoreError::Query)?;
        let items = convert(rows, ContentRow::into_domain)?;
        Ok(Page::from_overfetch(items, page.limit, |item| item.id))
    }

    fn get_content(&self, site: SiteId, id: ContentId) -> Result<ContentItem, Error> {
        let mut conn = self.conn()?;
        let row = content_items::table
            .filter(content_items::site_id.eq(site.to_string()))
            .filter(content_items::id.eq(id.to_string()))
            .select(ContentRow::as_select())
            .first(&mut *conn)
            .optional()
            .map_err(StoreError::Query)?;
        match row {
            Some(row) => Ok(row.into_domain()?),
            None => Err(Error::NotFound(Entity::Content)),
        }
    }

    fn update_content(
        &self,
        site: SiteId,
        id: ContentId,
        patch: &ContentPatch,
        precondition: &Precondition,
        now: DateTime<Utc>,
    ) -> Result<ContentItem, Error> {
        let now = as_stored(now);
        let mut conn = self.conn()?;
        let item = write_transaction(&mut conn, |conn| -> Result<ContentItem, Failure> {
            let mut item = lock_content(conn, &site.to_string(), &id.to_string())?
                .ok_or(Error::NotFound(Entity::Content))?
                .into_domain()?;
            precondition.check(&item.entity_tag(), Entity::Content)?;
            let read = item.version;
            if item.apply(patch, now) {
                let updated = diesel::update(
                    content_items::table
                        .find(id.to_string())
                        .filter(content_items::version.eq(read.0)),
                )
                .set((
                    content_items::status.eq(item.status.as_str()),
                    content_items::audiences.eq(audiences_json(&item.audiences)?),
                    content_items::updated_at.eq(to_db_time(item.updated_at)),
                    content_items::version.eq(item.version.0),
                ))
                .execute(conn)?;
                if updated != 1 {
                    // The row is locked, so its version cannot have moved.
                    return Err(Error::PreconditionFailed(Entity::Content).into());
                }
                bump_content_version(conn, &site.to_string())?;
            }
            Ok(item)
        })?;
        Ok(item)
    }
}

/// Moves the site's `content_version` on, in the transaction that changes
/// its content library, so an in-process index of the library built from
/// an older version knows it is stale:
/// `UPDATE sites SET content_version = content_version + 1 WHERE id = $1`.
pub(super) fn bump_content_version(conn: &mut DbConnection, site: &str) -> QueryResult<usize> {
    diesel::update(sites::table.find(site.to_string()))
        .set(sites::content_version.eq(sites::content_version + 1))
        .execute(conn)
}

/// Reads an item of a site inside a write transaction, locking its row on
/// PostgreSQL (`FOR NO KEY UPDATE`, as [`super::lock_tenant`]).
fn lock_content(conn: &mut DbConnection, site: &str, id: &str) -> QueryResult<Option<ContentRow>> {
    let query = content_items::table
        .filter(content_items::site_id.eq(site.to_string()))
        .filter(content_items::id.eq(id.to_string()));
    match conn {
        DbConnection::Pg(pg) => query
            .select(ContentRow::as_select())
            .for_no_key_update()
            .first(pg)
            .optional(),
        DbConnection::Sqlite(_) => query.select(ContentRow::as_select()).first(conn).optional(),
    }
}
