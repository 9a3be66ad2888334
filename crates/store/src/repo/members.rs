//! Team members and their tokens.

use chatdesk_domain::ids::{MemberId, TenantId};
use chatdesk_domain::ports::{MemberRepository, Page, PageRequest};
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::tenant::{Actor, Role, TenantMember};
use chatdesk_domain::{Entity, Error};
use diesel::prelude::*;

use super::{convert, lock_tenant, overfetch, violates_foreign_key, violates_unique, Failure};
use crate::connection::write_transaction;
use crate::rows::{MemberRow, TenantRow};
use crate::schema::{tenant_members, tenants};
use crate::{Store, StoreError};

impl MemberRepository for Store {
    fn find_by_token(&self, token: &SecretHash) -> Result<Option<Actor>, Error> {
        let mut conn = self.conn()?;
        let found = tenant_members::table
            .inner_join(tenants::table)
            .filter(tenant_members::token_hash.eq(token.to_hex()))
            .select((MemberRow::as_select(), TenantRow::as_select()))
            .first::<(MemberRow, TenantRow)>(&mut *conn)
            .optional()
            .map_err(StoreError::Query)?;
        match found {
            Some((member, tenant)) => Ok(Some(Actor {
                member: member.into_domain()?,
                tenant: tenant.into_domain()?,
            })),
            None => Ok(None),
        }
    }

    fn list_members(
        &self,
        tenant: TenantId,
        page: &PageRequest<MemberId>,
    ) -> Result<Page<TenantMember, MemberId>, Error> {
        let mut conn = self.conn()?;
        let mut query = tenant_members::table
            .filter(tenant_members::tenant_id.eq(tenant.to_string()))
            .select(MemberRow::as_select())
            .order(tenant_members::id.asc())
            .limit(overfetch(page.limit))
            .into_boxed();
        if let Some(after) = page.after {
            query = query.filter(tenant_members::id.gt(after.to_string()));
        }
        let rows = query.load(&mut *conn).map_err(StoreError::Query)?;
        let members = convert(rows, MemberRow::into_domain)?;
        Ok(Page::from_overfetch(members, page.limit, |m| m.id))
    }

    fn get_member(&self, tenant: TenantId, id: MemberId) -> Result<TenantMember, Error> {
        let mut conn = self.conn()?;
        let row = tenant_members::table
            .filter(tenant_members::tenant_id.eq(tenant.to_string()))
            .filter(tenant_members::id.eq(id.to_string()))
            .select(MemberRow::as_select())
            .first(&mut *conn)
            .optional()
            .map_err(StoreError::Query)?;
        match row {
            Some(row) => Ok(row.into_domain()?),
            None => Err(Error::NotFound(Entity::Member)),
        }
    }

    fn insert_member(&self, member: &TenantMember, token: &SecretHash) -> Result<(), Error> {
        let row = MemberRow::from_domain(member, token);
        let mut conn = self.conn()?;
        match diesel::insert_into(tenant_members::table)
            .values(&row)
            .execute(&mut *conn)
        {
            Ok(_) => Ok(()),
            Err(e)
                if violates_unique(
                    &e,
                    "tenant_members_tenant_email_key",
                    "tenant_members.email",
                ) =>
            {
                Err(Error::MemberExists)
            }
            Err(e) if violates_foreign_key(&e) => Err(Error::NotFound(Entity::Tenant)),
            Err(e) => Err(StoreError::Query(e).into()),
        }
    }

    fn first_owner(&self, tenant: TenantId) -> Result<Option<TenantMember>, Error> {
        let mut conn = self.conn()?;
        let row = tenant_members::table
            .filter(tenant_members::tenant_id.eq(tenant.to_string()))
            .filter(tenant_members::role.eq(Role::Owner.as_str()))
            .order((tenant_members::created_at.asc(), tenant_members::id.asc()))
            .select(MemberRow::as_select())
            .first(&mut *conn)
            .optional()
            .map_err(StoreError::Query)?;
        Ok(row.map(MemberRow::into_domain).transpose()?)
    }

    fn remove_member_keeping_an_owner(&self, tenant: TenantId, id: MemberId) -> Result<(), Error> {
        let tenant_id = tenant.to_string();
        let member_id = id.to_string();
        let mut conn = self.conn()?;
        write_transaction(&mut conn, |conn| -> Result<(), Failure> {
            // Locking the tenant serialises concurrent removals, so two
            // owners removing each other cannot leave none.
            if lock_tenant(conn, &tenant_id)?.is_none() {
                return Err(Error::NotFound(Entity::Member).into());
            }
            let scoped = tenant_members::table
                .filter(tenant_members::tenant_id.eq(&tenant_id))
                .filter(tenant_members::id.eq(&member_id));
            let Some(role) = scoped
                .select(tenant_members::role)
                .first::<String>(conn)
                .optional()?
            else {
                return Err(Error::NotFound(Entity::Member).into());
            };
            if role == Role::Owner.as_str() {
                let owners: i64 = tenant_members::table
                    .filter(tenant_members::tenant_id.eq(&tenant_id))
                    .filter(tenant_members::role.eq(Role::Owner.as_str()))
                    .count()
                    .get_result(conn)?;
                if owners <= 1 {
                    return Err(Error::LastOwner.into());
                }
            }
            diesel::delete(scoped).execute(conn)?;
            Ok(())
        })?;
        Ok(())
    }
}
