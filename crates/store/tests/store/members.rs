//! Team members: insert, isolation, pages, owners.

use chatdesk_domain::email::Email;
use chatdesk_domain::ids::MemberId;
use chatdesk_domain::ports::{MemberRepository, PageRequest};
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::tenant::{Plan, Role, TenantMember};
use chatdesk_domain::testing::builders::{a_member, t0};
use chatdesk_domain::{Entity, Error};
use chatdesk_store::Store;
use uuid::Uuid;

use crate::helpers::{stores, tenant_with_owner};

fn member(tenant: chatdesk_domain::ids::TenantId, email: &str, role: Role) -> TenantMember {
    a_member()
        .tenant_id(tenant)
        .email(Email::parse(email).expect("valid email"))
        .role(role)
        .build()
}

fn token() -> SecretHash {
    SecretHash::of(&format!("cd_pat_{}", Uuid::new_v4().simple()))
}

/// Every page of the tenant's members, `limit` at a time; `between` runs
/// after the first page.
fn walk(
    store: &Store,
    tenant: chatdesk_domain::ids::TenantId,
    limit: u32,
    mut between: impl FnMut(),
) -> Vec<Vec<MemberId>> {
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_members(tenant, &PageRequest { limit, after })
            .expect("lists");
        pages.push(page.items.iter().map(|m| m.id).collect());
        if pages.len() == 1 {
            between();
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return pages,
        }
    }
}

#[test]
fn members_round_trip_and_emails_are_unique_per_tenant() {
    for t in stores() {
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Pro);
        let (other, _, _) = tenant_with_owner(&t, Plan::Pro);
        let admin = member(tenant.id, "admin@acme.test", Role::Admin);
        let admin_token = token();
        t.insert_member(&admin, &admin_token).expect("inserts");
        assert_eq!(
            t.get_member(tenant.id, admin.id).expect("reads"),
            admin,
            "{}",
            t.name()
        );
        let actor = t
            .find_by_token(&admin_token)
            .expect("finds")
            .expect("an actor");
        assert_eq!((actor.member, actor.tenant.id), (admin.clone(), tenant.id));

        let again = member(tenant.id, "admin@acme.test", Role::Member);
        assert_eq!(
            t.insert_member(&again, &token()),
            Err(Error::MemberExists),
            "{}",
            t.name()
        );
        // The same address may belong to another tenant.
        let elsewhere = member(other.id, "admin@acme.test", Role::Member);
        t.insert_member(&elsewhere, &token())
            .expect("another tenant");
    }
}

#[test]
fn another_tenants_member_is_not_found() {
    for t in stores() {
        let (tenant, owner, _) = tenant_with_owner(&t, Plan::Pro);
        let (other, _, _) = tenant_with_owner(&t, Plan::Pro);
        assert_eq!(
            t.get_member(other.id, owner.id),
            Err(Error::NotFound(Entity::Member))
        );
        assert_eq!(
            t.get_member(tenant.id, MemberId(Uuid::now_v7())),
            Err(Error::NotFound(Entity::Member))
        );
        assert_eq!(
            t.remove_member_keeping_an_owner(other.id, owner.id),
            Err(Error::NotFound(Entity::Member)),
            "{}",
            t.name()
        );
        assert!(t.get_member(tenant.id, owner.id).is_ok(), "still there");
        let members = t
            .list_members(
                other.id,
                &PageRequest {
                    limit: 100,
                    after: None,
                },
            )
            .expect("lists");
        assert!(members.items.iter().all(|m| m.tenant_id == other.id));
    }
}

#[test]
fn members_page_by_id_without_duplicates_or_gaps() {
    for t in stores() {
        let (tenant, owner, _) = tenant_with_owner(&t, Plan::Pro);
        let mut all = vec![owner.id];
        for i in 0..4 {
            let m = member(tenant.id, &format!("m{i}@acme.test"), Role::Member);
            t.insert_member(&m, &token()).expect("inserts");
            all.push(m.id);
        }
        all.sort();

        let pages = walk(&t, tenant.id, 2, || {});
        let sizes: Vec<_> = pages.iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 1], "{}", t.name());
        assert_eq!(pages.concat(), all, "oldest (lowest v7 id) first");

        // A member inserted between page fetches, with an id before the
        // cursor, shifts nothing: no item is served twice.
        let early = TenantMember {
            id: MemberId(Uuid::parse_str("00000000-0000-7000-8000-000000000001").expect("uuid")),
            ..member(tenant.id, "early@acme.test", Role::Member)
        };
        let pages = walk(&t, tenant.id, 2, || {
            t.insert_member(&early, &token()).expect("inserts");
        });
        let seen = pages.concat();
        assert_eq!(seen, all, "{}: no duplicates, no gaps", t.name());
    }
}

#[test]
fn the_last_owner_cannot_be_removed() {
    for t in stores() {
        let (tenant, owner, _) = tenant_with_owner(&t, Plan::Pro);
        let admin = member(tenant.id, "admin@acme.test", Role::Admin);
        t.insert_member(&admin, &token()).expect("inserts");

        assert_eq!(
            t.remove_member_keeping_an_owner(tenant.id, owner.id),
            Err(Error::LastOwner),
            "{}",
            t.name()
        );
        // Removing a non-owner works.
        t.remove_member_keeping_an_owner(tenant.id, admin.id)
            .expect("removes the admin");
        assert_eq!(
            t.get_member(tenant.id, admin.id),
            Err(Error::NotFound(Entity::Member))
        );
        assert_eq!(
            t.remove_member_keeping_an_owner(tenant.id, admin.id),
            Err(Error::NotFound(Entity::Member))
        );

        // With a second owner, either may go, and the first owner changes.
        let second = TenantMember {
            created_at: t0() + chrono::Duration::hours(1),
            ..member(tenant.id, "second@acme.test", Role::Owner)
        };
        t.insert_member(&second, &token()).expect("inserts");
        assert_eq!(
            t.first_owner(tenant.id).expect("reads").map(|m| m.id),
            Some(owner.id)
        );
        t.remove_member_keeping_an_owner(tenant.id, owner.id)
            .expect("removes an owner");
        assert_eq!(
            t.first_owner(tenant.id).expect("reads").map(|m| m.id),
            Some(second.id)
        );
        assert_eq!(
            t.remove_member_keeping_an_owner(tenant.id, second.id),
            Err(Error::LastOwner)
        );
    }
}

#[test]
fn first_owner_is_the_oldest_owner() {
    for t in stores() {
        let (tenant, owner, _) = tenant_with_owner(&t, Plan::Pro);
        let older_admin = TenantMember {
            created_at: t0() - chrono::Duration::days(1),
            ..member(tenant.id, "admin@acme.test", Role::Admin)
        };
        let newer_owner = TenantMember {
            created_at: t0() + chrono::Duration::days(1),
            ..member(tenant.id, "newer@acme.test", Role::Owner)
        };
        t.insert_member(&older_admin, &token()).expect("inserts");
        t.insert_member(&newer_owner, &token()).expect("inserts");
        assert_eq!(
            t.first_owner(tenant.id).expect("reads"),
            Some(owner),
            "{}",
            t.name()
        );
        let (nobody, _, _) = tenant_with_owner(&t, Plan::Pro);
        assert!(t.first_owner(nobody.id).expect("reads").is_some());
        assert_eq!(
            t.first_owner(chatdesk_domain::ids::TenantId(Uuid::now_v7()))
                .expect("reads"),
            None
        );
    }
}

#[test]
fn members_of_an_unknown_tenant_are_refused() {
    for t in stores() {
        let stray = member(
            chatdesk_domain::ids::TenantId(Uuid::now_v7()),
            "x@acme.test",
            Role::Member,
        );
        assert_eq!(
            t.insert_member(&stray, &token()),
            Err(Error::NotFound(Entity::Tenant)),
            "{}",
            t.name()
        );
    }
}
