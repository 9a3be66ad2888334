//! Tenants: creation with the first owner, plan, credits.

use std::sync::Arc;

use chatdesk_domain::ids::TenantId;
use chatdesk_domain::ports::{MemberRepository, TenantRepository};
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::tenant::{Plan, Role};
use chatdesk_domain::testing::builders::{a_member, a_tenant};
use chatdesk_domain::{Entity, Error};
use chrono::{SubsecRound, TimeZone, Utc};
use uuid::Uuid;

use crate::helpers::{stores, tenant_with_owner};

#[test]
fn a_tenant_and_its_owner_round_trip() {
    for t in stores() {
        // Nanoseconds are stored to the microsecond.
        let created = Utc
            .timestamp_opt(1_767_268_800, 123_456_789)
            .single()
            .expect("valid instant");
        let tenant = a_tenant()
            .name("Acme Ltd".into())
            .plan(Plan::Starter)
            .credits(42)
            .with(|t| t.created_at = created)
            .build();
        let owner = a_member()
            .tenant_id(tenant.id)
            .with(|m| m.created_at = created)
            .build();
        let token = SecretHash::of("cd_pat_round_trip");
        t.create_tenant(&tenant, &owner, &token).expect("creates");

        let mut expected = tenant.clone();
        expected.created_at = created.trunc_subsecs(6);
        assert_eq!(
            t.get_tenant(tenant.id).expect("reads"),
            expected,
            "{}",
            t.name()
        );

        let mut expected_owner = owner.clone();
        expected_owner.created_at = created.trunc_subsecs(6);
        assert_eq!(
            t.get_member(tenant.id, owner.id).expect("reads"),
            expected_owner
        );
        assert_eq!(
            t.first_owner(tenant.id).expect("reads"),
            Some(expected_owner.clone())
        );

        let actor = t.find_by_token(&token).expect("finds").expect("an actor");
        assert_eq!(actor.member, expected_owner);
        assert_eq!(actor.tenant, expected);
        assert_eq!(actor.member.role, Role::Owner);
        assert_eq!(
            t.find_by_token(&SecretHash::of("cd_pat_other"))
                .expect("finds"),
            None
        );
    }
}

#[test]
fn unknown_tenants_are_not_found() {
    for t in stores() {
        let nobody = TenantId(Uuid::now_v7());
        assert_eq!(t.get_tenant(nobody), Err(Error::NotFound(Entity::Tenant)));
        assert_eq!(
            t.set_plan(nobody, Plan::Pro),
            Err(Error::NotFound(Entity::Tenant))
        );
        assert_eq!(
            t.add_credits(nobody, 1),
            Err(Error::NotFound(Entity::Tenant))
        );
    }
}

#[test]
fn the_plan_changes() {
    for t in stores() {
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Free);
        let changed = t.set_plan(tenant.id, Plan::Enterprise).expect("sets");
        assert_eq!(changed.plan, Plan::Enterprise);
        assert_eq!(
            t.get_tenant(tenant.id).expect("reads"),
            changed,
            "{}",
            t.name()
        );
    }
}

#[test]
fn credits_never_go_negative() {
    for t in stores() {
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Pro);
        assert_eq!(tenant.credits, 100);
        assert_eq!(t.add_credits(tenant.id, 50).expect("adds").credits, 150);
        let err = t
            .add_credits(tenant.id, -151)
            .expect_err("would be negative");
        assert_eq!(err.code(), "VALIDATION_FAILED", "{}", t.name());
        assert_eq!(
            t.get_tenant(tenant.id).expect("reads").credits,
            150,
            "unchanged"
        );
        assert_eq!(
            t.add_credits(tenant.id, -150).expect("spends all").credits,
            0
        );
        assert!(t.add_credits(tenant.id, -1).is_err());
        assert!(t.add_credits(tenant.id, i64::MAX).is_ok());
        assert!(t.add_credits(tenant.id, 1).is_err(), "overflow is refused");
    }
}

#[test]
fn concurrent_spending_never_overdraws() {
    for t in stores() {
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Pro);
        let store = Arc::new(t.store.clone());
        // 100 credits, 8 spenders of 30: exactly 3 can be paid.
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || store.add_credits(tenant.id, -30).is_ok())
            })
            .collect();
        let paid = handles
            .into_iter()
            .map(|h| h.join().expect("joins"))
            .filter(|ok| *ok)
            .count();
        assert_eq!(paid, 3, "{}", t.name());
        assert_eq!(t.get_tenant(tenant.id).expect("reads").credits, 10);
    }
}

#[test]
fn a_failed_creation_leaves_nothing_behind() {
    for t in stores() {
        let (first, _, token) = tenant_with_owner(&t, Plan::Pro);
        // A second tenant whose owner reuses the first owner's token hash:
        // the member insert fails, so the tenant insert is rolled back.
        let tenant = a_tenant().build();
        let owner = a_member().tenant_id(tenant.id).build();
        let err = t
            .create_tenant(&tenant, &owner, &SecretHash::of(&token))
            .expect_err("token hash taken");
        assert_eq!(err.code(), "INTERNAL", "{}", t.name());
        assert_eq!(
            t.get_tenant(tenant.id),
            Err(Error::NotFound(Entity::Tenant))
        );
        assert!(t.get_tenant(first.id).is_ok());
    }
}
