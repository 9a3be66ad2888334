//! What an operator does across tenants from the command line: see which
//! tenants a database holds, and give a tenant's owner a new dashboard
//! token (only its hash is stored, so a lost token cannot be shown again).

use std::sync::Arc;

use super::{issue, WithSecret};
use crate::error::{Entity, Error};
use crate::ids::TenantId;
use crate::ports::{IdGenerator, MemberRepository, TenantDirectory};
use crate::secret::SecretKind;
use crate::tenant::{Tenant, TenantMember};

/// Tenants as the operator sees them.
#[derive(Clone)]
pub struct OperatorService {
    ids: Arc<dyn IdGenerator>,
    directory: Arc<dyn TenantDirectory>,
    members: Arc<dyn MemberRepository>,
}

impl OperatorService {
    /// The service over its ports.
    pub fn new(
        ids: Arc<dyn IdGenerator>,
        directory: Arc<dyn TenantDirectory>,
        members: Arc<dyn MemberRepository>,
    ) -> Self {
        OperatorService {
            ids,
            directory,
            members,
        }
    }

    /// Up to `limit` (1–100) tenants, oldest first.
    pub fn oldest_tenants(&self, limit: u32) -> Result<Vec<Tenant>, Error> {
        self.directory.oldest_tenants(limit.clamp(1, 100))
    }

    /// The tenant's first OWNER, if it has one.
    pub fn owner(&self, tenant: TenantId) -> Result<Option<TenantMember>, Error> {
        self.members.first_owner(tenant)
    }

    /// Issues a new dashboard token to the tenant's first OWNER; the old
    /// one stops working at once. Returns the owner with the token, shown
    /// this once. [`Error::NotFound`] when the tenant has no owner.
    pub fn reissue_owner_token(&self, tenant: TenantId) -> Result<WithSecret<TenantMember>, Error> {
        let owner = self
            .members
            .first_owner(tenant)?
            .ok_or(Error::NotFound(Entity::Member))?;
        let token = issue(self.ids.as_ref(), SecretKind::MemberToken);
        self.directory
            .replace_member_token(tenant, owner.id, &token.hash)?;
        Ok(WithSecret {
            value: owner,
            secret: token.plaintext,
        })
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::ports::{MockMemberRepository, MockTenantDirectory};
    use crate::secret::SecretHash;
    use crate::tenant::Role;
    use crate::testing::builders::*;
    use crate::testing::*;

    #[test]
    fn the_owner_gets_a_new_token_whose_hash_is_stored() {
        let tenant = a_tenant().build();
        let owner = a_member().tenant_id(tenant.id).role(Role::Owner).build();
        let owner_id = owner.id;
        let mut members = MockMemberRepository::new();
        members
            .expect_first_owner()
            .withf(move |t| *t == tenant.id)
            .return_const(Ok(Some(owner)));
        let stored: Arc<std::sync::Mutex<Option<SecretHash>>> = Arc::default();
        let seen = stored.clone();
        let mut directory = MockTenantDirectory::new();
        directory
            .expect_replace_member_token()
            .withf(move |t, m, _| *t == tenant.id && *m == owner_id)
            .times(1)
            .returning(move |_, _, hash| {
                *seen.lock().expect("lock") = Some(hash.clone());
                Ok(())
            });
        let app = OperatorService::new(random_ids(), Arc::new(directory), Arc::new(members));
        let issued = app.reissue_owner_token(tenant.id).expect("reissued");
        assert_eq!(issued.value.id, owner_id);
        assert!(issued.secret.starts_with("cd_pat_"), "{}", issued.secret);
        assert_eq!(
            stored.lock().expect("lock").clone(),
            Some(SecretHash::of(&issued.secret))
        );
    }

    #[test]
    fn a_tenant_without_an_owner_is_not_found_and_nothing_is_written() {
        let mut members = MockMemberRepository::new();
        members.expect_first_owner().return_const(Ok(None));
        let mut directory = MockTenantDirectory::new();
        directory.expect_replace_member_token().never();
        let app = OperatorService::new(random_ids(), Arc::new(directory), Arc::new(members));
        assert_eq!(
            app.reissue_owner_token(a_tenant().build().id).unwrap_err(),
            Error::NotFound(Entity::Member)
        );
    }

    #[test]
    fn the_limit_is_kept_within_one_page() {
        let mut directory = MockTenantDirectory::new();
        directory
            .expect_oldest_tenants()
            .withf(|limit| *limit == 100)
            .return_const(Ok(vec![]));
        directory
            .expect_oldest_tenants()
            .withf(|limit| *limit == 1)
            .return_const(Ok(vec![]));
        let app = OperatorService::new(
            random_ids(),
            Arc::new(directory),
            Arc::new(MockMemberRepository::new()),
        );
        assert!(app.oldest_tenants(1000).expect("listed").is_empty());
        assert!(app.oldest_tenants(0).expect("listed").is_empty());
    }
}
