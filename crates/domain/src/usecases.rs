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
    pub fn create_tenant(&self, name: &str, plan: Plan, owner_email: &str) -> Result<CreatedTenant, Error> {
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
    pub fn list_members(&self, actor: &Actor, page: &PageRequest<MemberId>) -> Result<Page<TenantMember, MemberId>, Error> {
        actor.authorize(Action::Read)?;
        self.members.list_members(actor.tenant_id(), page)
    }

    /// Adds a member; returns it with its token (shown once).
    pub fn add_member(&self, actor: &Actor, email: &str, role: &str) -> Result<WithSecret<TenantMember>, Error> {
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
        actor.authorize(Action::ManageMembers)?;
        let target = self.members.get_member(actor.tenant_id(), id)?;
        authorize_removal(actor.member.role, target.role)?;
        self.members.remove_member_keeping_an_owner(actor.tenant_id(), id)
    }

    // ----- sites -----

    /// Creates a site within the plan's cap; returns it with its API key.
    pub fn create_site(&self, actor: &Actor, input: &NewSiteInput) -> Result<WithSecret<Site>, Error> {
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
        self.sites.insert_site_within_cap(&site, plan.site_cap(), plan)?;
        Ok(WithSecret {
            value: site,
            secret: key.plaintext,
        })
    }

    /// The tenant's sites.
    pub fn list_sites(&self, actor: &Actor, page: &PageRequest<SiteId>) -> Result<Page<Site, SiteId>, Error> {
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
    pub fn update_site(&self, actor: &Actor, id: SiteId, patch: &SitePatchInput) -> Result<Site, Error> {
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
    pub fn issue_identity_secret(&self, actor: &Actor, id: SiteId) -> Result<WithSecret<Site>, Error> {
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
    pub fn save_widget(&self, actor: &Actor, site: SiteId, input: &WidgetSettingsInput) -> Result<(Site, ChatWidget, bool), Error> {
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
    pub fn create_content(&self, actor: &Actor, site: SiteId, input: &NewContentInput) -> Result<ContentItem, Error> {
        let site = self.editable_site(actor, site, Action::EditSites)?;
        let item = ContentItem::create(ContentId(self.ids.new_id()), site.id, input, self.clock.now())?;
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
    pub fn get_content(&self, actor: &Actor, site: SiteId, id: ContentId) -> Result<ContentItem, Error> {
        let site = self.get_site(actor, site)?;
        self.content.get_content(site.id, id)
    }

    /// Changes an item's status or audiences (removing "No users"
    /// re-targets an AI-made Flow to everyone).
    pub fn patch_content(&self, actor: &Actor, site: SiteId, id: ContentId, patch: &ContentPatchInput) -> Result<ContentItem, Error> {
        let site = self.editable_site(actor, site, Action::EditSites)?;
        let mut item = self.content.get_content(site.id, id)?;
        let patch = patch.parse()?;
        if item.apply(patch, self.clock.now()) {
            self.content.update_content(&item)?;
        }
        Ok(item)
    }
}
