//! The use cases the API and the CLI call. Each is a method of
//! [`Chatdesk`], which holds the ports; each checks the actor's role,
//! validates its input with the entity rules, and calls the ports.

use std::sync::Arc;

use crate::content::{ContentFilter, ContentItem, ContentPatchInput, NewContentInput};
use crate::email::Email;
use crate::error::{Entity, Error};
use crate::ids::{ContentId, MemberId, SiteId, TenantId, WidgetId};
use crate::ports::{
    Clock, ContentRepository, IdGenerator, MemberRepository, Page, PageRequest, Readiness,
    SiteRepository, TenantRepository, WidgetRepository,
};
use crate::secret::{IssuedSecret, SecretHash, SecretKind};
use crate::site::{MappingStatus, NewSiteInput, Site, SitePatchInput};
use crate::tenant::{
    authorize_grant, authorize_removal, parse_tenant_name, Action, Actor, Plan, Role, Tenant,
    TenantMember,
};
use crate::widget::{ChatWidget, WidgetSettingsInput};

/// The ports every use case draws on.
#[derive(Clone)]
pub struct Chatdesk {
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// Ids and randomness.
    pub ids: Arc<dyn IdGenerator>,
    /// Database reachability.
    pub readiness: Arc<dyn Readiness>,
    /// Tenants.
    pub tenants: Arc<dyn TenantRepository>,
    /// Members.
    pub members: Arc<dyn MemberRepository>,
    /// Sites.
    pub sites: Arc<dyn SiteRepository>,
    /// Widgets.
    pub widgets: Arc<dyn WidgetRepository>,
    /// Content library.
    pub content: Arc<dyn ContentRepository>,
}

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

/// A site or secret change that shows a secret once.
#[derive(Debug, Clone)]
pub struct WithSecret<T> {
    /// The thing.
    pub value: T,
    /// The full secret, shown once.
    pub secret: String,
}

impl Chatdesk {
    fn issue(&self, kind: SecretKind) -> IssuedSecret {
        IssuedSecret::new(kind, self.ids.random_bytes())
    }

    /// Makes a tenant and its first OWNER (CLI).
    pub fn create_tenant(
        &self,
        name: &str,
        plan: Plan,
        owner_email: &str,
    ) -> Result<CreatedTenant, Error> {
        let mut v = crate::error::Validator::new();
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
        let token = self.issue(SecretKind::MemberToken);
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

    /// The member holding a dashboard token.
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

    /// Whether the database answers.
    pub fn ready(&self) -> Result<(), Error> {
        self.readiness.check()
    }

    // ----- members -----

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
        let mut v = crate::error::Validator::new();
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
        let token = self.issue(SecretKind::MemberToken);
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

    // ----- sites -----

    /// Creates a site within the plan's cap; returns it with its API key.
    pub fn create_site(
        &self,
        actor: &Actor,
        input: &NewSiteInput,
    ) -> Result<WithSecret<Site>, Error> {
        actor.authorize(Action::EditSites)?;
        let new = input.parse()?;
        let now = self.clock.now();
        let key = self.issue(SecretKind::SiteKey);
        let site = Site {
            id: SiteId(self.ids.new_id()),
            tenant_id: actor.tenant_id(),
            domain: new.domain,
            name: new.name,
            allow_subdomains: new.allow_subdomains,
            mapping_status: MappingStatus::Pending,
            api_key_prefix: key.display_prefix,
            api_key_hash: key.hash,
            identity_secret_hash: None,
            theme: new.theme,
            created_at: now,
            updated_at: now,
        };
        let plan = actor.tenant.plan;
        self.sites
            .insert_site_within_cap(&site, plan.site_cap(), plan)?;
        Ok(WithSecret {
            value: site,
            secret: key.plaintext,
        })
    }

    /// The tenant's sites.
    pub fn list_sites(
        &self,
        actor: &Actor,
        page: &PageRequest<SiteId>,
    ) -> Result<Page<Site, SiteId>, Error> {
        actor.authorize(Action::Read)?;
        self.sites.list_sites(actor.tenant_id(), page)
    }

    /// One of the tenant's sites.
    pub fn get_site(&self, actor: &Actor, id: SiteId) -> Result<Site, Error> {
        actor.authorize(Action::Read)?;
        self.sites.get_site(actor.tenant_id(), id)
    }

    fn editable_site(&self, actor: &Actor, id: SiteId, action: Action) -> Result<Site, Error> {
        // Look the site up first so another tenant's id is a 404 whatever
        // the role.
        let site = self.sites.get_site(actor.tenant_id(), id)?;
        actor.authorize(action)?;
        Ok(site)
    }

    /// Edits a site's domain, name, subdomain rule or theme.
    pub fn update_site(
        &self,
        actor: &Actor,
        id: SiteId,
        patch: &SitePatchInput,
    ) -> Result<Site, Error> {
        let mut site = self.editable_site(actor, id, Action::EditSites)?;
        if site.apply(patch, self.clock.now())? {
            self.sites.update_site(&site)?;
        }
        Ok(site)
    }

    /// Deletes a site and everything under it.
    pub fn delete_site(&self, actor: &Actor, id: SiteId) -> Result<(), Error> {
        self.editable_site(actor, id, Action::EditSites)?;
        self.sites.delete_site(actor.tenant_id(), id)
    }

    /// Replaces the site's API key; the old one stops working at once.
    pub fn regenerate_api_key(&self, actor: &Actor, id: SiteId) -> Result<WithSecret<Site>, Error> {
        let mut site = self.editable_site(actor, id, Action::EditSites)?;
        let key = self.issue(SecretKind::SiteKey);
        site.api_key_prefix = key.display_prefix;
        site.api_key_hash = key.hash;
        site.updated_at = self.clock.now();
        self.sites.update_site(&site)?;
        Ok(WithSecret {
            value: site,
            secret: key.plaintext,
        })
    }

    /// Sets the site's mapping status.
    pub fn set_mapping(&self, actor: &Actor, id: SiteId, status: &str) -> Result<Site, Error> {
        let mut site = self.editable_site(actor, id, Action::ManageMapping)?;
        let status = status
            .parse::<MappingStatus>()
            .map_err(|m| Error::invalid("status", m))?;
        if site.mapping_status != status {
            site.mapping_status = status;
            site.updated_at = self.clock.now();
            self.sites.update_site(&site)?;
        }
        Ok(site)
    }

    /// Issues a new identity secret and turns identity verification on.
    pub fn issue_identity_secret(
        &self,
        actor: &Actor,
        id: SiteId,
    ) -> Result<WithSecret<Site>, Error> {
        let mut site = self.editable_site(actor, id, Action::EditSites)?;
        let secret = self.issue(SecretKind::IdentitySecret);
        site.identity_secret_hash = Some(secret.hash);
        site.updated_at = self.clock.now();
        self.sites.update_site(&site)?;
        Ok(WithSecret {
            value: site,
            secret: secret.plaintext,
        })
    }

    // ----- widget -----

    /// The site's widget; [`Error::NotFound`] when it has none.
    pub fn get_widget(&self, actor: &Actor, site: SiteId) -> Result<(Site, ChatWidget), Error> {
        let site = self.get_site(actor, site)?;
        let widget = self
            .widgets
            .get_widget(site.id)?
            .ok_or(Error::NotFound(Entity::Widget))?;
        Ok((site, widget))
    }

    /// Creates the site's widget (DRAFT) or updates its settings. Returns
    /// the site, the widget and whether it was created.
    pub fn save_widget(
        &self,
        actor: &Actor,
        site: SiteId,
        input: &WidgetSettingsInput,
    ) -> Result<(Site, ChatWidget, bool), Error> {
        let site = self.editable_site(actor, site, Action::EditSites)?;
        let settings = input.parse()?;
        let now = self.clock.now();
        let (widget, created) = match self.widgets.get_widget(site.id)? {
            Some(mut widget) => {
                if widget.settings != settings {
                    widget.settings = settings;
                    widget.updated_at = now;
                }
                (widget, false)
            }
            None => (
                ChatWidget::new(WidgetId(self.ids.new_id()), site.id, settings, now),
                true,
            ),
        };
        self.widgets.save_widget(&widget)?;
        Ok((site, widget, created))
    }

    fn change_widget(
        &self,
        actor: &Actor,
        site: SiteId,
        change: impl FnOnce(&mut ChatWidget, &Site) -> Result<(), Error>,
    ) -> Result<(Site, ChatWidget), Error> {
        let site = self.editable_site(actor, site, Action::EditSites)?;
        let mut widget = self
            .widgets
            .get_widget(site.id)?
            .ok_or(Error::NotFound(Entity::Widget))?;
        change(&mut widget, &site)?;
        self.widgets.save_widget(&widget)?;
        Ok((site, widget))
    }

    /// Publishes the widget (needs the site mapped).
    pub fn publish_widget(&self, actor: &Actor, site: SiteId) -> Result<(Site, ChatWidget), Error> {
        let now = self.clock.now();
        self.change_widget(actor, site, |w, s| w.publish(s, now))
    }

    /// Pauses the widget (needs the site mapped).
    pub fn pause_widget(&self, actor: &Actor, site: SiteId) -> Result<(Site, ChatWidget), Error> {
        let now = self.clock.now();
        self.change_widget(actor, site, |w, s| w.pause(s, now))
    }

    // ----- content -----

    /// Adds a Flow or Tooltip to the site's library.
    pub fn create_content(
        &self,
        actor: &Actor,
        site: SiteId,
        input: &NewContentInput,
    ) -> Result<ContentItem, Error> {
        let site = self.editable_site(actor, site, Action::EditSites)?;
        let item = ContentItem::create(
            ContentId(self.ids.new_id()),
            site.id,
            input,
            self.clock.now(),
        )?;
        self.content.insert_content(&item)?;
        Ok(item)
    }

    /// The site's library, filtered.
    pub fn list_content(
        &self,
        actor: &Actor,
        site: SiteId,
        filter: &ContentFilter,
        page: &PageRequest<ContentId>,
    ) -> Result<Page<ContentItem, ContentId>, Error> {
        let site = self.get_site(actor, site)?;
        self.content.list_content(site.id, filter, page)
    }

    /// One item of the site's library.
    pub fn get_content(
        &self,
        actor: &Actor,
        site: SiteId,
        id: ContentId,
    ) -> Result<ContentItem, Error> {
        let site = self.get_site(actor, site)?;
        self.content.get_content(site.id, id)
    }

    /// Changes an item's status or audiences (removing "No users"
    /// re-targets an AI-made Flow to everyone).
    pub fn patch_content(
        &self,
        actor: &Actor,
        site: SiteId,
        id: ContentId,
        patch: &ContentPatchInput,
    ) -> Result<ContentItem, Error> {
        let site = self.sites.get_site(actor.tenant_id(), site)?;
        let mut item = self.content.get_content(site.id, id)?;
        actor.authorize(Action::EditSites)?;
        let patch = patch.parse()?;
        if item.apply(patch, self.clock.now()) {
            self.content.update_content(&item)?;
        }
        Ok(item)
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::testing::builders::*;
    use crate::testing::*;
    use crate::widget::WidgetStatus;

    fn site_input() -> NewSiteInput {
        NewSiteInput {
            domain: "Docs.Example.com".into(),
            name: "Docs".into(),
            allow_subdomains: true,
            theme: None,
        }
    }

    #[test]
    fn authenticate_rejects_without_a_lookup_when_the_token_cannot_be_ours() {
        let mut members = MockMemberRepository::new();
        members.expect_find_by_token().never();
        let app = ChatdeskBuilder::new().members(members).build();
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
        let app = ChatdeskBuilder::new().members(members).build();
        assert_eq!(app.authenticate(Some("cd_pat_abc")).unwrap(), actor);
    }

    #[test]
    fn create_site_checks_role_then_passes_the_plan_cap() {
        let mut sites = MockSiteRepository::new();
        sites
            .expect_insert_site_within_cap()
            .withf(|site, cap, plan| {
                site.domain.as_str() == "docs.example.com"
                    && *cap == Some(3)
                    && *plan == Plan::Starter
            })
            .times(1)
            .return_const(Ok(()));
        let app = ChatdeskBuilder::new().sites(sites).build();

        let member = an_actor().role(Role::Member).plan(Plan::Starter).build();
        let err = app.create_site(&member, &site_input()).unwrap_err();
        assert_eq!(err.code(), "ROLE_TOO_WEAK");

        let manager = an_actor().role(Role::Manager).plan(Plan::Starter).build();
        let created = app.create_site(&manager, &site_input()).unwrap();
        assert!(created.secret.starts_with("cd_live_"));
        assert!(created.secret.starts_with(&created.value.api_key_prefix));
        assert!(created.value.api_key_hash.verify(&created.secret));
        assert_eq!(created.value.tenant_id, manager.tenant.id);
        assert_eq!(created.value.mapping_status, MappingStatus::Pending);
    }

    #[test]
    fn another_tenants_site_is_not_found_whatever_the_role() {
        let mut sites = MockSiteRepository::new();
        sites
            .expect_get_site()
            .return_const(Err(Error::NotFound(Entity::Site)));
        sites.expect_update_site().never();
        let app = ChatdeskBuilder::new().sites(sites).build();
        let weak = an_actor().role(Role::Member).build();
        let id = SiteId(uuid::Uuid::now_v7());
        for result in [
            app.regenerate_api_key(&weak, id).map(|_| ()),
            app.set_mapping(&weak, id, "COMPLETED").map(|_| ()),
            app.delete_site(&weak, id),
            app.publish_widget(&weak, id).map(|_| ()),
        ] {
            assert_eq!(result.unwrap_err(), Error::NotFound(Entity::Site));
        }
    }

    #[test]
    fn regenerating_replaces_hash_and_prefix() {
        let actor = an_actor().role(Role::Manager).build();
        let site = a_site().tenant_id(actor.tenant.id).build();
        let old_hash = site.api_key_hash.clone();
        let mut sites = MockSiteRepository::new();
        sites.expect_get_site().return_const(Ok(site.clone()));
        sites
            .expect_update_site()
            .withf(move |s| s.api_key_hash != old_hash)
            .times(1)
            .return_const(Ok(()));
        let app = ChatdeskBuilder::new().sites(sites).build();
        let out = app.regenerate_api_key(&actor, site.id).unwrap();
        assert!(out.value.api_key_hash.verify(&out.secret));
        assert_ne!(out.value.api_key_prefix, site.api_key_prefix);
    }

    #[test]
    fn mapping_needs_admin_and_a_known_status() {
        let site = a_site().build();
        let mut sites = MockSiteRepository::new();
        sites.expect_get_site().return_const(Ok(site.clone()));
        sites.expect_update_site().times(1).return_const(Ok(()));
        let app = ChatdeskBuilder::new().sites(sites).build();
        let manager = an_actor().role(Role::Manager).build();
        assert_eq!(
            app.set_mapping(&manager, site.id, "COMPLETED")
                .unwrap_err()
                .code(),
            "ROLE_TOO_WEAK"
        );
        let admin = an_actor().role(Role::Admin).build();
        let err = app.set_mapping(&admin, site.id, "DONE").unwrap_err();
        assert_eq!(err.field_errors()[0].field, "status");
        let updated = app.set_mapping(&admin, site.id, "COMPLETED").unwrap();
        assert_eq!(updated.mapping_status, MappingStatus::Completed);
    }

    #[test]
    fn adding_members_respects_grants() {
        let mut members = MockMemberRepository::new();
        members.expect_insert_member().times(1).return_const(Ok(()));
        let app = ChatdeskBuilder::new().members(members).build();
        let admin = an_actor().role(Role::Admin).build();
        let err = app
            .add_member(&admin, "new@acme.test", "OWNER")
            .unwrap_err();
        assert_eq!(err.code(), "ROLE_TOO_WEAK");
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
        let app = ChatdeskBuilder::new().members(members).build();
        assert_eq!(
            app.remove_member(&admin, owner.id).unwrap_err().code(),
            "ROLE_TOO_WEAK"
        );
    }

    #[test]
    fn saving_a_widget_creates_a_draft_then_keeps_its_status() {
        let actor = an_actor().role(Role::Manager).build();
        let site = a_site().tenant_id(actor.tenant.id).build();
        let existing = a_widget()
            .site_id(site.id)
            .status(WidgetStatus::Active)
            .build();
        let mut sites = MockSiteRepository::new();
        sites.expect_get_site().return_const(Ok(site.clone()));
        let mut widgets = MockWidgetRepository::new();
        let mut seq = mockall::Sequence::new();
        widgets
            .expect_get_widget()
            .times(1)
            .in_sequence(&mut seq)
            .return_const(Ok(None));
        widgets
            .expect_save_widget()
            .times(1)
            .in_sequence(&mut seq)
            .return_const(Ok(()));
        widgets
            .expect_get_widget()
            .times(1)
            .in_sequence(&mut seq)
            .return_const(Ok(Some(existing.clone())));
        widgets
            .expect_save_widget()
            .times(1)
            .in_sequence(&mut seq)
            .return_const(Ok(()));
        let app = ChatdeskBuilder::new().sites(sites).widgets(widgets).build();
        let input = WidgetSettingsInput {
            welcome_message: "Hello".into(),
            position: "TOP_LEFT".into(),
            ..Default::default()
        };
        let (_, created, was_created) = app.save_widget(&actor, site.id, &input).unwrap();
        assert!(was_created);
        assert_eq!(created.status, WidgetStatus::Draft);
        let (_, updated, was_created) = app.save_widget(&actor, site.id, &input).unwrap();
        assert!(!was_created);
        assert_eq!(updated.id, existing.id);
        assert_eq!(updated.status, WidgetStatus::Active);
        assert_eq!(updated.settings.welcome_message, "Hello");
    }
}
