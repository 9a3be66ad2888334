//! Chat widgets: one per site, inserted then updated.

use chatdesk_domain::email::Email;
use chatdesk_domain::ids::WidgetId;
use chatdesk_domain::ports::WidgetRepository;
use chatdesk_domain::testing::builders::a_widget;
use chatdesk_domain::widget::{ChatWidget, WidgetPosition, WidgetSettings, WidgetStatus};
use chatdesk_domain::{Entity, Error};
use chatdesk_store::connect;
use chatdesk_store::schema::chat_widgets;
use chrono::{SubsecRound, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::helpers::{stores, tenant_and_site, unknown_site};

#[test]
fn a_widget_is_inserted_then_updated_with_every_setting() {
    for t in stores() {
        let (tenant, site) = tenant_and_site(&t);
        assert_eq!(t.get_widget(site.id).expect("reads"), None, "{}", t.name());

        let widget = a_widget().site_id(site.id).build();
        t.save_widget(&widget).expect("inserts");
        assert_eq!(
            t.get_widget(site.id).expect("reads"),
            Some(widget.clone()),
            "{}",
            t.name()
        );

        let now = Utc::now();
        let edited = ChatWidget {
            status: WidgetStatus::Active,
            published_at: Some(now),
            settings: WidgetSettings {
                welcome_message: "Bonjour ! Comment puis-je aider ?".into(),
                disclaimer: Some("Answers may be wrong.".into()),
                position: WidgetPosition::TopLeft,
                support_email: Some(Email::parse("help@example.com").expect("valid")),
                persona: Some("You are terse.".into()),
                insufficient_credits_message: "Out of credits.".into(),
                rate_limit_per_session: 1000,
            },
            updated_at: now,
            ..widget.clone()
        };
        t.save_widget(&edited).expect("updates");
        let expected = ChatWidget {
            published_at: Some(now.trunc_subsecs(6)),
            updated_at: now.trunc_subsecs(6),
            ..edited
        };
        assert_eq!(
            t.get_widget(site.id).expect("reads"),
            Some(expected.clone()),
            "{}",
            t.name()
        );

        // Paused, with the optional settings cleared.
        let paused = ChatWidget {
            status: WidgetStatus::Paused,
            settings: WidgetSettings {
                disclaimer: None,
                support_email: None,
                persona: None,
                ..expected.settings.clone()
            },
            ..expected.clone()
        };
        t.save_widget(&paused).expect("updates");
        assert_eq!(t.get_widget(site.id).expect("reads"), Some(paused));

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
fn saving_keeps_one_widget_per_site() {
    for t in stores() {
        let (_, site) = tenant_and_site(&t);
        let (_, other_site) = tenant_and_site(&t);
        let first = a_widget().site_id(site.id).build();
        t.save_widget(&first).expect("inserts");
        // A widget value with another id for the same site updates the
        // site's widget, which keeps its id and creation time.
        let second = ChatWidget {
            id: WidgetId(Uuid::now_v7()),
            status: WidgetStatus::Paused,
            ..a_widget().site_id(site.id).build()
        };
        t.save_widget(&second).expect("updates");
        let stored = t.get_widget(site.id).expect("reads").expect("a widget");
        assert_eq!(
            (stored.id, stored.status),
            (first.id, WidgetStatus::Paused),
            "{}",
            t.name()
        );

        t.save_widget(&a_widget().site_id(other_site.id).build())
            .expect("inserts");
        assert_eq!(
            t.get_widget(site.id).expect("reads").map(|w| w.id),
            Some(first.id)
        );
    }
}

#[test]
fn a_widget_needs_an_existing_site() {
    for t in stores() {
        let widget = a_widget().site_id(unknown_site()).build();
        assert_eq!(
            t.save_widget(&widget),
            Err(Error::NotFound(Entity::Site)),
            "{}",
            t.name()
        );
        assert_eq!(t.get_widget(widget.site_id).expect("reads"), None);
    }
}
