//! Test support: builders for every entity and, with the `testing`
//! feature, mockall mocks of every port plus a fixed clock and real ids.
//! Each service takes only the ports it uses, so a test builds one service
//! over a mock or two; a mock with no expectations fails on any call.
//!
//! A use case in a few lines:
//!
//! ```
//! use std::sync::Arc;
//!
//! use chatdesk_domain::services::SiteService;
//! use chatdesk_domain::site::SitePatchInput;
//! use chatdesk_domain::tenant::Role;
//! use chatdesk_domain::testing::builders::*;
//! use chatdesk_domain::testing::{fixed_clock, random_ids, MockSiteRepository};
//! use chatdesk_domain::version::Precondition;
//!
//! let member = an_actor().role(Role::Member).build();
//! let site = a_site().tenant_id(member.tenant.id).build();
//!
//! let mut sites = MockSiteRepository::new();
//! sites.expect_get_site().return_const(Ok(site.clone()));
//! sites.expect_update_site().never();
//!
//! let service = SiteService::new(fixed_clock(), random_ids(), Arc::new(sites));
//! let rename = SitePatchInput { name: Some("Help".into()), ..Default::default() };
//! let err = service.update_site(&member, site.id, &rename, &Precondition::None).unwrap_err();
//! assert_eq!(err.code(), "ROLE_TOO_WEAK");
//! ```

#[cfg(feature = "testing")]
pub use crate::observability::MockObservability;
#[cfg(feature = "testing")]
pub use crate::ports::{
    MockAnswerModel, MockClock, MockContentRepository, MockConversationRepository, MockIdGenerator,
    MockIdempotencyRepository, MockMailer, MockMemberRepository, MockOutboxRepository,
    MockReadiness, MockSiteRepository, MockTenantRepository, MockTicketMailer,
    MockTicketRepository, MockVisitorRepository, MockWidgetRepository,
};

#[cfg(feature = "testing")]
pub use ports::{fixed_clock, random_ids, WithoutTransaction};

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
            version: crate::version::Version::FIRST,
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
        ); { id: WidgetId, site_id: SiteId, status: WidgetStatus, published_at: Option<DateTime<Utc>>, settings: WidgetSettings }
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
            origin: None,
            created_at: t0(),
            updated_at: t0(),
            version: crate::version::Version::FIRST,
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
            started_at: t0(),
            last_active_at: t0(),
            ended_at: None,
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
mod ports {
    use std::sync::Arc;

    use super::builders::t0;
    use crate::error::Error;
    use crate::ports::{Clock, IdGenerator, MockClock, RandomIds, UnitOfWork};

    /// A unit of work with no transaction: it runs the work as it is (for
    /// services over mocked repositories, which have nothing to roll back).
    #[derive(Debug, Clone, Copy, Default)]
    pub struct WithoutTransaction;

    impl UnitOfWork for WithoutTransaction {
        fn atomically(&self, work: &mut dyn FnMut() -> Result<(), Error>) -> Result<(), Error> {
            work()
        }
    }

    /// A clock that always says [`t0`](super::builders::t0).
    pub fn fixed_clock() -> Arc<dyn Clock> {
        let mut clock = MockClock::new();
        clock.expect_now().returning(t0);
        Arc::new(clock)
    }

    /// Real v7 ids and randomness (what most tests want).
    pub fn random_ids() -> Arc<dyn IdGenerator> {
        Arc::new(RandomIds)
    }
}
