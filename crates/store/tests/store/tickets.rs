//! Support tickets in the store, on both backends: opening one from a
//! session (`VisitorRepository::open_ticket`: the ticket, the session's
//! escalation and the email's outbox row in one transaction), the Tickets
//! tab (`TicketRepository`), and the writes that race them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Barrier;

use chatdesk_domain::conversation::{ChatSession, MessageRole, Vote};
use chatdesk_domain::email::Email;
use chatdesk_domain::ids::{FeedbackId, MemberId, MessageId, SessionId, SiteId, TicketId};
use chatdesk_domain::ports::{
    Exchange, MemberRepository, OpenTicket, PageRequest, TicketRepository, VisitorRepository,
    WidgetRepository,
};
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::tenant::Role;
use chatdesk_domain::testing::builders::{a_member, t0};
use chatdesk_domain::ticket::{
    ticket_message_id, ConversationSnapshot, DeliveryStatus, SupportTicket, TicketCursor,
    TicketStatus, TicketText,
};
use chatdesk_domain::version::Precondition;
use chatdesk_domain::visitor::VisitorIdentity;
use chatdesk_domain::widget::NamedSettings;
use chatdesk_domain::{Entity, Error};
use chatdesk_store::schema::{chat_widgets, email_outbox, support_tickets, tenant_members};
use chatdesk_store::{connect, Store};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::helpers::{mapped_site, race, stored, stores, ROUNDS};
use crate::visitor::{anonymous, fixture, new_token, now, Fixture};

// ---------------------------------------------------------------------------
// Building sessions and tickets with the real repository calls.

/// A visitor's session with one answered question.
pub struct Asked {
    pub session: ChatSession,
    pub token: SecretHash,
    pub exchange: Exchange,
}

impl Asked {
    /// The assistant's reply.
    pub fn reply(&self) -> MessageId {
        self.exchange.reply.id
    }

    /// The session as stored now.
    pub fn current(&self, fx: &Fixture, store: &Store) -> ChatSession {
        fx.context(store, &self.token)
            .expect("the session is found")
            .session
    }
}

/// Opens `identity`'s session and records one question and its reply.
pub fn asked_as(store: &Store, fx: &Fixture, identity: VisitorIdentity) -> Asked {
    let request = fx.request(identity, now());
    let session = store.open_session(&request).expect("opens").session;
    let exchange = fx.exchange(&session, "How do I invite a teammate?", 1000, 0);
    store.record_exchange(&exchange).expect("records");
    Asked {
        session,
        token: request.token,
        exchange,
    }
}

/// Votes on a message of the session, now.
pub fn vote(store: &Store, session: SessionId, message: MessageId, vote: Vote) {
    store
        .vote(session, message, vote, FeedbackId(Uuid::now_v7()), now())
        .expect("votes");
}

/// The anonymous visitor `visitor`'s session with its reply voted DOWN.
pub fn downvoted(store: &Store, fx: &Fixture, visitor: &str) -> Asked {
    let asked = asked_as(store, fx, anonymous(visitor));
    vote(store, asked.session.id, asked.reply(), Vote::Down);
    asked
}

/// A ticket's text: typed-in address `email` (if any).
pub fn text(email: Option<&str>) -> TicketText {
    TicketText {
        email: email.map(|e| Email::parse(e).expect("a valid address")),
        subject: "Cannot invite a teammate".into(),
        body: "The invite button is missing.\nWhat now?".into(),
    }
}

/// A request to open a ticket from `session` at `at`, with the site's key,
/// a typed-in address and fresh ids.
pub fn ticket_request(fx: &Fixture, session: SessionId, at: DateTime<Utc>) -> OpenTicket {
    let ticket_id = TicketId(Uuid::now_v7());
    OpenTicket {
        key: fx.site.api_key_hash.clone(),
        session_id: session,
        ticket_id,
        delivery_id: Uuid::now_v7(),
        message_id: ticket_message_id(ticket_id, "chatdesk.test"),
        text: text(Some("visitor@example.com")),
        now: at,
    }
}

/// Opens a ticket from `session` at `at`.
pub fn open_at(
    store: &Store,
    fx: &Fixture,
    session: SessionId,
    at: DateTime<Utc>,
) -> SupportTicket {
    store
        .open_ticket(&ticket_request(fx, session, at))
        .expect("opens the ticket")
}

/// `at` as a stored column holds it.
pub fn naive(at: DateTime<Utc>) -> NaiveDateTime {
    stored(at).naive_utc()
}

/// A stored outbox row, every column.
#[derive(Debug, Clone, PartialEq, Queryable)]
pub struct OutboxRow {
    pub id: String,
    pub ticket_id: String,
    pub site_id: String,
    pub tenant_id: String,
    pub status: String,
    pub recipient: Option<String>,
    pub message_id: String,
    pub attempts: i32,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub locked_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

/// The outbox row of `ticket`.
pub fn outbox_row(url: &str, ticket: TicketId) -> OutboxRow {
    let mut conn = connect(url).expect("connects");
    email_outbox::table
        .filter(email_outbox::ticket_id.eq(ticket.to_string()))
        .select(email_outbox::all_columns)
        .first(&mut conn)
        .expect("the ticket's outbox row")
}

/// How many tickets and outbox rows are stored.
fn counts(url: &str) -> (i64, i64) {
    let mut conn = connect(url).expect("connects");
    let tickets = support_tickets::table
        .count()
        .get_result(&mut conn)
        .expect("counts tickets");
    let emails = email_outbox::table
        .count()
        .get_result(&mut conn)
        .expect("counts emails");
    (tickets, emails)
}

/// The ids of the tickets opened from `session`.
fn tickets_of(url: &str, session: SessionId) -> Vec<String> {
    let mut conn = connect(url).expect("connects");
    support_tickets::table
        .filter(support_tickets::session_id.eq(session.to_string()))
        .select(support_tickets::id)
        .order(support_tickets::id)
        .load(&mut conn)
        .expect("reads tickets")
}

/// Sets the widget's support email override (or clears it).
fn set_support_email(store: &Store, fx: &Fixture, email: Option<&str>) {
    let mut widget = fx.widget.clone();
    widget.settings.support_email = email.map(|e| Email::parse(e).expect("valid"));
    store
        .save_widget_settings(
            fx.tenant.id,
            &widget,
            &NamedSettings::ALL,
            &Precondition::None,
        )
        .expect("saves the widget");
}

/// Adds a member of the fixture's tenant with `role`, made at `created_at`.
fn add_member(store: &Store, fx: &Fixture, email: &str, role: Role, created_at: DateTime<Utc>) {
    let member = a_member()
        .tenant_id(fx.tenant.id)
        .email(Email::parse(email).expect("valid"))
        .role(role)
        .with(|m| m.created_at = created_at)
        .build();
    store
        .insert_member(&member, &new_token())
        .expect("adds the member");
}

/// The snapshot a ticket stores.
fn snapshot(ticket: &SupportTicket) -> ConversationSnapshot {
    serde_json::from_value(ticket.conversation.clone()).expect("a conversation snapshot")
}

// ---------------------------------------------------------------------------
// Opening a ticket.

#[test]
fn a_ticket_follows_a_down_vote_and_nothing_is_written_without_one() {
    for t in stores() {
        let fx = fixture(&t);
        let (unanswered, _) = fx.open(&t, "anon-0");
        let asked = asked_as(&t, &fx, anonymous("anon-1"));
        let no_downvote = |session: SessionId, step: &str| {
            assert_eq!(
                t.open_ticket(&ticket_request(&fx, session, now())),
                Err(Error::NoDownvote),
                "{}: {step}",
                t.name()
            );
            assert_eq!(counts(t.url()), (0, 0), "{}: {step}", t.name());
        };
        no_downvote(unanswered.id, "no messages");
        no_downvote(asked.session.id, "no vote");
        vote(&t, asked.session.id, asked.reply(), Vote::Up);
        no_downvote(asked.session.id, "an UP vote");
        vote(&t, asked.session.id, asked.reply(), Vote::Down);
        vote(&t, asked.session.id, asked.reply(), Vote::Up);
        no_downvote(asked.session.id, "a DOWN vote changed to UP");
        assert_eq!(
            asked.current(&fx, &t).ticket_id,
            None,
            "{}: not escalated",
            t.name()
        );

        vote(&t, asked.session.id, asked.reply(), Vote::Down);
        let ticket = open_at(&t, &fx, asked.session.id, now());
        assert_eq!(ticket.status, TicketStatus::Open, "{}", t.name());
        assert_eq!(counts(t.url()), (1, 1), "{}", t.name());
    }
}

#[test]
fn the_reply_address_is_the_typed_one_else_a_valid_email_trait() {
    for t in stores() {
        let fx = fixture(&t);
        let with_traits = |visitor: &str, traits: serde_json::Value| {
            let identity = VisitorIdentity {
                traits: Some(traits.as_object().expect("an object").clone()),
                ..anonymous(visitor)
            };
            let asked = asked_as(&t, &fx, identity);
            vote(&t, asked.session.id, asked.reply(), Vote::Down);
            asked
        };

        let ada = with_traits("anon-ada", serde_json::json!({"email": "Ada@Example.COM"}));
        let from_trait = OpenTicket {
            text: text(None),
            ..ticket_request(&fx, ada.session.id, now())
        };
        let ticket = t.open_ticket(&from_trait).expect("opens");
        assert_eq!(ticket.email.as_str(), "ada@example.com", "{}", t.name());
        let typed = OpenTicket {
            text: text(Some("Typed@Example.com")),
            ..ticket_request(&fx, ada.session.id, now())
        };
        let ticket = t.open_ticket(&typed).expect("opens");
        assert_eq!(
            ticket.email.as_str(),
            "typed@example.com",
            "{}: the typed address wins over the trait",
            t.name()
        );
        assert_eq!(
            t.get_ticket(fx.site.id, ticket.id).expect("reads").email,
            ticket.email
        );
        let mut before = counts(t.url());

        // An email trait that is no address counts as none.
        let cases = [
            ("anon-bad", serde_json::json!({"email": "not an address"})),
            ("anon-num", serde_json::json!({"email": 42})),
            ("anon-null", serde_json::json!({"email": null})),
            ("anon-plan", serde_json::json!({"plan": "pro"})),
            ("anon-none", serde_json::json!({})),
        ];
        for (visitor, traits) in cases {
            let asked = with_traits(visitor, traits.clone());
            let request = OpenTicket {
                text: text(None),
                ..ticket_request(&fx, asked.session.id, now())
            };
            let error = t.open_ticket(&request).expect_err("no address");
            let fields: Vec<&str> = error
                .field_errors()
                .iter()
                .map(|e| e.field.as_str())
                .collect();
            assert_eq!(fields, ["email"], "{}: {traits}: {error:?}", t.name());
            assert_eq!(counts(t.url()), before, "{}: {traits}", t.name());
            assert_eq!(asked.current(&fx, &t).ticket_id, None, "{}", t.name());
            // The typed address still opens it.
            let typed = ticket_request(&fx, asked.session.id, now());
            t.open_ticket(&typed).expect("opens with a typed address");
            t.get_ticket(fx.site.id, typed.ticket_id).expect("stored");
            before = (before.0 + 1, before.1 + 1);
            assert_eq!(counts(t.url()), before, "{}", t.name());
        }
    }
}

#[test]
fn the_ticket_keeps_the_whole_conversation_with_its_votes() {
    for t in stores() {
        let fx = fixture(&t);
        let identity = VisitorIdentity {
            external_id: Some("user-7".into()),
            traits: Some(
                serde_json::json!({"email": "ada@example.com", "plan": "pro"})
                    .as_object()
                    .expect("an object")
                    .clone(),
            ),
            ..anonymous("anon-1")
        };
        let asked = asked_as(&t, &fx, identity);
        let second = fx.exchange(&asked.session, "And to remove one?", 1000, 0);
        t.record_exchange(&second).expect("records");
        let third = fx.exchange(&asked.session, "Thanks", 1000, 0);
        t.record_exchange(&third).expect("records");
        vote(&t, asked.session.id, asked.reply(), Vote::Down);
        vote(&t, asked.session.id, second.reply.id, Vote::Up);
        let before = asked.current(&fx, &t);

        // An instant finer than a microsecond is stored to the microsecond.
        let at = Utc::now();
        let request = ticket_request(&fx, asked.session.id, at);
        let ticket = t.open_ticket(&request).expect("opens");
        assert_eq!(ticket.id, request.ticket_id);
        assert_eq!(
            (ticket.tenant_id, ticket.site_id, ticket.session_id),
            (fx.tenant.id, fx.site.id, asked.session.id),
            "{}",
            t.name()
        );
        assert_eq!(ticket.email.as_str(), "visitor@example.com");
        assert_eq!(ticket.subject, request.text.subject);
        assert_eq!(ticket.body, request.text.body);
        assert_eq!(ticket.status, TicketStatus::Open);
        assert_eq!(ticket.created_at, stored(at), "{}", t.name());
        assert_eq!(ticket.updated_at, stored(at), "{}", t.name());
        assert_eq!((ticket.resolved_at, ticket.resolved_by), (None, None));
        assert_eq!(
            t.get_ticket(fx.site.id, ticket.id).expect("reads"),
            ticket,
            "{}: what was returned is what is stored",
            t.name()
        );

        let snap = snapshot(&ticket);
        assert_eq!(snap.session_id, asked.session.id);
        assert_eq!(snap.anonymous_id, "anon-1");
        assert_eq!(snap.external_id.as_deref(), Some("user-7"));
        assert_eq!(snap.traits["plan"], "pro", "{}", t.name());
        let exchanges = [&asked.exchange, &second, &third];
        let expected: Vec<(MessageId, MessageRole, String, Option<Vote>)> = exchanges
            .iter()
            .zip([Some(Vote::Down), Some(Vote::Up), None])
            .flat_map(|(e, vote)| {
                [
                    (
                        e.question.id,
                        MessageRole::User,
                        e.question.content.clone(),
                        None,
                    ),
                    (
                        e.reply.id,
                        MessageRole::Assistant,
                        e.reply.content.clone(),
                        vote,
                    ),
                ]
            })
            .collect();
        let got: Vec<(MessageId, MessageRole, String, Option<Vote>)> = snap
            .messages
            .iter()
            .map(|m| (m.id, m.role, m.content.clone(), m.vote))
            .collect();
        assert_eq!(got, expected, "{}: every message, oldest first", t.name());
        for (m, e) in snap.messages.iter().zip(
            exchanges
                .iter()
                .flat_map(|e| [e.question.clone(), e.reply.clone()]),
        ) {
            assert_eq!((m.status, m.created_at), (e.status, e.created_at));
        }

        // The session is escalated; its activity and counters do not move.
        let after = asked.current(&fx, &t);
        assert_eq!(after.ticket_id, Some(ticket.id), "{}", t.name());
        assert_eq!(
            ChatSession {
                ticket_id: None,
                ..after
            },
            before,
            "{}: only the escalation changes",
            t.name()
        );

        // Later messages do not change the stored snapshot.
        let fourth = fx.exchange(&asked.session, "Still there?", 1000, 0);
        t.record_exchange(&fourth).expect("records");
        vote(&t, asked.session.id, asked.reply(), Vote::Up);
        assert_eq!(
            t.get_ticket(fx.site.id, ticket.id).expect("reads"),
            ticket,
            "{}",
            t.name()
        );
    }
}

#[test]
fn the_session_points_at_its_first_ticket() {
    for t in stores() {
        let fx = fixture(&t);
        let asked = downvoted(&t, &fx, "anon-1");
        let base = now();
        let tickets: Vec<SupportTicket> = (0..4)
            .map(|i| open_at(&t, &fx, asked.session.id, base + Duration::seconds(i)))
            .collect();
        assert_eq!(
            asked.current(&fx, &t).ticket_id,
            Some(tickets[0].id),
            "{}",
            t.name()
        );
        assert_eq!(tickets_of(t.url(), asked.session.id).len(), 4);
        assert_eq!(counts(t.url()), (4, 4), "{}: one email each", t.name());
    }
}

#[test]
fn the_email_goes_to_the_widget_address_else_the_first_owner_else_nobody() {
    for t in stores() {
        let fx = fixture(&t);
        // The fixture's owner (owner@acme.test) was made at t0; an earlier
        // owner is the first one, and an even earlier admin is no owner.
        add_member(
            &t,
            &fx,
            "admin@acme.test",
            Role::Admin,
            t0() - Duration::days(2),
        );
        add_member(
            &t,
            &fx,
            "first@acme.test",
            Role::Owner,
            t0() - Duration::days(1),
        );
        add_member(
            &t,
            &fx,
            "late@acme.test",
            Role::Owner,
            t0() + Duration::days(1),
        );
        let asked = downvoted(&t, &fx, "anon-1");

        let check = |expected_status: DeliveryStatus, recipient: Option<&str>, case: &str| {
            let at = Utc::now();
            let request = ticket_request(&fx, asked.session.id, at);
            let ticket = t.open_ticket(&request).expect("opens");
            let row = outbox_row(t.url(), ticket.id);
            let pending = expected_status == DeliveryStatus::Pending;
            assert_eq!(
                row,
                OutboxRow {
                    id: request.delivery_id.to_string(),
                    ticket_id: ticket.id.to_string(),
                    site_id: fx.site.id.to_string(),
                    tenant_id: fx.tenant.id.to_string(),
                    status: expected_status.as_str().into(),
                    recipient: recipient.map(str::to_string),
                    message_id: request.message_id.clone(),
                    attempts: 0,
                    next_attempt_at: pending.then(|| naive(at)),
                    locked_until: None,
                    last_error: None,
                    created_at: naive(at),
                    updated_at: naive(at),
                    sent_at: None,
                },
                "{}: {case}",
                t.name()
            );
            assert_eq!(ticket.delivery.status, expected_status, "{case}");
            assert_eq!(
                ticket.delivery.recipient.as_ref().map(Email::as_str),
                recipient,
                "{case}"
            );
            assert_eq!(
                (ticket.delivery.attempts, &ticket.delivery.last_error),
                (0, &None)
            );
            assert_eq!(
                t.get_ticket(fx.site.id, ticket.id).expect("reads").delivery,
                ticket.delivery,
                "{}: {case}",
                t.name()
            );
        };

        set_support_email(&t, &fx, Some("Help@Example.com"));
        check(
            DeliveryStatus::Pending,
            Some("help@example.com"),
            "the widget's address",
        );
        set_support_email(&t, &fx, None);
        check(
            DeliveryStatus::Pending,
            Some("first@acme.test"),
            "the first owner",
        );

        // A stored override that is no address is passed over.
        let mut conn = connect(t.url()).expect("connects");
        diesel::update(
            chat_widgets::table.filter(chat_widgets::site_id.eq(fx.site.id.to_string())),
        )
        .set(chat_widgets::support_email.eq("not an address"))
        .execute(&mut conn)
        .expect("breaks the override");
        check(
            DeliveryStatus::Pending,
            Some("first@acme.test"),
            "a broken override",
        );

        diesel::delete(
            tenant_members::table
                .filter(tenant_members::tenant_id.eq(fx.tenant.id.to_string()))
                .filter(tenant_members::role.eq("OWNER")),
        )
        .execute(&mut conn)
        .expect("removes the owners");
        check(DeliveryStatus::NoRecipient, None, "nobody");
        // The ticket nobody receives is still listed.
        let listed = t
            .list_tickets(
                fx.site.id,
                None,
                &PageRequest {
                    limit: 100,
                    after: None,
                },
            )
            .expect("lists");
        assert_eq!(listed.items.len(), 4, "{}", t.name());
        assert_eq!(
            listed.items[0].delivery.status,
            DeliveryStatus::NoRecipient,
            "{}",
            t.name()
        );
    }
}

#[test]
fn a_wrong_key_or_a_session_it_does_not_open_writes_nothing() {
    for t in stores() {
        let fx = fixture(&t);
        let asked = downvoted(&t, &fx, "anon-1");
        let other = fixture(&t);
        let theirs = downvoted(&t, &other, "anon-1");
        let cases = [
            (
                OpenTicket {
                    key: new_token(),
                    ..ticket_request(&fx, asked.session.id, now())
                },
                Error::InvalidCredentials,
                "an unknown key",
            ),
            (
                OpenTicket {
                    key: other.site.api_key_hash.clone(),
                    ..ticket_request(&fx, asked.session.id, now())
                },
                // The key is checked against the session's site: another
                // site's key is as good as none (the service only asks for
                // the session its key and token found).
                Error::InvalidCredentials,
                "another site's key",
            ),
            (
                ticket_request(&fx, theirs.session.id, now()),
                Error::InvalidCredentials,
                "another site's session with this site's key",
            ),
            (
                ticket_request(&fx, SessionId(Uuid::now_v7()), now()),
                Error::NotFound(Entity::Session),
                "an unknown session",
            ),
        ];
        for (request, error, case) in cases {
            assert_eq!(t.open_ticket(&request), Err(error), "{}: {case}", t.name());
            assert_eq!(counts(t.url()), (0, 0), "{}: {case}", t.name());
        }
        assert_eq!(asked.current(&fx, &t).ticket_id, None);
        assert_eq!(theirs.current(&other, &t).ticket_id, None);
    }
}

/// The ticket, the escalation and the outbox row are one transaction: when
/// the outbox row cannot be written, neither the ticket nor the session's
/// escalation remains.
#[test]
fn a_failed_outbox_write_leaves_no_ticket_and_no_escalation() {
    for t in stores() {
        let fx = fixture(&t);
        let first = downvoted(&t, &fx, "anon-1");
        let earlier = ticket_request(&fx, first.session.id, now());
        t.open_ticket(&earlier).expect("opens");
        let second = downvoted(&t, &fx, "anon-2");

        let duplicates = [
            (
                OpenTicket {
                    message_id: earlier.message_id.clone(),
                    ..ticket_request(&fx, second.session.id, now())
                },
                "the Message-ID of another ticket's email",
            ),
            (
                OpenTicket {
                    delivery_id: earlier.delivery_id,
                    ..ticket_request(&fx, second.session.id, now())
                },
                "the outbox id of another ticket's email",
            ),
        ];
        for (request, case) in duplicates {
            let result = t.open_ticket(&request);
            assert!(result.is_err(), "{}: {case}: {result:?}", t.name());
            assert_eq!(
                t.get_ticket(fx.site.id, request.ticket_id),
                Err(Error::NotFound(Entity::Ticket)),
                "{}: {case}: the ticket is not stored",
                t.name()
            );
            assert_eq!(counts(t.url()), (1, 1), "{}: {case}", t.name());
            assert_eq!(
                second.current(&fx, &t).ticket_id,
                None,
                "{}: {case}: the session is not escalated",
                t.name()
            );
        }

        // With ids of its own it opens.
        let ticket = open_at(&t, &fx, second.session.id, now());
        assert_eq!(second.current(&fx, &t).ticket_id, Some(ticket.id));
        assert_eq!(counts(t.url()), (2, 2), "{}", t.name());
    }
}

// ---------------------------------------------------------------------------
// Races.

/// Eight tickets opened from one session at once: all eight are stored,
/// each with its email, and the session points at one of them for good.
#[test]
fn tickets_opened_at_once_from_one_session_are_all_kept_and_the_escalation_is_stable() {
    const OPENERS: usize = 8;
    for t in stores() {
        let fx = fixture(&t);
        let mut not_earliest = 0;
        for round in 0..ROUNDS / 4 {
            let asked = downvoted(&t, &fx, &format!("anon-{round}"));
            let start = Barrier::new(OPENERS);
            let results: Vec<Result<SupportTicket, Error>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..OPENERS)
                    .map(|_| {
                        let (store, start, fx, session) = (&t.store, &start, &fx, asked.session.id);
                        s.spawn(move || {
                            start.wait();
                            store.open_ticket(&ticket_request(fx, session, Utc::now()))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("an opener panicked"))
                    .collect()
            });
            let tickets: Vec<SupportTicket> = results
                .into_iter()
                .map(|r| r.unwrap_or_else(|e| panic!("{} round {round}: {e:?}", t.name())))
                .collect();
            let mut ids: Vec<String> = tickets.iter().map(|k| k.id.to_string()).collect();
            ids.sort();
            assert_eq!(
                tickets_of(t.url(), asked.session.id),
                ids,
                "{} round {round}",
                t.name()
            );
            for ticket in &tickets {
                assert_eq!(
                    outbox_row(t.url(), ticket.id).status,
                    "PENDING",
                    "{} round {round}",
                    t.name()
                );
            }
            let escalation = asked.current(&fx, &t).ticket_id.unwrap_or_else(|| {
                panic!("{} round {round}: the session is not escalated", t.name())
            });
            assert!(
                tickets.iter().any(|k| k.id == escalation),
                "{} round {round}: the session points at none of its tickets",
                t.name()
            );
            let earliest = tickets
                .iter()
                .min_by_key(|k| (k.created_at, k.id))
                .map(|k| k.id);
            if earliest != Some(escalation) {
                not_earliest += 1;
            }
            // A later ticket does not move it.
            open_at(&t, &fx, asked.session.id, now());
            assert_eq!(
                asked.current(&fx, &t).ticket_id,
                Some(escalation),
                "{} round {round}",
                t.name()
            );
        }
        eprintln!(
            "{}: the session's ticket was not the earliest-stamped of the eight racers in {not_earliest} of {} rounds (it is the first to commit)",
            t.name(),
            ROUNDS / 4
        );
    }
}

/// The part of a ticket a status change writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct StatusState {
    status: TicketStatus,
    updated_at: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
    resolved_by: Option<MemberId>,
}

impl StatusState {
    fn of(ticket: &SupportTicket) -> StatusState {
        StatusState {
            status: ticket.status,
            updated_at: ticket.updated_at,
            resolved_at: ticket.resolved_at,
            resolved_by: ticket.resolved_by,
        }
    }

    fn tag(&self) -> String {
        SupportTicket {
            updated_at: self.updated_at,
            ..chatdesk_domain::testing::builders::a_ticket().build()
        }
        .entity_tag()
    }
}

/// One member's status change.
#[derive(Debug, Clone)]
struct StatusCall {
    status: TicketStatus,
    by: MemberId,
    precondition: Precondition,
    now: DateTime<Utc>,
}

/// What the call does to `state`, as the Tickets tab defines it: a stale
/// precondition fails; the same status changes nothing; another status
/// writes it with `now`, stamped when RESOLVED and unstamped otherwise.
fn apply(state: StatusState, call: &StatusCall) -> Result<StatusState, Error> {
    if let Precondition::TagIn(tags) = &call.precondition {
        if !tags.contains(&state.tag()) {
            return Err(Error::PreconditionFailed(Entity::Ticket));
        }
    }
    if state.status == call.status {
        return Ok(state);
    }
    let resolved = call.status == TicketStatus::Resolved;
    Ok(StatusState {
        status: call.status,
        updated_at: call.now,
        resolved_at: resolved.then_some(call.now),
        resolved_by: resolved.then_some(call.by),
    })
}

/// A serial order of `calls` from `start` in which each gives the result
/// it gave and which ends in `end`, if there is one (a depth-first search,
/// remembering the dead ends by calls done and latest state).
fn serial_order(
    start: StatusState,
    calls: &[StatusCall],
    results: &[Result<StatusState, Error>],
    end: StatusState,
) -> Option<Vec<usize>> {
    fn search(
        state: StatusState,
        calls: &[StatusCall],
        results: &[Result<StatusState, Error>],
        end: StatusState,
        done: u32,
        order: &mut Vec<usize>,
        dead: &mut HashSet<(u32, StatusState)>,
    ) -> bool {
        if order.len() == calls.len() {
            return state == end;
        }
        if dead.contains(&(done, state)) {
            return false;
        }
        for (i, call) in calls.iter().enumerate() {
            if done & (1 << i) != 0 {
                continue;
            }
            let outcome = apply(state, call);
            if outcome != results[i] {
                continue;
            }
            order.push(i);
            let next = outcome.unwrap_or(state);
            if search(next, calls, results, end, done | (1 << i), order, dead) {
                return true;
            }
            order.pop();
        }
        dead.insert((done, state));
        false
    }
    let mut order = Vec::new();
    search(
        start,
        calls,
        results,
        end,
        0,
        &mut order,
        &mut HashSet::new(),
    )
    .then_some(order)
}

/// Eight members setting one ticket's status at once, with and without a
/// precondition: the outcomes are those of the calls run one after
/// another in some order (each succeeds, or fails on a precondition that
/// was stale when it ran), and the stored ticket is where that order ends.
#[test]
fn status_changes_at_once_are_serialised_and_keep_the_stamp_rule() {
    const MEMBERS: usize = 8;
    for t in stores() {
        let fx = fixture(&t);
        let asked = downvoted(&t, &fx, "anon-1");
        let ticket = open_at(&t, &fx, asked.session.id, now());
        let mut stale = "0".to_string();
        let (mut changes, mut refused) = (0, 0);
        let statuses = [
            TicketStatus::Open,
            TicketStatus::InProgress,
            TicketStatus::Resolved,
        ];
        for round in 0..ROUNDS / 4 {
            let before = t.get_ticket(fx.site.id, ticket.id).expect("reads");
            let tag = before.entity_tag();
            let base = stored(Utc::now()) + Duration::seconds(1);
            let calls: Vec<StatusCall> = (0..MEMBERS)
                .map(|i| {
                    let random = Uuid::new_v4().as_u128();
                    StatusCall {
                        status: statuses[(random % 3) as usize],
                        by: MemberId(Uuid::now_v7()),
                        precondition: match i % 4 {
                            0 => Precondition::None,
                            1 => Precondition::TagIn(vec![tag.clone()]),
                            2 => Precondition::TagIn(vec![stale.clone(), tag.clone()]),
                            _ => Precondition::TagIn(vec![stale.clone()]),
                        },
                        // Distinct instants, in no particular order.
                        now: base + Duration::microseconds(((random >> 8) % 1_000_000) as i64),
                    }
                })
                .collect();
            let start = Barrier::new(MEMBERS);
            let results: Vec<Result<SupportTicket, Error>> = std::thread::scope(|s| {
                let handles: Vec<_> = calls
                    .iter()
                    .map(|call| {
                        let (store, start, site) = (&t.store, &start, fx.site.id);
                        s.spawn(move || {
                            start.wait();
                            store.set_ticket_status(
                                site,
                                ticket.id,
                                call.status,
                                call.by,
                                &call.precondition,
                                call.now,
                            )
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a member panicked"))
                    .collect()
            });
            let after = t.get_ticket(fx.site.id, ticket.id).expect("reads");
            // Nothing but the status and its stamps changes.
            for result in results.iter().flatten().chain([&after]) {
                assert_eq!(
                    SupportTicket {
                        status: before.status,
                        updated_at: before.updated_at,
                        resolved_at: before.resolved_at,
                        resolved_by: before.resolved_by,
                        ..result.clone()
                    },
                    before,
                    "{} round {round}",
                    t.name()
                );
            }
            let states: Vec<Result<StatusState, Error>> = results
                .iter()
                .map(|r| r.as_ref().map(StatusState::of).map_err(Clone::clone))
                .collect();
            let end = StatusState::of(&after);
            let order = serial_order(StatusState::of(&before), &calls, &states, end);
            assert!(
                order.is_some(),
                "{} round {round}: no serial order explains the outcomes\nfrom {:?}\ncalls {calls:#?}\nresults {states:#?}\nstored {end:?}",
                t.name(),
                StatusState::of(&before)
            );
            assert_eq!(
                after.status == TicketStatus::Resolved,
                after.resolved_at.is_some() && after.resolved_by.is_some(),
                "{} round {round}: {end:?}",
                t.name()
            );
            assert!(
                after.resolved_at.is_some() || after.resolved_by.is_none(),
                "{} round {round}: {end:?}",
                t.name()
            );
            changes += calls
                .iter()
                .zip(&states)
                .filter(|(c, s)| s.as_ref().is_ok_and(|s| s.updated_at == c.now))
                .count();
            refused += states.iter().filter(|s| s.is_err()).count();
            stale = tag;
        }
        eprintln!(
            "{}: {} status changes at once: {changes} changed the ticket, {refused} refused on a stale precondition",
            t.name(),
            MEMBERS * (ROUNDS / 4)
        );
    }
}

/// A vote changed while a ticket is opened from the session: the ticket
/// is opened only if the session had a DOWN vote when it was written, and
/// its snapshot shows it; otherwise nothing is written.
#[test]
fn a_vote_racing_a_ticket_never_leaves_a_ticket_without_a_down_vote() {
    for t in stores() {
        let fx = fixture(&t);
        let (mut opened, mut refused) = (0, 0);
        for round in 0..ROUNDS / 2 {
            // Even rounds take the DOWN vote away, odd rounds give it.
            let (initial, racing) = if round % 2 == 0 {
                (Vote::Down, Vote::Up)
            } else {
                (Vote::Up, Vote::Down)
            };
            let asked = asked_as(&t, &fx, anonymous(&format!("anon-{round}")));
            vote(&t, asked.session.id, asked.reply(), initial);
            let request = ticket_request(&fx, asked.session.id, now());
            let (voted, ticket) = race(
                || {
                    t.vote(
                        asked.session.id,
                        asked.reply(),
                        racing,
                        FeedbackId(Uuid::now_v7()),
                        now(),
                    )
                },
                || t.open_ticket(&request),
            );
            voted.unwrap_or_else(|e| panic!("{} round {round}: {e:?}", t.name()));
            let session = asked.current(&fx, &t);
            match ticket {
                Ok(ticket) => {
                    opened += 1;
                    let votes: Vec<Option<Vote>> =
                        snapshot(&ticket).messages.iter().map(|m| m.vote).collect();
                    assert_eq!(
                        votes,
                        [None, Some(Vote::Down)],
                        "{} round {round}: the ticket saw the DOWN vote",
                        t.name()
                    );
                    assert_eq!(session.ticket_id, Some(ticket.id), "{}", t.name());
                    assert_eq!(t.get_ticket(fx.site.id, ticket.id).expect("stored"), ticket);
                }
                Err(Error::NoDownvote) => {
                    refused += 1;
                    assert_eq!(
                        tickets_of(t.url(), asked.session.id),
                        Vec::<String>::new(),
                        "{} round {round}",
                        t.name()
                    );
                    assert_eq!(session.ticket_id, None, "{} round {round}", t.name());
                }
                Err(other) => panic!("{} round {round}: {other:?}", t.name()),
            }
            let (tickets, emails) = counts(t.url());
            assert_eq!(tickets, emails, "{} round {round}", t.name());
        }
        eprintln!(
            "{}: a vote racing a ticket: {opened} opened, {refused} refused",
            t.name()
        );
    }
}

// ---------------------------------------------------------------------------
// The Tickets tab.

fn list(
    store: &Store,
    site: SiteId,
    status: Option<TicketStatus>,
    limit: u32,
    after: Option<TicketCursor>,
) -> (Vec<SupportTicket>, Option<TicketCursor>) {
    let page = store
        .list_tickets(site, status, &PageRequest { limit, after })
        .expect("lists");
    assert!(page.items.len() <= limit as usize);
    (page.items, page.next)
}

/// Every page of the list, `limit` at a time; calls `between` after each.
fn all_pages(
    store: &Store,
    site: SiteId,
    status: Option<TicketStatus>,
    limit: u32,
    mut between: impl FnMut(),
) -> Vec<SupportTicket> {
    let mut out = Vec::new();
    let mut after = None;
    for _ in 0..10_000 {
        let (items, next) = list(store, site, status, limit, after);
        out.extend(items);
        between();
        match next {
            Some(cursor) => {
                assert_eq!(
                    Some(cursor),
                    out.last().map(TicketCursor::of),
                    "the cursor is the last item's"
                );
                after = Some(cursor);
            }
            None => return out,
        }
    }
    panic!("the list does not end");
}

fn ids(tickets: &[SupportTicket]) -> Vec<TicketId> {
    tickets.iter().map(|t| t.id).collect()
}

/// The list's order: newest first, then by id, descending.
fn newest_first(tickets: &mut [SupportTicket]) {
    tickets.sort_by_key(|k| std::cmp::Reverse((k.created_at, k.id)));
}

#[test]
fn the_tickets_tab_lists_newest_first_with_or_without_a_status() {
    for t in stores() {
        let fx = fixture(&t);
        let asked = downvoted(&t, &fx, "anon-1");
        let base = now();
        // Out of order, with ties on created_at.
        let offsets = [5, 1, 9, 3, 3, 7, 3, 0, 9];
        let mut tickets: Vec<SupportTicket> = offsets
            .iter()
            .map(|s| open_at(&t, &fx, asked.session.id, base + Duration::seconds(*s)))
            .collect();
        let member = MemberId(Uuid::now_v7());
        let statuses = [
            TicketStatus::InProgress,
            TicketStatus::Open,
            TicketStatus::Resolved,
            TicketStatus::Resolved,
            TicketStatus::Open,
            TicketStatus::InProgress,
            TicketStatus::Resolved,
            TicketStatus::Open,
            TicketStatus::Open,
        ];
        for (ticket, status) in tickets.iter_mut().zip(statuses) {
            *ticket = t
                .set_ticket_status(
                    fx.site.id,
                    ticket.id,
                    status,
                    member,
                    &Precondition::None,
                    now(),
                )
                .expect("sets the status");
        }
        // Another site's tickets are not listed.
        let other = fixture(&t);
        let theirs = downvoted(&t, &other, "anon-1");
        open_at(&t, &other, theirs.session.id, base + Duration::seconds(4));

        newest_first(&mut tickets);
        for status in [
            None,
            Some(TicketStatus::Open),
            Some(TicketStatus::InProgress),
            Some(TicketStatus::Resolved),
        ] {
            let expected: Vec<SupportTicket> = tickets
                .iter()
                .filter(|k| status.is_none_or(|s| k.status == s))
                .cloned()
                .collect();
            let (one_page, next) = list(&t, fx.site.id, status, 100, None);
            assert_eq!(one_page, expected, "{}: {status:?}", t.name());
            assert_eq!(next, None);
            for limit in [1, 2, 3] {
                assert_eq!(
                    ids(&all_pages(&t, fx.site.id, status, limit, || {})),
                    ids(&expected),
                    "{}: {status:?} by {limit}",
                    t.name()
                );
            }
        }
        let (theirs_listed, _) = list(&t, other.site.id, None, 100, None);
        assert_eq!(theirs_listed.len(), 1, "{}", t.name());
        let (none, next) = list(&t, SiteId(Uuid::now_v7()), None, 100, None);
        assert!(none.is_empty() && next.is_none(), "{}", t.name());
    }
}

/// Paging through the list while tickets are opened (now, and stamped in
/// the past as a replica with a slow clock would): every ticket that was
/// there before is seen once, in order, and none twice.
#[test]
fn paging_while_tickets_arrive_repeats_and_skips_nothing() {
    for t in stores() {
        let fx = fixture(&t);
        let asked = downvoted(&t, &fx, "anon-1");
        let base = now() - Duration::minutes(10);
        let mut existing: Vec<SupportTicket> = (0..12)
            .map(|i| open_at(&t, &fx, asked.session.id, base + Duration::seconds(i / 2)))
            .collect();
        let member = MemberId(Uuid::now_v7());
        for ticket in existing.iter_mut().step_by(3) {
            *ticket = t
                .set_ticket_status(
                    fx.site.id,
                    ticket.id,
                    TicketStatus::InProgress,
                    member,
                    &Precondition::None,
                    now(),
                )
                .expect("sets the status");
        }
        newest_first(&mut existing);

        let arriving = downvoted(&t, &fx, "anon-2");
        let stop = AtomicBool::new(false);
        let inserted = AtomicUsize::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut i: i64 = 0;
                while !stop.load(Ordering::Relaxed) && i < 400 {
                    let at = if i % 2 == 0 {
                        Utc::now()
                    } else {
                        // Among the existing ones, ties included.
                        base + Duration::milliseconds((i * 377) % 6000)
                    };
                    open_at(&t, &fx, arriving.session.id, at);
                    inserted.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            });
            for (status, limit) in [
                (None, 1),
                (None, 2),
                (Some(TicketStatus::Open), 1),
                (Some(TicketStatus::Open), 2),
            ] {
                let seen = all_pages(&t, fx.site.id, status, limit, || {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                });
                let unique: HashSet<TicketId> = seen.iter().map(|k| k.id).collect();
                assert_eq!(
                    unique.len(),
                    seen.len(),
                    "{}: {status:?} by {limit}: a ticket was listed twice",
                    t.name()
                );
                assert!(
                    seen.windows(2)
                        .all(|w| (w[0].created_at, w[0].id) > (w[1].created_at, w[1].id)),
                    "{}: {status:?} by {limit}: out of order",
                    t.name()
                );
                let old: Vec<TicketId> = seen
                    .iter()
                    .filter(|k| k.session_id == asked.session.id)
                    .map(|k| k.id)
                    .collect();
                let expected: Vec<TicketId> = existing
                    .iter()
                    .filter(|k| status.is_none_or(|s| k.status == s))
                    .map(|k| k.id)
                    .collect();
                assert_eq!(
                    old,
                    expected,
                    "{}: {status:?} by {limit}: the existing tickets",
                    t.name()
                );
            }
            stop.store(true, Ordering::Relaxed);
        });
        eprintln!(
            "{}: {} tickets opened while paging",
            t.name(),
            inserted.load(Ordering::Relaxed)
        );
        assert!(inserted.load(Ordering::Relaxed) > 0);
    }
}

#[test]
fn a_ticket_is_read_and_changed_only_through_its_site() {
    for t in stores() {
        let fx = fixture(&t);
        let asked = downvoted(&t, &fx, "anon-1");
        let ticket = open_at(&t, &fx, asked.session.id, now());
        let sibling = mapped_site(&t, fx.tenant.id, "other.example.com");
        let other = fixture(&t);
        let member = MemberId(Uuid::now_v7());
        for site in [sibling.id, other.site.id, SiteId(Uuid::now_v7())] {
            assert_eq!(
                t.get_ticket(site, ticket.id),
                Err(Error::NotFound(Entity::Ticket)),
                "{}",
                t.name()
            );
            assert_eq!(
                t.set_ticket_status(
                    site,
                    ticket.id,
                    TicketStatus::Resolved,
                    member,
                    &Precondition::None,
                    now(),
                ),
                Err(Error::NotFound(Entity::Ticket)),
                "{}",
                t.name()
            );
        }
        assert_eq!(
            t.get_ticket(fx.site.id, TicketId(Uuid::now_v7())),
            Err(Error::NotFound(Entity::Ticket))
        );
        assert_eq!(
            t.get_ticket(fx.site.id, ticket.id).expect("reads"),
            ticket,
            "{}: unchanged",
            t.name()
        );
    }
}

#[test]
fn status_changes_stamp_resolving_and_clear_leaving_it() {
    for t in stores() {
        let fx = fixture(&t);
        let asked = downvoted(&t, &fx, "anon-1");
        let opened = open_at(&t, &fx, asked.session.id, now());
        let email_before = outbox_row(t.url(), opened.id);
        let (alice, bob, carol) = (
            MemberId(Uuid::now_v7()),
            MemberId(Uuid::now_v7()),
            MemberId(Uuid::now_v7()),
        );
        let set = |status: TicketStatus, by: MemberId, pre: &Precondition, at: DateTime<Utc>| {
            let result = t.set_ticket_status(fx.site.id, opened.id, status, by, pre, at);
            if let Ok(ticket) = &result {
                assert_eq!(
                    &t.get_ticket(fx.site.id, opened.id).expect("reads"),
                    ticket,
                    "{}: what was returned is what is stored",
                    t.name()
                );
            }
            result
        };
        let base = Utc::now();
        let at = |s: i64| base + Duration::seconds(s);
        let none = Precondition::None;

        // (status, by, at, stamped afterwards, changed)
        let steps = [
            (TicketStatus::InProgress, alice, 1, false, true),
            (TicketStatus::Resolved, bob, 2, true, true),
            (TicketStatus::Resolved, carol, 3, true, false),
            (TicketStatus::Open, alice, 4, false, true),
            (TicketStatus::Open, carol, 5, false, false),
            (TicketStatus::Resolved, carol, 6, true, true),
            (TicketStatus::InProgress, alice, 7, false, true),
            (TicketStatus::InProgress, bob, 8, false, false),
            (TicketStatus::Open, bob, 9, false, true),
        ];
        let mut current = opened.clone();
        for (i, (status, by, s, stamped, changed)) in steps.into_iter().enumerate() {
            let ticket = set(status, by, &none, at(s)).expect("sets the status");
            assert_eq!(ticket.status, status, "{}: step {i}", t.name());
            if changed {
                assert_eq!(ticket.updated_at, stored(at(s)), "{}: step {i}", t.name());
                let (resolved_at, resolved_by) = if stamped {
                    (Some(stored(at(s))), Some(by))
                } else {
                    (None, None)
                };
                assert_eq!(
                    SupportTicket {
                        status,
                        updated_at: stored(at(s)),
                        resolved_at,
                        resolved_by,
                        ..current.clone()
                    },
                    ticket,
                    "{}: step {i}",
                    t.name()
                );
            } else {
                assert_eq!(
                    ticket,
                    current,
                    "{}: step {i}: the same status changes nothing, not even updated_at",
                    t.name()
                );
            }
            assert_eq!(
                ticket.resolved_at.is_some() && ticket.resolved_by.is_some(),
                stamped,
                "{}: step {i}",
                t.name()
            );
            current = ticket;
        }

        // Preconditions: the current tag (or any list naming it) passes, a
        // stale one or none fails and changes nothing.
        let stale = opened.entity_tag();
        let tag = current.entity_tag();
        assert_ne!(stale, tag);
        for pre in [
            Precondition::TagIn(vec![stale.clone()]),
            Precondition::TagIn(vec![]),
            Precondition::TagIn(vec!["*".into()]),
        ] {
            for status in [
                TicketStatus::Resolved,
                TicketStatus::InProgress,
                TicketStatus::Open,
            ] {
                assert_eq!(
                    set(status, bob, &pre, at(20)),
                    Err(Error::PreconditionFailed(Entity::Ticket)),
                    "{}: {pre:?} {status}",
                    t.name()
                );
                assert_eq!(
                    t.get_ticket(fx.site.id, opened.id).expect("reads"),
                    current,
                    "{}: {pre:?}: nothing changed",
                    t.name()
                );
            }
        }
        let resolved = set(
            TicketStatus::Resolved,
            bob,
            &Precondition::TagIn(vec![stale, tag.clone()]),
            at(21),
        )
        .expect("the current tag passes");
        assert_eq!(
            (resolved.resolved_at, resolved.resolved_by),
            (Some(stored(at(21))), Some(bob))
        );
        assert_eq!(
            set(
                TicketStatus::Open,
                bob,
                &Precondition::TagIn(vec![tag]),
                at(22)
            ),
            Err(Error::PreconditionFailed(Entity::Ticket)),
            "{}: the tag read before the change is stale now",
            t.name()
        );
        set(TicketStatus::Open, alice, &Precondition::Exists, at(23)).expect("exists passes");

        // Status changes leave the email alone.
        assert_eq!(outbox_row(t.url(), opened.id), email_before, "{}", t.name());
    }
}
