//! Tenants (made by the CLI), dashboard sign-in and team members.

use std::sync::Arc;

use super::{issue, WithSecret};
use crate::email::Email;
use crate::error::{Error, Validator};
use crate::ids::{MemberId, TenantId};
use crate::ports::{Clock, IdGenerator, MemberRepository, Page, PageRequest, TenantRepository};
use crate::secret::{SecretHash, SecretKind};
use crate::tenant::{
    authorize_grant, authorize_removal, parse_tenant_name, Action, Actor, Plan, Role, Tenant,
    TenantMember,
};

/// A tenant made by the CLI, with its owner's token (shown once).
#[derive(Debug, Clone)]
pub struct CreatedTenant {
    /// The tenant.
    pub tenant: Tenant,
    /// Its first OWNER.
    pub owner: TenantMember,
    /// The owner's dashboard token.
    pub token: String,
}

/// Tenants, sign-in and members.
#[derive(Clone)]
pub struct TenancyService {
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    tenants: Arc<dyn TenantRepository>,
    members: Arc<dyn MemberRepository>,
}

impl TenancyService {
    /// The service over its ports.
    pub fn new(
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        tenants: Arc<dyn TenantRepository>,
        members: Arc<dyn MemberRepository>,
    ) -> Self {
        TenancyService {
            clock,
            ids,
            tenants,
            members,
        }
    }

    /// Makes a tenant and its first OWNER (CLI).
    pub fn create_tenant(
        &self,
        name: &str,
        plan: Plan,
        owner_email: &str,
    ) -> Result<CreatedTenant, Error> {
        let mut v = Validator::new();
        let name = v.check("name", parse_tenant_name(name));
        let email = v.check("ownerEmail", Email::parse(owner_email));
        v.finish()?;
        let (Some(name), Some(email)) = (name, email) else {
            return Err(Error::Internal("tenant validation lost an error".into()));
        };
        let now = self.clock.now();
        let tenant = Tenant {
            id: TenantId(self.ids.new_id()),
            name,
            plan,
            credits: 0,
            created_at: now,
        };
        let owner = TenantMember {
            id: MemberId(self.ids.new_id()),
            tenant_id: tenant.id,
            email,
            role: Role::Owner,
            created_at: now,
        };
        let token = issue(self.ids.as_ref(), SecretKind::MemberToken);
        self.tenants.create_tenant(&tenant, &owner, &token.hash)?;
        Ok(CreatedTenant {
            tenant,
            owner,
            token: token.plaintext,
        })
    }

    /// Changes a tenant's plan (CLI).
    pub fn set_plan(&self, tenant: TenantId, plan: Plan) -> Result<Tenant, Error> {
        self.tenants.set_plan(tenant, plan)
    }

    /// Adds credits to a tenant (CLI); negative amounts remove credits.
    pub fn add_credits(&self, tenant: TenantId, amount: i64) -> Result<Tenant, Error> {
        self.tenants.add_credits(tenant, amount)
    }

    /// The member holding a dashboard token. The token is looked up by its
    /// SHA-256 hash through a unique index: the plaintext is never compared,
    /// so there is no comparison whose timing could leak it.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Actor, Error> {
        let token = token.map(str::trim).filter(|t| !t.is_empty());
        let token = token.ok_or(Error::MissingCredentials)?;
        if !token.starts_with(SecretKind::MemberToken.prefix()) {
            return Err(Error::InvalidCredentials);
        }
        self.members
            .find_by_token(&SecretHash::of(token))?
            .ok_or(Error::InvalidCredentials)
    }

    /// The tenant's members.
    pub fn list_members(
        &self,
        actor: &Actor,
        page: &PageRequest<MemberId>,
    ) -> Result<Page<TenantMember, MemberId>, Error> {
        actor.authorize(Action::Read)?;
        self.members.list_members(actor.tenant_id(), page)
    }

    /// Adds a member; returns it with its token (shown once).
    pub fn add_member(
        &self,
        actor: &Actor,
        email: &str,
        role: &str,
    ) -> Result<WithSecret<TenantMember>, Error> {
        actor.authorize(Action::ManageMembers)?;
        let mut v = Validator::new();
        let email = v.check("email", Email::parse(email));
        let role = v.check("role", role.parse::<Role>());
        v.finish()?;
        let (Some(email), Some(role)) = (email, role) else {
            return Err(Error::Internal("member validation lost an error".into()));
        };
        authorize_grant(actor.member.role, role)?;
        let member = TenantMember {
            id: MemberId(self.ids.new_id()),
            tenant_id: actor.tenant_id(),
            email,
            role,
            created_at: self.clock.now(),
        };
        let token = issue(self.ids.as_ref(), SecretKind::MemberToken);
        self.members.insert_member(&member, &token.hash)?;
        Ok(WithSecret {
            value: member,
            secret: token.plaintext,
        })
    }

    /// Removes a member, never the tenant's last OWNER.
    pub fn remove_member(&self, actor: &Actor, id: MemberId) -> Result<(), Error> {
        // Look the member up first so another tenant's id is a 404 whatever
        // the role.
        let target = self.members.get_member(actor.tenant_id(), id)?;
        authorize_removal(actor.member.role, target.role)?;
        self.members
            .remove_member_keeping_an_owner(actor.tenant_id(), id)
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::testing::builders::*;
    use crate::testing::*;

    fn service(members: MockMemberRepository) -> TenancyService {
        TenancyService::new(
            fixed_clock(),
            random_ids(),
            Arc::new(MockTenantRepository::new()),
            Arc::new(members),
        )
    }

    #[test]
    fn authenticate_rejects_without_a_lookup_when_the_token_cannot_be_ours() {
        let mut members = MockMemberRepository::new();
        members.expect_find_by_token().never();
        let app = service(members);
        assert_eq!(
            app.authenticate(None).unwrap_err(),
            Error::MissingCredentials
        );
        assert_eq!(
            app.authenticate(Some("  ")).unwrap_err(),
            Error::MissingCredentials
        );
        assert_eq!(
            app.authenticate(Some("cd_live_x")).unwrap_err(),
            Error::InvalidCredentials
        );
    }

    #[test]
    fn authenticate_looks_up_the_hash() {
        let actor = an_actor().build();
        let expected = actor.clone();
        let mut members = MockMemberRepository::new();
        members
            .expect_find_by_token()
            .withf(|hash| *hash == SecretHash::of("cd_pat_abc"))
            .return_const(Ok(Some(expected)));
        assert_eq!(
            service(members).authenticate(Some("cd_pat_abc")).unwrap(),
            actor
        );
    }

    #[test]
    fn adding_members_respects_grants() {
        let mut members = MockMemberRepository::new();
        members.expect_insert_member().times(1).return_const(Ok(()));
        let app = service(members);
        let admin = an_actor().role(Role::Admin).build();
        let err = app
            .add_member(&admin, "new@acme.test", "OWNER")
            .unwrap_err();
        assert_eq!(
            err,
            Error::RoleTooWeak {
                needed: Role::Owner
            }
        );
        let err = app.add_member(&admin, "bad", "CHIEF").unwrap_err();
        let fields: Vec<_> = err
            .field_errors()
            .iter()
            .map(|e| e.field.as_str())
            .collect();
        assert_eq!(fields, ["email", "role"]);
        let added = app.add_member(&admin, "New@Acme.test", "MANAGER").unwrap();
        assert_eq!(added.value.email.as_str(), "new@acme.test");
        assert!(added.secret.starts_with("cd_pat_"));
    }

    #[test]
    fn removing_a_stronger_member_is_refused_before_the_store() {
        let admin = an_actor().role(Role::Admin).build();
        let owner = a_member()
            .tenant_id(admin.tenant.id)
            .role(Role::Owner)
            .build();
        let mut members = MockMemberRepository::new();
        members.expect_get_member().return_const(Ok(owner.clone()));
        members.expect_remove_member_keeping_an_owner().never();
        assert_eq!(
            service(members)
                .remove_member(&admin, owner.id)
                .unwrap_err()
                .code(),
            "ROLE_TOO_WEAK"
        );
    }
}
