//! The content library: Flows and Tooltips of each site.

use std::sync::Arc;

use crate::content::{ContentFilter, ContentItem, ContentPatchInput, NewContentInput};
use crate::error::Error;
use crate::ids::{ContentId, SiteId};
use crate::ports::{Clock, ContentRepository, IdGenerator, Page, PageRequest, SiteRepository};
use crate::tenant::{Action, Actor};
use crate::version::Precondition;

/// The content library.
#[derive(Clone)]
pub struct ContentService {
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    sites: Arc<dyn SiteRepository>,
    content: Arc<dyn ContentRepository>,
}

impl ContentService {
    /// The service over its ports.
    pub fn new(
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        sites: Arc<dyn SiteRepository>,
        content: Arc<dyn ContentRepository>,
    ) -> Self {
        ContentService {
            clock,
            ids,
            sites,
            content,
        }
    }

    /// Adds a Flow or Tooltip to the site's library.
    pub fn create_content(
        &self,
        actor: &Actor,
        site: SiteId,
        input: &NewContentInput,
    ) -> Result<ContentItem, Error> {
        let site = self.sites.get_site(actor.tenant_id(), site)?;
        actor.authorize(Action::EditSites)?;
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
        actor.authorize(Action::Read)?;
        let site = self.sites.get_site(actor.tenant_id(), site)?;
        self.content.list_content(site.id, filter, page)
    }

    /// One item of the site's library.
    pub fn get_content(
        &self,
        actor: &Actor,
        site: SiteId,
        id: ContentId,
    ) -> Result<ContentItem, Error> {
        actor.authorize(Action::Read)?;
        let site = self.sites.get_site(actor.tenant_id(), site)?;
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
        precondition: &Precondition,
    ) -> Result<ContentItem, Error> {
        // Look both up first, so another tenant's ids are a 404 whatever
        // the role or input.
        let site = self.sites.get_site(actor.tenant_id(), site)?;
        self.content.get_content(site.id, id)?;
        actor.authorize(Action::EditSites)?;
        let patch = patch.parse()?;
        self.content
            .update_content(site.id, id, &patch, precondition, self.clock.now())
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::error::Entity;
    use crate::tenant::Role;
    use crate::testing::builders::*;
    use crate::testing::*;

    #[test]
    fn another_sites_item_is_not_found_before_the_role_is_checked() {
        let actor = an_actor().role(Role::Member).build();
        let site = a_site().tenant_id(actor.tenant.id).build();
        let mut sites = MockSiteRepository::new();
        sites.expect_get_site().return_const(Ok(site.clone()));
        let mut content = MockContentRepository::new();
        content
            .expect_get_content()
            .return_const(Err(Error::NotFound(Entity::Content)));
        content.expect_update_content().never();
        let app = ContentService::new(
            fixed_clock(),
            random_ids(),
            Arc::new(sites),
            Arc::new(content),
        );
        let patch = ContentPatchInput {
            status: Some("BOGUS".into()),
            audiences: None,
        };
        let id = ContentId(uuid::Uuid::now_v7());
        assert_eq!(
            app.patch_content(&actor, site.id, id, &patch, &Precondition::None)
                .unwrap_err(),
            Error::NotFound(Entity::Content)
        );
    }
}
