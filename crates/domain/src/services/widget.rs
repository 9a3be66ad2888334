//! The widget Builder: read, save settings, publish, pause.

use std::sync::Arc;

use crate::error::{Entity, Error};
use crate::ids::{SiteId, WidgetId};
use crate::ports::{Clock, IdGenerator, SiteRepository, SiteWidget, WidgetRepository};
use crate::tenant::{Action, Actor};
use crate::version::Precondition;
use crate::widget::{ChatWidget, WidgetSettingsInput, WidgetTransition};

/// The chat widget of each site.
#[derive(Clone)]
pub struct WidgetService {
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    sites: Arc<dyn SiteRepository>,
    widgets: Arc<dyn WidgetRepository>,
}

impl WidgetService {
    /// The service over its ports.
    pub fn new(
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        sites: Arc<dyn SiteRepository>,
        widgets: Arc<dyn WidgetRepository>,
    ) -> Self {
        WidgetService {
            clock,
            ids,
            sites,
            widgets,
        }
    }

    /// The site's widget; [`Error::NotFound`] when it has none.
    pub fn get_widget(&self, actor: &Actor, site: SiteId) -> Result<SiteWidget, Error> {
        actor.authorize(Action::Read)?;
        let site = self.sites.get_site(actor.tenant_id(), site)?;
        let widget = self
            .widgets
            .get_widget(site.id)?
            .ok_or(Error::NotFound(Entity::Widget))?;
        Ok(SiteWidget { site, widget })
    }

    /// Creates the site's widget (DRAFT) or replaces its settings, never
    /// its status. Returns the site, the widget and whether it was created.
    pub fn save_widget(
        &self,
        actor: &Actor,
        site: SiteId,
        input: &WidgetSettingsInput,
        precondition: &Precondition,
    ) -> Result<(SiteWidget, bool), Error> {
        // Look the site up first so another tenant's id is a 404 whatever
        // the role or input.
        let site = self.sites.get_site(actor.tenant_id(), site)?;
        actor.authorize(Action::EditSites)?;
        let settings = input.parse()?;
        let draft = ChatWidget::new(
            WidgetId(self.ids.new_id()),
            site.id,
            settings,
            self.clock.now(),
        );
        self.widgets
            .save_widget_settings(actor.tenant_id(), &draft, &input.named, precondition)
    }

    fn transition(
        &self,
        actor: &Actor,
        site: SiteId,
        transition: WidgetTransition,
    ) -> Result<SiteWidget, Error> {
        let site = self.sites.get_site(actor.tenant_id(), site)?;
        actor.authorize(Action::EditSites)?;
        self.widgets
            .transition_widget(actor.tenant_id(), site.id, transition, self.clock.now())
    }

    /// Publishes the widget (needs the site mapped, checked by the store on
    /// the site's locked row).
    pub fn publish_widget(&self, actor: &Actor, site: SiteId) -> Result<SiteWidget, Error> {
        self.transition(actor, site, WidgetTransition::Publish)
    }

    /// Pauses the widget (needs the site mapped).
    pub fn pause_widget(&self, actor: &Actor, site: SiteId) -> Result<SiteWidget, Error> {
        self.transition(actor, site, WidgetTransition::Pause)
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::tenant::Role;
    use crate::testing::builders::*;
    use crate::testing::*;
    use crate::widget::{NamedSettings, WidgetStatus};

    #[test]
    fn saving_passes_a_draft_and_the_precondition_to_the_store() {
        let actor = an_actor().role(Role::Manager).build();
        let site = a_site().tenant_id(actor.tenant.id).build();
        let mut sites = MockSiteRepository::new();
        sites.expect_get_site().return_const(Ok(site.clone()));
        let mut widgets = MockWidgetRepository::new();
        let stored_site = site.clone();
        widgets
            .expect_save_widget_settings()
            .withf(|_, draft, named, precondition| {
                draft.status == WidgetStatus::Draft
                    && draft.settings.welcome_message == "Hello"
                    && *named == NamedSettings::ALL
                    && *precondition == Precondition::TagIn(vec!["4.2".into()])
            })
            .times(1)
            .returning(move |_, draft, _, _| {
                Ok((
                    SiteWidget {
                        site: stored_site.clone(),
                        widget: draft.clone(),
                    },
                    true,
                ))
            });
        let app = WidgetService::new(
            fixed_clock(),
            random_ids(),
            Arc::new(sites),
            Arc::new(widgets),
        );
        let input = WidgetSettingsInput {
            welcome_message: "Hello".into(),
            position: "TOP_LEFT".into(),
            ..Default::default()
        };
        let member = an_actor().role(Role::Member).build();
        assert_eq!(
            app.save_widget(&member, site.id, &input, &Precondition::None)
                .unwrap_err()
                .code(),
            "ROLE_TOO_WEAK"
        );
        let tag = Precondition::TagIn(vec!["4.2".into()]);
        let (saved, created) = app.save_widget(&actor, site.id, &input, &tag).unwrap();
        assert!(created);
        assert_eq!(saved.widget.site_id, site.id);
    }

    #[test]
    fn publishing_is_left_to_the_store_transaction() {
        let actor = an_actor().role(Role::Manager).build();
        let site = a_site().tenant_id(actor.tenant.id).build();
        let mut sites = MockSiteRepository::new();
        sites.expect_get_site().return_const(Ok(site.clone()));
        let mut widgets = MockWidgetRepository::new();
        widgets
            .expect_transition_widget()
            .withf(|_, _, transition, _| *transition == WidgetTransition::Pause)
            .times(1)
            .return_const(Err(Error::SiteNotMapped));
        let app = WidgetService::new(
            fixed_clock(),
            random_ids(),
            Arc::new(sites),
            Arc::new(widgets),
        );
        assert_eq!(
            app.pause_widget(&actor, site.id).unwrap_err(),
            Error::SiteNotMapped
        );
    }
}
