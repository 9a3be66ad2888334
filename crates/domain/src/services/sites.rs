//! Sites: create, read, edit, delete; the API key, the mapping status and
//! the identity secret.

use std::sync::Arc;

use super::{issue, WithSecret};
use crate::error::Error;
use crate::ids::SiteId;
use crate::ports::{Clock, IdGenerator, Page, PageRequest, SiteRepository};
use crate::secret::{IssuedSecret, SecretKind};
use crate::site::{MappingStatus, NewSiteInput, Site, SiteChanges, SitePatchInput};
use crate::tenant::{Action, Actor};
use crate::version::{Precondition, Version};

/// Sites and their secrets.
#[derive(Clone)]
pub struct SiteService {
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    sites: Arc<dyn SiteRepository>,
}

impl SiteService {
    /// The service over its ports.
    pub fn new(
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        sites: Arc<dyn SiteRepository>,
    ) -> Self {
        SiteService { clock, ids, sites }
    }

    /// Creates a site within the plan's cap (checked by the store on the
    /// tenant's locked row); returns it with its API key.
    pub fn create_site(
        &self,
        actor: &Actor,
        input: &NewSiteInput,
    ) -> Result<WithSecret<Site>, Error> {
        actor.authorize(Action::EditSites)?;
        let new = input.parse()?;
        let now = self.clock.now();
        let key = issue(self.ids.as_ref(), SecretKind::SiteKey);
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
            version: Version::FIRST,
        };
        self.sites.insert_site(&site)?;
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

    /// Writes the changes `changes` makes to a site the actor may change
    /// with `action`. The site is looked up first and the input validated
    /// last, so another tenant's id is a 404 whatever the role or input.
    fn change(
        &self,
        actor: &Actor,
        id: SiteId,
        action: Action,
        precondition: &Precondition,
        changes: impl FnOnce() -> Result<SiteChanges, Error>,
    ) -> Result<Site, Error> {
        self.sites.get_site(actor.tenant_id(), id)?;
        actor.authorize(action)?;
        let changes = changes()?;
        self.sites.update_site(
            actor.tenant_id(),
            id,
            &changes,
            precondition,
            self.clock.now(),
        )
    }

    /// Edits a site's domain, name, subdomain rule or theme: only the
    /// fields the patch names.
    pub fn update_site(
        &self,
        actor: &Actor,
        id: SiteId,
        patch: &SitePatchInput,
        precondition: &Precondition,
    ) -> Result<Site, Error> {
        self.change(actor, id, Action::EditSites, precondition, || patch.parse())
    }

    /// Deletes a site and everything under it.
    pub fn delete_site(&self, actor: &Actor, id: SiteId) -> Result<(), Error> {
        self.sites.get_site(actor.tenant_id(), id)?;
        actor.authorize(Action::EditSites)?;
        self.sites.delete_site(actor.tenant_id(), id)
    }

    /// Replaces the site's API key; the old one stops working at once.
    pub fn regenerate_api_key(&self, actor: &Actor, id: SiteId) -> Result<WithSecret<Site>, Error> {
        self.with_new_secret(actor, id, SecretKind::SiteKey, |key| SiteChanges {
            api_key: Some((key.display_prefix, key.hash)),
            ..SiteChanges::default()
        })
    }

    /// Issues a secret of `kind` and writes what `changes` makes of it to
    /// the site; returns the site with the secret, shown this once.
    fn with_new_secret(
        &self,
        actor: &Actor,
        id: SiteId,
        kind: SecretKind,
        changes: impl FnOnce(IssuedSecret) -> SiteChanges,
    ) -> Result<WithSecret<Site>, Error> {
        let secret = issue(self.ids.as_ref(), kind);
        let plaintext = secret.plaintext.clone();
        let changes = changes(secret);
        let site = self.change(actor, id, Action::EditSites, &Precondition::None, || {
            Ok(changes)
        })?;
        Ok(WithSecret {
            value: site,
            secret: plaintext,
        })
    }

    /// Sets the site's mapping status.
    pub fn set_mapping(
        &self,
        actor: &Actor,
        id: SiteId,
        status: &str,
        precondition: &Precondition,
    ) -> Result<Site, Error> {
        self.change(actor, id, Action::ManageMapping, precondition, || {
            let status = status
                .parse::<MappingStatus>()
                .map_err(|m| Error::invalid("status", m))?;
            Ok(SiteChanges {
                mapping_status: Some(status),
                ..SiteChanges::default()
            })
        })
    }

    /// Issues a new identity secret and turns identity verification on.
    pub fn issue_identity_secret(
        &self,
        actor: &Actor,
        id: SiteId,
    ) -> Result<WithSecret<Site>, Error> {
        self.with_new_secret(actor, id, SecretKind::IdentitySecret, |secret| {
            SiteChanges {
                identity_secret_hash: Some(secret.hash),
                ..SiteChanges::default()
            }
        })
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::error::Entity;
    use crate::tenant::Role;
    use crate::testing::builders::*;
    use crate::testing::*;

    fn service(sites: MockSiteRepository) -> SiteService {
        SiteService::new(fixed_clock(), random_ids(), Arc::new(sites))
    }

    fn site_input() -> NewSiteInput {
        NewSiteInput {
            domain: "Docs.Example.com".into(),
            name: "Docs".into(),
            allow_subdomains: true,
            theme: None,
        }
    }

    #[test]
    fn create_site_checks_the_role_then_leaves_the_cap_to_the_store() {
        let mut sites = MockSiteRepository::new();
        sites
            .expect_insert_site()
            .withf(|site| site.domain.as_str() == "docs.example.com")
            .times(1)
            .return_const(Ok(()));
        let app = service(sites);

        let member = an_actor().role(Role::Member).build();
        let err = app.create_site(&member, &site_input()).unwrap_err();
        assert_eq!(
            err,
            Error::RoleTooWeak {
                needed: Role::Manager
            }
        );

        let manager = an_actor().role(Role::Manager).build();
        let created = app.create_site(&manager, &site_input()).unwrap();
        assert!(created.secret.starts_with("cd_live_"));
        assert!(created.secret.starts_with(&created.value.api_key_prefix));
        assert!(created.value.api_key_hash.verify(&created.secret));
        assert_eq!(created.value.tenant_id, manager.tenant.id);
        assert_eq!(created.value.mapping_status, MappingStatus::Pending);
        assert_eq!(created.value.version, Version::FIRST);
    }

    #[test]
    fn another_tenants_site_is_not_found_whatever_the_role() {
        let mut sites = MockSiteRepository::new();
        sites
            .expect_get_site()
            .return_const(Err(Error::NotFound(Entity::Site)));
        sites.expect_update_site().never();
        sites.expect_delete_site().never();
        let app = service(sites);
        let weak = an_actor().role(Role::Member).build();
        let id = SiteId(uuid::Uuid::now_v7());
        for result in [
            app.regenerate_api_key(&weak, id).map(|_| ()),
            app.set_mapping(&weak, id, "COMPLETED", &Precondition::None)
                .map(|_| ()),
            app.update_site(&weak, id, &SitePatchInput::default(), &Precondition::None)
                .map(|_| ()),
            app.issue_identity_secret(&weak, id).map(|_| ()),
            app.delete_site(&weak, id),
        ] {
            assert_eq!(result.unwrap_err(), Error::NotFound(Entity::Site));
        }
    }

    #[test]
    fn regenerating_writes_only_the_new_key() {
        let actor = an_actor().role(Role::Manager).build();
        let site = a_site().tenant_id(actor.tenant.id).build();
        let old_hash = site.api_key_hash.clone();
        let mut sites = MockSiteRepository::new();
        sites.expect_get_site().return_const(Ok(site.clone()));
        let stored = site.clone();
        sites
            .expect_update_site()
            .withf(move |_, _, changes, precondition, _| {
                changes
                    .api_key
                    .as_ref()
                    .is_some_and(|(_, h)| *h != old_hash)
                    && SiteChanges {
                        api_key: None,
                        ..changes.clone()
                    }
                    .is_empty()
                    && *precondition == Precondition::None
            })
            .times(1)
            .returning(move |_, _, changes, _, now| Ok(changes.applied_to(stored.clone(), now)));
        let out = service(sites).regenerate_api_key(&actor, site.id).unwrap();
        assert!(out.value.api_key_hash.verify(&out.secret));
        assert_ne!(out.value.api_key_prefix, site.api_key_prefix);
        assert_eq!(out.value.version, Version(site.version.0 + 1));
    }

    #[test]
    fn mapping_needs_admin_and_a_known_status_and_passes_the_precondition() {
        let site = a_site().build();
        let mut sites = MockSiteRepository::new();
        sites.expect_get_site().return_const(Ok(site.clone()));
        let stored = site.clone();
        sites
            .expect_update_site()
            .withf(|_, _, changes, precondition, _| {
                changes.mapping_status == Some(MappingStatus::Completed)
                    && *precondition == Precondition::TagIn(vec!["1".into()])
            })
            .times(1)
            .returning(move |_, _, changes, _, now| Ok(changes.applied_to(stored.clone(), now)));
        let app = service(sites);
        let tag = Precondition::TagIn(vec!["1".into()]);
        let manager = an_actor().role(Role::Manager).build();
        assert_eq!(
            app.set_mapping(&manager, site.id, "COMPLETED", &tag)
                .unwrap_err()
                .code(),
            "ROLE_TOO_WEAK"
        );
        let admin = an_actor().role(Role::Admin).build();
        let err = app.set_mapping(&admin, site.id, "DONE", &tag).unwrap_err();
        assert_eq!(err.field_errors()[0].field, "status");
        let updated = app.set_mapping(&admin, site.id, "COMPLETED", &tag).unwrap();
        assert_eq!(updated.mapping_status, MappingStatus::Completed);
    }
}
