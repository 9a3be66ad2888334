//! Chat widgets: one per site; the Builder's settings saved without the
//! status, publish and pause on the site's current mapping, entity tags,
//! and saves and publishes racing each other and mapping changes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chatdesk_domain::email::Email;
use chatdesk_domain::ids::{SiteId, WidgetId};
use chatdesk_domain::ports::{SiteRepository, SiteWidget, WidgetRepository};
use chatdesk_domain::site::{MappingStatus, SiteChanges};
use chatdesk_domain::tenant::Plan;
use chatdesk_domain::testing::builders::{a_widget, widget_settings};
use chatdesk_domain::version::{Precondition, Version};
use chatdesk_domain::widget::{
    ChatWidget, NamedSettings, WidgetPosition, WidgetSettings, WidgetStatus, WidgetTransition,
};
use chatdesk_domain::{Entity, Error};
use chatdesk_store::connect;
use chatdesk_store::schema::chat_widgets;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::helpers::{
    later, mapped_site, race, stored, stored_site, stores, tenant_and_site, tenant_with_owner,
    unknown_site, ROUNDS,
};

/// Every setting set, none at its default.
fn full_settings() -> WidgetSettings {
    WidgetSettings {
        welcome_message: "Bonjour ! Comment puis-je aider ?".into(),
        disclaimer: Some("Answers may be wrong.".into()),
        position: WidgetPosition::TopLeft,
        support_email: Some(Email::parse("help@example.com").expect("valid")),
        persona: Some("You are terse.".into()),
        insufficient_credits_message: "Out of credits.".into(),
        rate_limit_per_session: 1000,
    }
}

/// What the Builder sends: a new DRAFT value with a fresh id.
fn draft(site: SiteId, settings: WidgetSettings, now: DateTime<Utc>) -> ChatWidget {
    ChatWidget::new(WidgetId(Uuid::now_v7()), site, settings, now)
}

#[test]
fn a_widget_is_created_then_its_settings_replaced() {
    for t in stores() {
        let (tenant, site) = tenant_and_site(&t);
        assert_eq!(t.get_widget(site.id).expect("reads"), None, "{}", t.name());

        let widget = a_widget().site_id(site.id).build();
        let saved = t
            .save_widget_settings(tenant.id, &widget, &NamedSettings::ALL, &Precondition::None)
            .expect("creates");
        assert_eq!(
            saved,
            (
                SiteWidget {
                    site: site.clone(),
                    widget: widget.clone()
                },
                true
            ),
            "{}",
            t.name()
        );
        assert_eq!(t.get_widget(site.id).expect("reads"), Some(widget.clone()));

        // Every setting replaced; the widget keeps its id, status and
        // creation time.
        let now = later();
        let (saved, created) = t
            .save_widget_settings(
                tenant.id,
                &draft(site.id, full_settings(), now),
                &NamedSettings::ALL,
                &Precondition::TagIn(vec![widget.entity_tag(&site)]),
            )
            .expect("updates");
        let expected = ChatWidget {
            settings: full_settings(),
            updated_at: stored(now),
            version: Version(2),
            ..widget.clone()
        };
        assert!(!created);
        assert_eq!(saved.widget, expected, "{}", t.name());
        assert_eq!(saved.site, site);
        assert_eq!(
            t.get_widget(site.id).expect("reads"),
            Some(expected.clone()),
            "{}",
            t.name()
        );

        // The optional settings cleared.
        let cleared = WidgetSettings {
            disclaimer: None,
            support_email: None,
            persona: None,
            ..full_settings()
        };
        let now = later();
        let (saved, _) = t
            .save_widget_settings(
                tenant.id,
                &draft(site.id, cleared.clone(), now),
                &NamedSettings::ALL,
                &Precondition::None,
            )
            .expect("updates");
        let expected = ChatWidget {
            settings: cleared,
            updated_at: stored(now),
            version: Version(3),
            ..expected
        };
        assert_eq!(saved.widget, expected);
        assert_eq!(t.get_widget(site.id).expect("reads"), Some(expected));

        // The row carries the site's tenant.
        let mut conn = connect(t.url()).expect("connects");
        let stored_tenant: String = chat_widgets::table
            .filter(chat_widgets::site_id.eq(site.id.to_string()))
            .select(chat_widgets::tenant_id)
            .first(&mut conn)
            .expect("reads");
        assert_eq!(stored_tenant, tenant.id.to_string());
    }
}

#[test]
fn saving_keeps_one_widget_per_site_and_never_its_status() {
    for t in stores() {
        let (tenant, site) = tenant_and_site(&t);
        let (other_tenant, other_site) = tenant_and_site(&t);
        let first = a_widget().site_id(site.id).build();
        t.save_widget_settings(tenant.id, &first, &NamedSettings::ALL, &Precondition::None)
            .expect("creates");
        // A value with another id, a status and a publication for the same
        // site changes only the settings of the site's widget.
        let second = ChatWidget {
            status: WidgetStatus::Paused,
            published_at: Some(later()),
            settings: full_settings(),
            ..draft(site.id, widget_settings(), later())
        };
        let (saved, created) = t
            .save_widget_settings(tenant.id, &second, &NamedSettings::ALL, &Precondition::None)
            .expect("updates");
        assert!(!created);
        let stored_widget = t.get_widget(site.id).expect("reads").expect("a widget");
        assert_eq!(stored_widget, saved.widget);
        assert_eq!(
            (
                stored_widget.id,
                stored_widget.status,
                stored_widget.published_at,
                stored_widget.created_at,
                &stored_widget.settings,
            ),
            (
                first.id,
                WidgetStatus::Draft,
                None,
                first.created_at,
                &full_settings()
            ),
            "{}",
            t.name()
        );

        let theirs = a_widget().site_id(other_site.id).build();
        let (_, created) = t
            .save_widget_settings(
                other_tenant.id,
                &theirs,
                &NamedSettings::ALL,
                &Precondition::None,
            )
            .expect("creates");
        assert!(created);
        assert_eq!(
            t.get_widget(site.id).expect("reads").map(|w| w.id),
            Some(first.id)
        );
    }
}

#[test]
fn a_widget_needs_an_existing_site_of_the_tenant() {
    for t in stores() {
        let (tenant, site) = tenant_and_site(&t);
        let (other, _, _) = tenant_with_owner(&t, Plan::Pro);
        for (owner, site_id) in [(tenant.id, unknown_site()), (other.id, site.id)] {
            let widget = a_widget().site_id(site_id).build();
            assert_eq!(
                t.save_widget_settings(owner, &widget, &NamedSettings::ALL, &Precondition::None),
                Err(Error::NotFound(Entity::Site)),
                "{}",
                t.name()
            );
            assert_eq!(t.get_widget(site_id).expect("reads"), None);
            for transition in [WidgetTransition::Publish, WidgetTransition::Pause] {
                assert_eq!(
                    t.transition_widget(owner, site_id, transition, later()),
                    Err(Error::NotFound(Entity::Site)),
                    "{}",
                    t.name()
                );
            }
        }
    }
}

#[test]
fn publishing_and_pausing_need_a_mapped_site_and_change_only_the_status() {
    for t in stores() {
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Pro);

        // Unmapped: refused, nothing changes.
        let unmapped = stored_site(&t, tenant.id, "unmapped.example.com");
        let widget = a_widget().site_id(unmapped.id).build();
        t.save_widget_settings(tenant.id, &widget, &NamedSettings::ALL, &Precondition::None)
            .expect("creates");
        for transition in [WidgetTransition::Publish, WidgetTransition::Pause] {
            assert_eq!(
                t.transition_widget(tenant.id, unmapped.id, transition, later()),
                Err(Error::SiteNotMapped),
                "{}: {transition:?}",
                t.name()
            );
        }
        assert_eq!(t.get_widget(unmapped.id).expect("reads"), Some(widget));

        // Mapped: a site without a widget has nothing to publish.
        let site = mapped_site(&t, tenant.id, "mapped.example.com");
        assert_eq!(
            t.transition_widget(tenant.id, site.id, WidgetTransition::Publish, later()),
            Err(Error::NotFound(Entity::Widget)),
            "{}",
            t.name()
        );
        let widget = draft(site.id, full_settings(), later());
        let (saved, _) = t
            .save_widget_settings(tenant.id, &widget, &NamedSettings::ALL, &Precondition::None)
            .expect("creates");
        let widget = saved.widget;

        let published_at = later();
        let published = t
            .transition_widget(tenant.id, site.id, WidgetTransition::Publish, published_at)
            .expect("publishes");
        let expected = ChatWidget {
            status: WidgetStatus::Active,
            published_at: Some(stored(published_at)),
            updated_at: stored(published_at),
            version: Version(2),
            ..widget.clone()
        };
        assert_eq!(
            published,
            SiteWidget {
                site: site.clone(),
                widget: expected.clone()
            },
            "{}",
            t.name()
        );
        assert_eq!(t.get_widget(site.id).expect("reads"), Some(expected));

        // Pausing keeps publishedAt.
        let now = later();
        let paused = t
            .transition_widget(tenant.id, site.id, WidgetTransition::Pause, now)
            .expect("pauses");
        let expected = ChatWidget {
            status: WidgetStatus::Paused,
            published_at: Some(stored(published_at)),
            updated_at: stored(now),
            version: Version(3),
            ..widget.clone()
        };
        assert_eq!(paused.widget, expected, "{}", t.name());
        assert_eq!(
            t.get_widget(site.id).expect("reads"),
            Some(expected.clone())
        );

        // Saving settings leaves the status and publishedAt alone.
        let now = later();
        let (saved, _) = t
            .save_widget_settings(
                tenant.id,
                &draft(site.id, widget_settings(), now),
                &NamedSettings::ALL,
                &Precondition::None,
            )
            .expect("updates");
        let expected = ChatWidget {
            settings: widget_settings(),
            updated_at: stored(now),
            version: Version(4),
            ..expected
        };
        assert_eq!(saved.widget, expected, "{}", t.name());
        assert_eq!(t.get_widget(site.id).expect("reads"), Some(expected));
    }
}

#[test]
fn the_entity_tag_of_a_widget_covers_its_site() {
    for t in stores() {
        let (tenant, site) = tenant_and_site(&t);
        let widget = a_widget().site_id(site.id).build();

        // No widget yet: no tag can match, and nothing is made.
        assert_eq!(
            t.save_widget_settings(
                tenant.id,
                &widget,
                &NamedSettings::ALL,
                &Precondition::TagIn(vec!["1.1".into()])
            ),
            Err(Error::PreconditionFailed(Entity::Widget)),
            "{}",
            t.name()
        );
        assert_eq!(t.get_widget(site.id).expect("reads"), None);
        t.save_widget_settings(tenant.id, &widget, &NamedSettings::ALL, &Precondition::None)
            .expect("creates");
        let tag = widget.entity_tag(&site);

        // The same settings again change nothing, not even the version.
        let (saved, created) = t
            .save_widget_settings(
                tenant.id,
                &draft(site.id, widget.settings.clone(), later()),
                &NamedSettings::ALL,
                &Precondition::TagIn(vec![tag.clone()]),
            )
            .expect("saves");
        assert!(!created);
        assert_eq!(saved.widget, widget, "{}", t.name());
        assert_eq!(t.get_widget(site.id).expect("reads"), Some(widget.clone()));

        // A change of the site (whose theme the widget shows) makes the
        // widget's tag stale.
        let site = t
            .update_site(
                tenant.id,
                site.id,
                &SiteChanges {
                    theme: Some(chatdesk_domain::site::Theme {
                        primary_color: "#000000".into(),
                        ..Default::default()
                    }),
                    ..SiteChanges::default()
                },
                &Precondition::None,
                later(),
            )
            .expect("updates the site");
        let edit = draft(site.id, full_settings(), later());
        assert_eq!(
            t.save_widget_settings(
                tenant.id,
                &edit,
                &NamedSettings::ALL,
                &Precondition::TagIn(vec![tag])
            ),
            Err(Error::PreconditionFailed(Entity::Widget)),
            "{}",
            t.name()
        );
        assert_eq!(t.get_widget(site.id).expect("reads"), Some(widget.clone()));
        let (saved, _) = t
            .save_widget_settings(
                tenant.id,
                &edit,
                &NamedSettings::ALL,
                &Precondition::TagIn(vec![widget.entity_tag(&site)]),
            )
            .expect("the tag is current");
        assert_eq!(saved.widget.version, Version(2));
        assert_eq!(saved.site, site);

        // A publish makes it stale too.
        let site = t
            .update_site(
                tenant.id,
                site.id,
                &SiteChanges {
                    mapping_status: Some(MappingStatus::Completed),
                    ..SiteChanges::default()
                },
                &Precondition::None,
                later(),
            )
            .expect("maps");
        let before_publish = saved.widget.entity_tag(&site);
        let published = t
            .transition_widget(tenant.id, site.id, WidgetTransition::Publish, later())
            .expect("publishes");
        assert_eq!(
            t.save_widget_settings(
                tenant.id,
                &draft(site.id, widget_settings(), later()),
                &NamedSettings::ALL,
                &Precondition::TagIn(vec![before_publish]),
            ),
            Err(Error::PreconditionFailed(Entity::Widget)),
            "{}",
            t.name()
        );
        assert_eq!(
            t.get_widget(site.id).expect("reads"),
            Some(published.widget),
            "{}",
            t.name()
        );
    }
}

/// A settings save racing a publish: neither undoes the other.
#[test]
fn a_settings_save_racing_a_publish_keeps_both() {
    for t in stores() {
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Enterprise);
        for round in 0..ROUNDS {
            let site = mapped_site(&t, tenant.id, &format!("w{round}.example.com"));
            let widget = a_widget().site_id(site.id).build();
            t.save_widget_settings(tenant.id, &widget, &NamedSettings::ALL, &Precondition::None)
                .expect("creates");
            let settings = WidgetSettings {
                welcome_message: format!("Round {round}"),
                ..full_settings()
            };
            let (save_at, publish_at) = (later(), later());
            let edit = draft(site.id, settings.clone(), save_at);
            let (saved, published) = race(
                || {
                    t.save_widget_settings(
                        tenant.id,
                        &edit,
                        &NamedSettings::ALL,
                        &Precondition::None,
                    )
                },
                || t.transition_widget(tenant.id, site.id, WidgetTransition::Publish, publish_at),
            );
            assert!(saved.is_ok(), "{}: {saved:?}", t.name());
            assert!(published.is_ok(), "{}: {published:?}", t.name());
            let read = t.get_widget(site.id).expect("reads").expect("a widget");
            assert_eq!(
                read,
                ChatWidget {
                    status: WidgetStatus::Active,
                    published_at: Some(stored(publish_at)),
                    settings,
                    version: Version(3),
                    updated_at: read.updated_at,
                    ..widget
                },
                "{}: round {round}",
                t.name()
            );
            assert!([stored(save_at), stored(publish_at)].contains(&read.updated_at));
        }
    }
}

/// A publish racing a change of the mapping to FAILED ends as one of the
/// two serial orders: publish first (it succeeds on the COMPLETED site and
/// the widget is ACTIVE), or the mapping first (it fails and the widget is
/// as it was). Never a widget published on a site whose mapping had
/// already failed, nor one that began after the mapping change returned
/// succeeding.
#[test]
fn a_publish_racing_a_failed_mapping_is_one_serial_order() {
    for t in stores() {
        let (tenant, _, _) = tenant_with_owner(&t, Plan::Enterprise);
        let (mut publish_first, mut mapping_first) = (0, 0);
        for round in 0..ROUNDS {
            let site = mapped_site(&t, tenant.id, &format!("m{round}.example.com"));
            let widget = a_widget().site_id(site.id).build();
            t.save_widget_settings(tenant.id, &widget, &NamedSettings::ALL, &Precondition::None)
                .expect("creates");
            let failed = SiteChanges {
                mapping_status: Some(MappingStatus::Failed),
                ..SiteChanges::default()
            };
            let (publish_at, mapped_at) = (later(), later());
            // The publish starts up to 2 ms late in some rounds, so that it
            // sometimes begins after the mapping change has returned: then
            // it must see FAILED.
            let delay = Duration::from_micros(500 * (round as u64 % 5));
            let mapping_done = AtomicBool::new(false);
            let ((began_after, published), mapped) = race(
                || {
                    std::thread::sleep(delay);
                    let began_after = mapping_done.load(Ordering::SeqCst);
                    let published = t.transition_widget(
                        tenant.id,
                        site.id,
                        WidgetTransition::Publish,
                        publish_at,
                    );
                    (began_after, published)
                },
                || {
                    let mapped =
                        t.update_site(tenant.id, site.id, &failed, &Precondition::None, mapped_at);
                    mapping_done.store(true, Ordering::SeqCst);
                    mapped
                },
            );
            let mapped = mapped.expect("the mapping change succeeds");
            if began_after {
                assert_eq!(
                    published,
                    Err(Error::SiteNotMapped),
                    "{}: round {round}: a publish that began after the mapping failed",
                    t.name()
                );
            }
            assert_eq!(mapped.mapping_status, MappingStatus::Failed);
            assert_eq!(mapped.version, Version(2));
            let read = t.get_widget(site.id).expect("reads").expect("a widget");
            match published {
                Ok(published) => {
                    publish_first += 1;
                    assert_eq!(
                        published.site,
                        site,
                        "{}: the publish saw the site before the mapping changed",
                        t.name()
                    );
                    let expected = ChatWidget {
                        status: WidgetStatus::Active,
                        published_at: Some(stored(publish_at)),
                        updated_at: stored(publish_at),
                        version: Version(2),
                        ..widget
                    };
                    assert_eq!(published.widget, expected, "{}", t.name());
                    assert_eq!(read, expected, "{}", t.name());
                }
                Err(Error::SiteNotMapped) => {
                    mapping_first += 1;
                    assert_eq!(read, widget, "{}: round {round}", t.name());
                }
                Err(other) => panic!("{}: round {round}: {other:?}", t.name()),
            }
            assert_eq!(
                t.get_site(tenant.id, site.id).expect("reads"),
                mapped,
                "{}",
                t.name()
            );
        }
        eprintln!(
            "{}: publish first {publish_first}, mapping first {mapping_first}",
            t.name()
        );
    }
}
