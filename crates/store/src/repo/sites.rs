//! Sites, the tenancy boundary.

use chatdesk_domain::ids::{SiteId, TenantId};
use chatdesk_domain::ports::{Page, PageRequest, SiteRepository};
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::site::Site;
use chatdesk_domain::tenant::Plan;
use chatdesk_domain::{Entity, Error};
use diesel::prelude::*;
use diesel::result::Error as DieselError;

use super::{convert, lock_tenant, overfetch, violates_unique, Failure};
use crate::connection::write_transaction;
use crate::rows::{to_db_time, SiteRow};
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
    fn insert_site_within_cap(
        &self,
        site: &Site,
        cap: Option<u32>,
        plan: Plan,
    ) -> Result<(), Error> {
        let row = SiteRow::from_domain(site)?;
        let mut conn = self.conn()?;
        write_transaction(&mut conn, |conn| -> Result<(), Failure> {
            // The tenant's row lock (PostgreSQL) or the write lock (SQLite)
            // keeps concurrent creates from passing the cap together.
            if lock_tenant(conn, &row.tenant_id)?.is_none() {
                return Err(Error::NotFound(Entity::Tenant).into());
            }
            if let Some(cap) = cap {
                let count: i64 = sites::table
                    .filter(sites::tenant_id.eq(&row.tenant_id))
                    .count()
                    .get_result(conn)?;
                if count >= i64::from(cap) {
                    return Err(Error::PlanLimit {
                        plan: plan.as_str(),
                        cap,
                    }
                    .into());
                }
            }
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
        let rows = query.load(&mut conn).map_err(StoreError::Query)?;
        let sites = convert(rows, SiteRow::into_domain)?;
        Ok(Page::from_overfetch(sites, page.limit, |s| s.id))
    }

    fn get_site(&self, tenant: TenantId, id: SiteId) -> Result<Site, Error> {
        let mut conn = self.conn()?;
        let row = sites::table
            .filter(sites::tenant_id.eq(tenant.to_string()))
            .filter(sites::id.eq(id.to_string()))
            .select(SiteRow::as_select())
            .first(&mut conn)
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
            .first(&mut conn)
            .optional()
            .map_err(StoreError::Query)?;
        Ok(row.map(SiteRow::into_domain).transpose()?)
    }

    fn update_site(&self, site: &Site) -> Result<(), Error> {
        let row = SiteRow::from_domain(site)?;
        let mut conn = self.conn()?;
        let updated = diesel::update(
            sites::table
                .filter(sites::tenant_id.eq(&row.tenant_id))
                .filter(sites::id.eq(&row.id)),
        )
        .set((
            sites::domain.eq(&row.domain),
            sites::name.eq(&row.name),
            sites::allow_subdomains.eq(row.allow_subdomains),
            sites::mapping_status.eq(&row.mapping_status),
            sites::api_key_prefix.eq(&row.api_key_prefix),
            sites::api_key_hash.eq(&row.api_key_hash),
            sites::identity_secret_hash.eq(&row.identity_secret_hash),
            sites::theme.eq(&row.theme),
            sites::updated_at.eq(to_db_time(site.updated_at)),
        ))
        .execute(&mut conn)
        .map_err(site_write_error)?;
        if updated == 0 {
            return Err(Error::NotFound(Entity::Site));
        }
        Ok(())
    }

    fn delete_site(&self, tenant: TenantId, id: SiteId) -> Result<(), Error> {
        let mut conn = self.conn()?;
        // Every table under a site references it with ON DELETE CASCADE
        // (SQLite connections enforce foreign keys), so this one statement
        // removes the widget, content, visitors, sessions, messages,
        // feedback and tickets too, atomically.
        let deleted = diesel::delete(
            sites::table
                .filter(sites::tenant_id.eq(tenant.to_string()))
                .filter(sites::id.eq(id.to_string())),
        )
        .execute(&mut conn)
        .map_err(StoreError::Query)?;
        if deleted == 0 {
            return Err(Error::NotFound(Entity::Site));
        }
        Ok(())
    }
}
