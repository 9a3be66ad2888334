//! What an operator of chatdesk reads and changes across tenants from the
//! command line (not a tenant's dashboard).

use crate::error::Error;
use crate::ids::{MemberId, TenantId};
use crate::secret::SecretHash;
use crate::tenant::Tenant;

#[cfg(feature = "testing")]
use mockall::automock;

/// Every tenant of the database, and members' tokens.
#[cfg_attr(feature = "testing", automock)]
pub trait TenantDirectory: Send + Sync {
    /// Up to `limit` tenants, oldest first (by creation, then id).
    fn oldest_tenants(&self, limit: u32) -> Result<Vec<Tenant>, Error>;
    /// Replaces the token of a member of the tenant with one whose hash is
    /// `token`: the old token stops working at once. [`Error::NotFound`]
    /// when the member is not the tenant's.
    fn replace_member_token(
        &self,
        tenant: TenantId,
        member: MemberId,
        token: &SecretHash,
    ) -> Result<(), Error>;
}
