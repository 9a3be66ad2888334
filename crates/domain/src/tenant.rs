//! Tenants, their plans and AI credits, and their team members with roles.

use chrono::{DateTime, Utc};

use crate::closed_enum::closed_enum;
use crate::email::Email;
use crate::error::Error;
use crate::ids::{MemberId, TenantId};

closed_enum!(
    /// A tenant's subscription plan.
    Plan {
        /// Free plan.
        Free => "FREE",
        /// Starter plan.
        Starter => "STARTER",
        /// Pro plan; includes the chat widget.
        Pro => "PRO",
        /// Enterprise plan; includes the chat widget.
        Enterprise => "ENTERPRISE",
    }
);

impl Plan {
    /// Whether the plan includes the chat widget (PRO and ENTERPRISE).
    pub fn includes_chat_widget(self) -> bool {
        matches!(self, Plan::Pro | Plan::Enterprise)
    }

    /// How many sites the plan allows; `None` is unlimited.
    ///
    /// FREE 1, STARTER 3, PRO 10, ENTERPRISE unlimited.
    pub fn site_cap(self) -> Option<u32> {
        match self {
            Plan::Free => Some(1),
            Plan::Starter => Some(3),
            Plan::Pro => Some(10),
            Plan::Enterprise => None,
        }
    }

    /// `Ok` when a tenant that has `current` sites may add one more.
    pub fn check_site_cap(self, current: u64) -> Result<(), Error> {
        match self.site_cap() {
            Some(cap) if current >= u64::from(cap) => Err(Error::PlanLimit { plan: self, cap }),
            _ => Ok(()),
        }
    }
}

/// A customer company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Display name (1–100 characters).
    pub name: String,
    /// Subscription plan.
    pub plan: Plan,
    /// AI credits left; generating an answer spends them.
    pub credits: i64,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

impl Tenant {
    /// Whether the tenant can pay for `cost` credits.
    pub fn can_spend(&self, cost: i64) -> bool {
        cost <= 0 || self.credits >= cost
    }
}

/// Checks a tenant name: single-line text ([`crate::text::single_line`]),
/// trimmed, 1–100 characters.
pub fn parse_tenant_name(raw: &str) -> Result<String, String> {
    crate::text::single_line(raw, 1, 100)
}

/// Checks a credit adjustment: it must leave the balance at or above zero.
pub fn add_credits(balance: i64, delta: i64) -> Result<i64, Error> {
    match balance.checked_add(delta) {
        Some(total) if total >= 0 => Ok(total),
        Some(_) => Err(Error::invalid(
            "credits",
            "would leave the tenant with a negative balance",
        )),
        None => Err(Error::invalid("credits", "is out of range")),
    }
}

closed_enum!(
    /// A team member's role, weakest first.
    Role {
        /// Reads everything and changes ticket status.
        Member => "MEMBER",
        /// Also edits sites, widgets and content and regenerates keys.
        Manager => "MANAGER",
        /// Also manages members and mapping.
        Admin => "ADMIN",
        /// Also grants OWNER.
        Owner => "OWNER",
    }
);

impl Role {
    fn rank(self) -> u8 {
        match self {
            Role::Member => 0,
            Role::Manager => 1,
            Role::Admin => 2,
            Role::Owner => 3,
        }
    }

    /// Whether this role is `other` or stronger.
    pub fn at_least(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }
}

impl PartialOrd for Role {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Role {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

/// Everything a member can be allowed to do in the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read sites, widgets, content, conversations, tickets, members.
    Read,
    /// Change a ticket's status.
    ChangeTicketStatus,
    /// Create, edit and delete sites, widgets and content; regenerate keys
    /// and identity secrets.
    EditSites,
    /// Add and remove members.
    ManageMembers,
    /// Set a site's mapping status.
    ManageMapping,
    /// Make someone an OWNER.
    GrantOwner,
}

impl Action {
    /// The weakest role allowed to take this action.
    pub fn weakest_role(self) -> Role {
        match self {
            Action::Read | Action::ChangeTicketStatus => Role::Member,
            Action::EditSites => Role::Manager,
            Action::ManageMembers | Action::ManageMapping => Role::Admin,
            Action::GrantOwner => Role::Owner,
        }
    }
}

/// `Ok` when `role` may take `action`, else [`Error::RoleTooWeak`].
pub fn authorize(role: Role, action: Action) -> Result<(), Error> {
    let needed = action.weakest_role();
    if role.at_least(needed) {
        Ok(())
    } else {
        Err(Error::RoleTooWeak { needed })
    }
}

/// `Ok` when a member with role `actor` may add a member with role `granted`:
/// ADMIN or stronger may add members, and only an OWNER may grant OWNER.
pub fn authorize_grant(actor: Role, granted: Role) -> Result<(), Error> {
    authorize(actor, Action::ManageMembers)?;
    if granted == Role::Owner {
        authorize(actor, Action::GrantOwner)?;
    }
    Ok(())
}

/// `Ok` when a member with role `actor` may remove a member with role
/// `target`: ADMIN or stronger, and never someone of a stronger role than
/// one's own. Whether the target is the last owner is checked by the store
/// in the removing transaction (see [`Error::LastOwner`]).
pub fn authorize_removal(actor: Role, target: Role) -> Result<(), Error> {
    authorize(actor, Action::ManageMembers)?;
    if !actor.at_least(target) {
        return Err(Error::RoleTooWeak { needed: target });
    }
    Ok(())
}

/// A team member of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantMember {
    /// Its id.
    pub id: MemberId,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// Its email, lower-cased; unique within the tenant.
    pub email: Email,
    /// Its role.
    pub role: Role,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// A signed-in member together with its tenant, as every dashboard route
/// sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The member.
    pub member: TenantMember,
    /// The member's tenant.
    pub tenant: Tenant,
}

impl Actor {
    /// Whose `Idempotency-Key`s this member's requests carry: keys are
    /// per member.
    pub fn idempotency_scope(&self) -> String {
        format!("member:{}", self.member.id)
    }

    /// `Ok` when the actor's role may take `action`.
    pub fn authorize(&self, action: Action) -> Result<(), Error> {
        authorize(self.member.role, action)
    }

    /// The actor's tenant id.
    pub fn tenant_id(&self) -> TenantId {
        self.tenant.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_includes_chat_widget_only_on_pro_and_enterprise() {
        let table = [
            (Plan::Free, false),
            (Plan::Starter, false),
            (Plan::Pro, true),
            (Plan::Enterprise, true),
        ];
        for (plan, expected) in table {
            assert_eq!(plan.includes_chat_widget(), expected, "{plan}");
        }
    }

    #[test]
    fn site_cap_per_plan() {
        let table = [
            (Plan::Free, 0, true),
            (Plan::Free, 1, false),
            (Plan::Starter, 2, true),
            (Plan::Starter, 3, false),
            (Plan::Pro, 9, true),
            (Plan::Pro, 10, false),
            (Plan::Enterprise, 10_000, true),
        ];
        for (plan, current, allowed) in table {
            let result = plan.check_site_cap(current);
            assert_eq!(result.is_ok(), allowed, "{plan} with {current} sites");
            if let Err(err) = result {
                assert_eq!(err.code(), "PLAN_LIMIT");
            }
        }
    }

    #[test]
    fn enums_parse_their_names_and_nothing_else() {
        for plan in Plan::ALL {
            assert_eq!(plan.as_str().parse::<Plan>(), Ok(*plan));
        }
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(*role));
        }
        let err = "pro".parse::<Plan>().expect_err("lower case is rejected");
        assert_eq!(err, "must be one of FREE, STARTER, PRO, ENTERPRISE");
    }

    #[test]
    fn roles_are_ordered_weakest_first() {
        assert!(Role::Member < Role::Manager);
        assert!(Role::Manager < Role::Admin);
        assert!(Role::Admin < Role::Owner);
        assert!(Role::Owner.at_least(Role::Owner));
        assert!(!Role::Admin.at_least(Role::Owner));
    }

    #[test]
    fn permissions_table() {
        use Action::*;
        use Role::*;
        // (role, action, allowed)
        let table = [
            (Member, Read, true),
            (Member, ChangeTicketStatus, true),
            (Member, EditSites, false),
            (Member, ManageMembers, false),
            (Member, ManageMapping, false),
            (Member, GrantOwner, false),
            (Manager, EditSites, true),
            (Manager, ManageMembers, false),
            (Manager, ManageMapping, false),
            (Admin, EditSites, true),
            (Admin, ManageMembers, true),
            (Admin, ManageMapping, true),
            (Admin, GrantOwner, false),
            (Owner, ManageMembers, true),
            (Owner, ManageMapping, true),
            (Owner, GrantOwner, true),
        ];
        for (role, action, allowed) in table {
            let result = authorize(role, action);
            assert_eq!(result.is_ok(), allowed, "{role} {action:?}");
            if let Err(err) = result {
                assert_eq!(err.code(), "ROLE_TOO_WEAK");
            }
        }
    }

    #[test]
    fn granting_roles() {
        use Role::*;
        let table = [
            (Manager, Member, false),
            (Admin, Member, true),
            (Admin, Admin, true),
            (Admin, Owner, false),
            (Owner, Owner, true),
        ];
        for (actor, granted, allowed) in table {
            assert_eq!(
                authorize_grant(actor, granted).is_ok(),
                allowed,
                "{actor} granting {granted}"
            );
        }
    }

    #[test]
    fn removing_members() {
        use Role::*;
        let table = [
            (Manager, Member, false),
            (Admin, Member, true),
            (Admin, Admin, true),
            (Admin, Owner, false),
            (Owner, Owner, true),
        ];
        for (actor, target, allowed) in table {
            assert_eq!(
                authorize_removal(actor, target).is_ok(),
                allowed,
                "{actor} removing {target}"
            );
        }
    }

    #[test]
    fn credits() {
        assert_eq!(add_credits(10, 5), Ok(15));
        assert_eq!(add_credits(10, -10), Ok(0));
        assert!(add_credits(10, -11).is_err());
        assert!(add_credits(i64::MAX, 1).is_err());
        let tenant = Tenant {
            id: TenantId(uuid::Uuid::nil()),
            name: "Acme".into(),
            plan: Plan::Pro,
            credits: 3,
            created_at: Utc::now(),
        };
        assert!(tenant.can_spend(3));
        assert!(!tenant.can_spend(4));
        assert!(tenant.can_spend(0));
    }

    #[test]
    fn tenant_names() {
        assert_eq!(parse_tenant_name("  Acme "), Ok("Acme".to_string()));
        assert!(parse_tenant_name("   ").is_err());
        assert!(parse_tenant_name(&"x".repeat(101)).is_err());
        // (name, valid)
        let table = [
            ("Société Générale", true),
            ("株式会社テスト", true),
            ("Acme 🚀", true),
            ("Acme\u{0}", false),
            ("Acme\nInc", false),
            ("Acme\t", false),
            ("Acme\u{85}", false),
            ("\u{202E}emcA", false),
            ("Ac\u{200B}me", false),
        ];
        for (name, valid) in table {
            assert_eq!(parse_tenant_name(name).is_ok(), valid, "{name:?}");
        }
    }
}
