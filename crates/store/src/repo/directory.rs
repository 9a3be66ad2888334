//! The operator's view across tenants: which tenants exist, and replacing
//! a member's token.

use chatdesk_domain::ids::{MemberId, TenantId};
use chatdesk_domain::ports::TenantDirectory;
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::tenant::Tenant;
use chatdesk_domain::{Entity, Error};
use diesel::prelude::*;

use super::convert;
use crate::rows::TenantRow;
use crate::schema::{tenant_members, tenants};
use crate::{Store, StoreError};

impl TenantDirectory for Store {
    fn oldest_tenants(&self, limit: u32) -> Result<Vec<Tenant>, Error> {
        let mut conn = self.conn()?;
        let rows = tenants::table
            .select(TenantRow::as_select())
            .order((tenants::created_at.asc(), tenants::id.asc()))
            .limit(i64::from(limit))
            .load(&mut *conn)
            .map_err(StoreError::Query)?;
        Ok(convert(rows, TenantRow::into_domain)?)
    }

    fn replace_member_token(
        &self,
        tenant: TenantId,
        member: MemberId,
        token: &SecretHash,
    ) -> Result<(), Error> {
        let mut conn = self.conn()?;
        let changed = diesel::update(
            tenant_members::table
                .filter(tenant_members::tenant_id.eq(tenant.to_string()))
                .filter(tenant_members::id.eq(member.to_string())),
        )
        .set(tenant_members::token_hash.eq(token.to_hex()))
        .execute(&mut *conn)
        .map_err(StoreError::Query)?;
        if changed == 0 {
            return Err(Error::NotFound(Entity::Member));
        }
        Ok(())
    }
}
