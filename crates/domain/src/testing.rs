//! Test support: builders for every entity and, with the `testing`
//! feature, mockall mocks of every port and a [`ChatdeskBuilder`] that
//! fills unused ports with mocks that fail on any call.
//!
//! A use case in a few lines:
//!
//! ```
//! use chatdesk_domain::site::MappingStatus;
//! use chatdesk_domain::testing::builders::*;
//! use chatdesk_domain::testing::{ChatdeskBuilder, MockSiteRepository, MockWidgetRepository};
//!
//! let actor = an_actor().build();
//! let site = a_site().tenant_id(actor.tenant.id).mapping_status(MappingStatus::Pending).build();
//!
//! let mut sites = MockSiteRepository::new();
//! sites.expect_get_site().return_const(Ok(site.clone()));
//! let mut widgets = MockWidgetRepository::new();
//! widgets.expect_get_widget().return_const(Ok(Some(a_widget().site_id(site.id).build())));
//! widgets.expect_save_widget().never();
//!
//! let app = ChatdeskBuilder::new().sites(sites).widgets(widgets).build();
//! let err = app.publish_widget(&actor, site.id).unwrap_err();
//! assert_eq!(err.code(), "SITE_NOT_MAPPED");
//! ```

#[cfg(feature = "testing")]
pub use crate::ports::{
    MockClock, MockContentRepository, MockIdGenerator, MockMailer, MockMemberRepository,
    MockReadiness, MockSiteRepository, MockTenantRepository, MockWidgetRepository,
};

#[cfg(feature = "testing")]
pub use chatdesk_builder::ChatdeskBuilder;

/// Builders with sensible defaults for every entity: `a_site().name("Docs").build()`.
pub mod builders {
    use chrono::{DateTime, TimeZone, Utc};
    use uuid::Uuid;

    use crate::content::{Audience, ContentItem, ContentKind, ContentStatus};
    use crate::conversation::{
        ChatFeedback, ChatMessage, ChatSession, EndUser, MessageRole, MessageStatus, Vote,
    };
    use crate::email::Email;
    use crate::ids::*;
    use crate::secret::SecretHash;
    use crate::site::{MappingStatus, Site, SiteDomain, Theme};
    use crate::tenant::{Actor, Plan, Role, Tenant, TenantMember};
    use crate::ticket::{Delivery, DeliveryStatus, SupportTicket, TicketStatus};
    use crate::widget::{ChatWidget, WidgetPosition, WidgetSettings, WidgetStatus};

    /// The fixed instant builders stamp: 2026-01-01T12:00:00Z.
    pub fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap_or_else(|_| unreachable!("builder emails are valid"))
    }

    macro_rules! builder {
        ($(#[$doc:meta])* $fn_name:ident -> $builder:ident($entity:ty) = $init:expr; { $($field:ident : $ty:ty),* $(,)? }) => {
            $(#[$doc])*
            #[derive(Debug, Clone)]
            pub struct $builder(pub $entity);

            $(#[$doc])*
            pub fn $fn_name() -> $builder {
                $builder($init)
            }

            impl $builder {
                $(
                    #[doc = concat!("Sets `", stringify!($field), "`.")]
                    pub fn $field(mut self, value: $ty) -> Self {
                        self.0.$field = value;
                        self
                    }
                )*

                /// Changes anything else.
                pub fn with(mut self, change: impl FnOnce(&mut $entity)) -> Self {
                    change(&mut self.0);
                    self
                }

                /// The entity.
                pub fn build(self) -> $entity {
                    self.0
                }
            }
        };
    }

    builder!(
        /// A PRO tenant with 100 credits.
        a_tenant -> TenantBuilder(Tenant) = Tenant {
            id: TenantId(Uuid::now_v7()),
            name: "Acme".into(),
            plan: Plan::Pro,
            credits: 100,
            created_at: t0(),
        }; { id: TenantId, name: String, plan: Plan, credits: i64 }
    );

    builder!(
        /// An OWNER member.
        a_member -> MemberBuilder(TenantMember) = TenantMember {
            id: MemberId(Uuid::now_v7()),
            tenant_id: TenantId(Uuid::now_v7()),
            email: email("owner@acme.test"),
            role: Role::Owner,
            created_at: t0(),
        }; { id: MemberId, tenant_id: TenantId, email: Email, role: Role }
    );

    /// A signed-in OWNER of a PRO tenant.
    #[derive(Debug, Clone)]
    pub struct ActorBuilder {
        tenant: Tenant,
        role: Role,
    }

    /// A signed-in OWNER of a PRO tenant.
    pub fn an_actor() -> ActorBuilder {
        ActorBuilder {
            tenant: a_tenant().build(),
            role: Role::Owner,
        }
    }

    impl ActorBuilder {
        /// Sets the member's role.
        pub fn role(mut self, role: Role) -> Self {
            self.role = role;
            self
        }
        /// Sets the tenant's plan.
        pub fn plan(mut self, plan: Plan) -> Self {
            self.tenant.plan = plan;
            self
        }
        /// The actor.
        pub fn build(self) -> Actor {
            let member = a_member().tenant_id(self.tenant.id).role(self.role).build();
            Actor {
                member,
                tenant: self.tenant,
            }
        }
    }

    builder!(
        /// An unmapped site `example.com`.
        a_site -> SiteBuilder(Site) = Site {
            id: SiteId(Uuid::now_v7()),
            tenant_id: TenantId(Uuid::now_v7()),
            domain: SiteDomain::parse("example.com").unwrap_or_else(|_| unreachable!()),
            name: "Example".into(),
            allow_subdomains: false,
            mapping_status: MappingStatus::Pending,
            api_key_prefix: "cd_live_000000".into(),
            api_key_hash: SecretHash::of("cd_live_test"),
            identity_secret_hash: None,
            theme: Theme::default(),
            created_at: t0(),
            updated_at: t0(),
        }; {
            id: SiteId, tenant_id: TenantId, domain: SiteDomain, name: String,
            allow_subdomains: bool, mapping_status: MappingStatus,
            identity_secret_hash: Option<SecretHash>, theme: Theme,
        }
    );

    /// Default Builder settings.
    pub fn widget_settings() -> WidgetSettings {
        WidgetSettings {
            welcome_message: "Hi! How can we help?".into(),
            disclaimer: None,
            position: WidgetPosition::BottomRight,
            support_email: None,
            persona: None,
            insufficient_credits_message: crate::widget::DEFAULT_INSUFFICIENT_CREDITS_MESSAGE
                .into(),
            rate_limit_per_session: crate::widget::DEFAULT_RATE_LIMIT_PER_SESSION,
        }
    }

    builder!(
        /// A DRAFT widget with default settings.
        a_widget -> WidgetBuilder(ChatWidget) = ChatWidget::new(
            WidgetId(Uuid::now_v7()),
            SiteId(Uuid::now_v7()),
            widget_settings(),
            t0(),
        ); { id: WidgetId, site_id: SiteId, status: WidgetStatus, settings: WidgetSettings }
    );

    builder!(
        /// A published Flow "Invite a teammate" for everyone.
        a_content_item -> ContentBuilder(ContentItem) = ContentItem {
            id: ContentId(Uuid::now_v7()),
            site_id: SiteId(Uuid::now_v7()),
            kind: ContentKind::Flow,
            name: "Invite a teammate".into(),
            description: "Where the invite button is".into(),
            status: ContentStatus::Published,
            audiences: Vec::new(),
            generated: false,
            created_at: t0(),
            updated_at: t0(),
        }; {
            id: ContentId, site_id: SiteId, kind: ContentKind, name: String,
            status: ContentStatus, audiences: Vec<Audience>, generated: bool,
        }
    );

    builder!(
        /// An anonymous visitor.
        an_end_user -> EndUserBuilder(EndUser) = EndUser {
            id: EndUserId(Uuid::now_v7()),
            site_id: SiteId(Uuid::now_v7()),
            anonymous_id: "anon-1".into(),
            external_id: None,
            traits: serde_json::Map::new(),
            verified: false,
            first_seen_at: t0(),
            last_seen_at: t0(),
        }; { id: EndUserId, site_id: SiteId, anonymous_id: String, external_id: Option<String>, verified: bool }
    );

    builder!(
        /// A fresh session with no messages.
        a_session -> SessionBuilder(ChatSession) = ChatSession {
            id: SessionId(Uuid::now_v7()),
            site_id: SiteId(Uuid::now_v7()),
            widget_id: WidgetId(Uuid::now_v7()),
            end_user_id: EndUserId(Uuid::now_v7()),
            token_hash: SecretHash::of("cd_sess_test"),
            started_at: t0(),
            last_active_at: t0(),
            message_count: 0,
            question_count: 0,
            up_votes: 0,
            down_votes: 0,
            ticket_id: None,
            preview: None,
        }; { id: SessionId, site_id: SiteId, up_votes: u32, down_votes: u32, ticket_id: Option<TicketId> }
    );

    builder!(
        /// A COMPLETED assistant message.
        a_message -> MessageBuilder(ChatMessage) = ChatMessage {
            id: MessageId(Uuid::now_v7()),
            session_id: SessionId(Uuid::now_v7()),
            site_id: SiteId(Uuid::now_v7()),
            role: MessageRole::Assistant,
            status: MessageStatus::Completed,
            content: "Here is how.".into(),
            content_ref: None,
            model: None,
            tokens_used: None,
            created_at: t0(),
        }; { id: MessageId, session_id: SessionId, role: MessageRole, status: MessageStatus, content: String }
    );

    builder!(
        /// An UP vote.
        a_feedback -> FeedbackBuilder(ChatFeedback) = ChatFeedback {
            id: FeedbackId(Uuid::now_v7()),
            message_id: MessageId(Uuid::now_v7()),
            session_id: SessionId(Uuid::now_v7()),
            vote: Vote::Up,
            created_at: t0(),
            updated_at: t0(),
        }; { message_id: MessageId, session_id: SessionId, vote: Vote }
    );

    builder!(
        /// An OPEN ticket whose email is pending.
        a_ticket -> TicketBuilder(SupportTicket) = SupportTicket {
            id: TicketId(Uuid::now_v7()),
            tenant_id: TenantId(Uuid::now_v7()),
            site_id: SiteId(Uuid::now_v7()),
            session_id: SessionId(Uuid::now_v7()),
            email: email("visitor@example.com"),
            subject: "It does not work".into(),
            body: "Steps…".into(),
            conversation: serde_json::json!([]),
            status: TicketStatus::Open,
            created_at: t0(),
            updated_at: t0(),
            resolved_at: None,
            resolved_by: None,
            delivery: Delivery {
                status: DeliveryStatus::Pending,
                recipient: None,
                attempts: 0,
                last_error: None,
            },
        }; { id: TicketId, site_id: SiteId, session_id: SessionId, status: TicketStatus }
    );
}

#[cfg(feature = "testing")]
mod chatdesk_builder {
    use std::sync::Arc;

    use super::builders::t0;
    use crate::ports::*;
    use crate::usecases::Chatdesk;

    /// Builds a [`Chatdesk`] from mocks: a clock fixed at
    /// [`t0`](super::builders::t0), v7 ids, and, for every port not given,
    /// a mock with no expectations (any call fails the test).
    pub struct ChatdeskBuilder {
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        readiness: Arc<dyn Readiness>,
        tenants: Arc<dyn TenantRepository>,
        members: Arc<dyn MemberRepository>,
        sites: Arc<dyn SiteRepository>,
        widgets: Arc<dyn WidgetRepository>,
        content: Arc<dyn ContentRepository>,
    }

    impl Default for ChatdeskBuilder {
        fn default() -> Self {
            Self::new()
        }
    }

    impl ChatdeskBuilder {
        /// Everything mocked, nothing expected.
        pub fn new() -> Self {
            let mut clock = MockClock::new();
            clock.expect_now().returning(t0);
            ChatdeskBuilder {
                clock: Arc::new(clock),
                ids: Arc::new(RandomIds),
                readiness: Arc::new(MockReadiness::new()),
                tenants: Arc::new(MockTenantRepository::new()),
                members: Arc::new(MockMemberRepository::new()),
                sites: Arc::new(MockSiteRepository::new()),
                widgets: Arc::new(MockWidgetRepository::new()),
                content: Arc::new(MockContentRepository::new()),
            }
        }

        /// Uses this clock.
        pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
            self.clock = Arc::new(clock);
            self
        }
        /// Uses this id generator.
        pub fn ids(mut self, ids: impl IdGenerator + 'static) -> Self {
            self.ids = Arc::new(ids);
            self
        }
        /// Uses this readiness check.
        pub fn readiness(mut self, r: impl Readiness + 'static) -> Self {
            self.readiness = Arc::new(r);
            self
        }
        /// Uses this tenant repository.
        pub fn tenants(mut self, r: impl TenantRepository + 'static) -> Self {
            self.tenants = Arc::new(r);
            self
        }
        /// Uses this member repository.
        pub fn members(mut self, r: impl MemberRepository + 'static) -> Self {
            self.members = Arc::new(r);
            self
        }
        /// Uses this site repository.
        pub fn sites(mut self, r: impl SiteRepository + 'static) -> Self {
            self.sites = Arc::new(r);
            self
        }
        /// Uses this widget repository.
        pub fn widgets(mut self, r: impl WidgetRepository + 'static) -> Self {
            self.widgets = Arc::new(r);
            self
        }
        /// Uses this content repository.
        pub fn content(mut self, r: impl ContentRepository + 'static) -> Self {
            self.content = Arc::new(r);
            self
        }

        /// The use cases over these ports.
        pub fn build(self) -> Chatdesk {
            Chatdesk {
                clock: self.clock,
                ids: self.ids,
                readiness: self.readiness,
                tenants: self.tenants,
                members: self.members,
                sites: self.sites,
                widgets: self.widgets,
                content: self.content,
            }
        }
    }
}
