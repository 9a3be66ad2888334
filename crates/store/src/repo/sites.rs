//! Sites, the tenancy boundary.

use chatdesk_domain::ids::{SiteId, TenantId};
use chatdesk_domain::ports::{Page, PageRequest, SiteRepository};
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::site::{Site, SiteChanges};
use chatdesk_domain::version::Precondition;
use chatdesk_domain::{Entity, Error};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;

use super::{convert, lock_site, lock_tenant, overfetch, violates_unique, Failure};
use crate::changes::{record_change, ChangeTarget};
use crate::connection::write_transaction;
use crate::rows::{as_stored, to_db_time, SiteChangeset, SiteRow};
use crate::schema::sites;
use crate::{Store, StoreError};

/// Maps the (tenant_id, domain) unique violation to [`Error::SiteExists`].
fn site_write_error(error: DieselError) -> Failure {
    if violates_unique(&error, "sites_tenant_domain_key", "sites.domain") {
        Failure::Domain(Error::SiteExists)
    } else {
        error.into()
    }
}

impl SiteRepository for Store {
    fn insert_site(&self, site: &Site) -> Result<(), Error> {
        let row = SiteRow::from_domain(site)?;
        let mut conn = self.conn()?;
        write_transaction(&mut conn, |conn| -> Result<(), Failure> {
            // The tenant's row lock (PostgreSQL) or the write lock (SQLite)
            // keeps concurrent creates and plan changes from passing the
            // cap together; the plan is the locked row's, not the one read
            // when the member signed in.
            let Some(tenant) = lock_tenant(conn, &row.tenant_id)? else {
                return Err(Error::NotFound(Entity::Tenant).into());
            };
            let tenant = tenant.into_domain()?;
            let count: i64 = sites::table
                .filter(sites::tenant_id.eq(&row.tenant_id))
                .count()
                .get_result(conn)?;
            tenant
                .plan
                .check_site_cap(u64::try_from(count).unwrap_or(u64::MAX))?;
            diesel::insert_into(sites::table)
                .values(&row)
                .execute(conn)
                .map_err(site_write_error)?;
            Ok(())
        })?;
        Ok(())
    }

    fn list_sites(
        &self,
        tenant: TenantId,
        page: &PageRequest<SiteId>,
    ) -> Result<Page<Site, SiteId>, Error> {
        let mut conn = self.conn()?;
        let mut query = sites::table
            .filter(sites::tenant_id.eq(tenant.to_string()))
            .select(SiteRow::as_select())
            .order(sites::id.asc())
            .limit(overfetch(page.limit))
            .into_boxed();
        if let Some(after) = page.after {
            query = query.filter(sites::id.gt(after.to_string()));
        }
        let rows = query.load(&mut *conn).map_err(StoreError::Query)?;
        let sites = convert(rows, SiteRow::into_domain)?;
        Ok(Page::from_overfetch(sites, page.limit, |s| s.id))
    }

    fn get_site(&self, tenant: TenantId, id: SiteId) -> Result<Site, Error> {
        let mut conn = self.conn()?;
        let row = sites::table
            .filter(sites::tenant_id.eq(tenant.to_string()))
            .filter(sites::id.eq(id.to_string()))
            .select(SiteRow::as_select())
            .first(&mut *conn)
            .optional()
            .map_err(StoreError::Query)?;
        match row {
            Some(row) => Ok(row.into_domain()?),
            None => Err(Error::NotFound(Entity::Site)),
        }
    }

    fn find_by_api_key(&self, key: &SecretHash) -> Result<Option<Site>, Error> {
        let mut conn = self.conn()?;
        let row = sites::table
            .filter(sites::api_key_hash.eq(key.to_hex()))
            .select(SiteRow::as_select())
            .first(&mut *conn)
            .optional()
            .map_err(StoreError::Query)?;
        Ok(row.map(SiteRow::into_domain).transpose()?)
    }

    fn update_site(
        &self,
        tenant: TenantId,
        id: SiteId,
        changes: &SiteChanges,
        precondition: &Precondition,
        now: DateTime<Utc>,
    ) -> Result<Site, Error> {
        let now = as_stored(now);
        let mut conn = self.conn()?;
        let site = write_transaction(&mut conn, |conn| -> Result<Site, Failure> {
            let current = match lock_site(conn, &id.to_string())? {
                Some(row) if row.tenant_id == tenant.to_string() => row.into_domain()?,
                _ => return Err(Error::NotFound(Entity::Site).into()),
            };
            precondition.check(&current.entity_tag(), Entity::Site)?;
            let changes = changes.clone().without_unchanged(&current);
            if changes.is_empty() {
                return Ok(current);
            }
            // Every field of a site (its key and identity secret too) is
            // part of what the SDK's config answers or checks. Recorded
            // before the write: when the write then fails (the domain is
            // taken), the entry and its notification go with the rollback.
            record_change(conn, ChangeTarget::Site(id), now)?;
            let updated = diesel::update(
                sites::table
                    .find(id.to_string())
                    .filter(sites::version.eq(current.version.0)),
            )
            .set((
                SiteChangeset::from_changes(&changes)?,
                sites::version.eq(sites::version + 1),
                sites::updated_at.eq(to_db_time(now)),
            ))
            .execute(conn)
            .map_err(site_write_error)?;
            if updated != 1 {
                // The row is locked, so its version cannot have moved.
                return Err(Error::PreconditionFailed(Entity::Site).into());
            }
            Ok(changes.applied_to(current, now))
        })?;
        Ok(site)
    }

    fn delete_site(&self, tenant: TenantId, id: SiteId) -> Result<(), Error> {
        let mut conn = self.conn()?;
        write_transaction(&mut conn, |conn| -> Result<(), Failure> {
            // Every table under a site references it with ON DELETE
            // CASCADE (SQLite connections enforce foreign keys), so this
            // one statement removes the widget, content, visitors,
            // sessions, messages, feedback and tickets too, atomically.
            let deleted = diesel::delete(
                sites::table
                    .filter(sites::tenant_id.eq(tenant.to_string()))
                    .filter(sites::id.eq(id.to_string())),
            )
            .execute(conn)?;
            if deleted == 0 {
                return Err(Error::NotFound(Entity::Site).into());
            }
            // The change log has no foreign key: the entry outlives the site.
            record_change(conn, ChangeTarget::Site(id), Utc::now())?;
            Ok(())
        })?;
        Ok(())
    }
}
