//! Tenants: create with the first owner, plan, credits.

use chatdesk_domain::ids::TenantId;
use chatdesk_domain::ports::TenantRepository;
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::tenant::{Plan, Tenant, TenantMember};
use chatdesk_domain::{Entity, Error};
use chrono::Utc;
use diesel::prelude::*;

use super::{lock_tenant, Failure};
use crate::changes::{record_change, ChangeTarget};
use crate::connection::write_transaction;
use crate::rows::{MemberRow, TenantRow};
use crate::schema::{tenant_members, tenants};
use crate::Store;

impl TenantRepository for Store {
    fn create_tenant(
        &self,
        tenant: &Tenant,
        owner: &TenantMember,
        owner_token: &SecretHash,
    ) -> Result<(), Error> {
        if owner.tenant_id != tenant.id {
            return Err(Error::Internal(
                "the first owner must belong to the new tenant".into(),
            ));
        }
        let tenant_row = TenantRow::from_domain(tenant);
        let owner_row = MemberRow::from_domain(owner, owner_token);
        let mut conn = self.conn()?;
        write_transaction(&mut conn, |conn| -> Result<(), Failure> {
            diesel::insert_into(tenants::table)
                .values(&tenant_row)
                .execute(conn)?;
            diesel::insert_into(tenant_members::table)
                .values(&owner_row)
                .execute(conn)?;
            Ok(())
        })?;
        Ok(())
    }

    fn get_tenant(&self, id: TenantId) -> Result<Tenant, Error> {
        let mut conn = self.conn()?;
        let row = tenants::table
            .find(id.to_string())
            .select(TenantRow::as_select())
            .first(&mut *conn)
            .optional()
            .map_err(crate::StoreError::Query)?;
        match row {
            Some(row) => Ok(row.into_domain()?),
            None => Err(Error::NotFound(Entity::Tenant)),
        }
    }

    fn set_plan(&self, id: TenantId, plan: Plan) -> Result<Tenant, Error> {
        let mut conn = self.conn()?;
        let tenant = write_transaction(&mut conn, |conn| -> Result<Tenant, Failure> {
            let Some(row) = lock_tenant(conn, &id.to_string())? else {
                return Err(Error::NotFound(Entity::Tenant).into());
            };
            if row.plan != plan.as_str() {
                diesel::update(tenants::table.find(&row.id))
                    .set(tenants::plan.eq(plan.as_str()))
                    .execute(conn)?;
                // The plan opens or closes the widget's gate.
                record_change(conn, ChangeTarget::Tenant(id), Utc::now())?;
            }
            let mut tenant = row.into_domain()?;
            tenant.plan = plan;
            Ok(tenant)
        })?;
        Ok(tenant)
    }

    fn add_credits(&self, id: TenantId, delta: i64) -> Result<Tenant, Error> {
        let mut conn = self.conn()?;
        let tenant = write_transaction(&mut conn, |conn| -> Result<Tenant, Failure> {
            let Some(row) = lock_tenant(conn, &id.to_string())? else {
                return Err(Error::NotFound(Entity::Tenant).into());
            };
            let balance = chatdesk_domain::tenant::add_credits(row.credits, delta)?;
            diesel::update(tenants::table.find(&row.id))
                .set(tenants::credits.eq(balance))
                .execute(conn)?;
            let mut tenant = row.into_domain()?;
            tenant.credits = balance;
            Ok(tenant)
        })?;
        Ok(tenant)
    }
}
