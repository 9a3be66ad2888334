//! A visitor's support ticket: the ticket, the session's escalation and
//! the email's outbox row, in one transaction.

use chatdesk_domain::conversation::TimelineEntry;
use chatdesk_domain::email::Email;
use chatdesk_domain::ports::OpenTicket;
use chatdesk_domain::tenant::Role;
use chatdesk_domain::ticket::{
    check_ticket_allowed, reply_address, resolve_recipient, ConversationSnapshot, Delivery,
    DeliveryStatus, SupportTicket, TicketStatus,
};
use chatdesk_domain::{Entity, Error};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};

use super::{check_key, lock_session, read_vote};
use crate::connection::DbConnection;
use crate::repo::{convert, Failure};
use crate::rows::{from_db_time, read_id, to_db_time, EndUserRow, MessageRow};
use crate::schema::{
    chat_feedback, chat_messages, chat_sessions, chat_widgets, email_outbox, end_users,
    support_tickets, tenant_members,
};

/// [`chatdesk_domain::ports::VisitorRepository::open_ticket`], inside its
/// write transaction.
pub(super) fn open_ticket(
    conn: &mut DbConnection,
    request: &OpenTicket,
) -> Result<SupportTicket, Failure> {
    let session_id = request.session_id.to_string();
    // The session's row lock holds off a vote that would change what the
    // ticket checks and snapshots, and a second ticket's escalation.
    let session = lock_session(conn, &session_id)?.ok_or(Error::NotFound(Entity::Session))?;
    let tenant = check_key(conn, &session.site_id, &request.key)?;
    let session = session.into_domain()?;
    check_ticket_allowed(&session)?;

    let visitor: EndUserRow = end_users::table
        .find(session.end_user_id.to_string())
        .select(EndUserRow::as_select())
        .first(conn)?;
    let visitor = visitor.into_domain()?;
    let email = reply_address(request.text.email.as_ref(), &visitor)?;
    let snapshot = ConversationSnapshot::new(&session, &visitor, &timeline(conn, &session_id)?);
    let conversation = serde_json::to_value(&snapshot).map_err(|e| {
        Failure::Domain(Error::Internal(format!(
            "the conversation snapshot did not serialise: {e}"
        )))
    })?;

    let site = session.site_id.to_string();
    let support_email: Option<String> = chat_widgets::table
        .filter(chat_widgets::site_id.eq(&site))
        .select(chat_widgets::support_email)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten();
    let owner: Option<String> = tenant_members::table
        .filter(tenant_members::tenant_id.eq(&tenant))
        .filter(tenant_members::role.eq(Role::Owner.as_str()))
        .order((tenant_members::created_at.asc(), tenant_members::id.asc()))
        .select(tenant_members::email)
        .first(conn)
        .optional()?;
    let recipient = resolve_recipient(
        stored_email(support_email.as_deref()).as_ref(),
        stored_email(owner.as_deref()).as_ref(),
    );

    let now = to_db_time(request.now);
    let ticket_id = request.ticket_id.to_string();
    diesel::insert_into(support_tickets::table)
        .values((
            support_tickets::id.eq(&ticket_id),
            support_tickets::tenant_id.eq(&tenant),
            support_tickets::site_id.eq(&site),
            support_tickets::session_id.eq(&session_id),
            support_tickets::email.eq(email.as_str()),
            support_tickets::subject.eq(&request.text.subject),
            support_tickets::body.eq(&request.text.body),
            support_tickets::conversation.eq(conversation.to_string()),
            support_tickets::status.eq(TicketStatus::Open.as_str()),
            support_tickets::created_at.eq(now),
            support_tickets::updated_at.eq(now),
        ))
        .execute(conn)?;
    // Escalated: the session points at its first ticket.
    diesel::update(chat_sessions::table.find(&session_id))
        .set(
            chat_sessions::ticket_id.eq(sql::<Nullable<Text>>("COALESCE(ticket_id, ")
                .bind::<Text, _>(&ticket_id)
                .sql(")")),
        )
        .execute(conn)?;
    let status = match recipient.email() {
        Some(_) => DeliveryStatus::Pending,
        None => DeliveryStatus::NoRecipient,
    };
    diesel::insert_into(email_outbox::table)
        .values((
            email_outbox::id.eq(request.delivery_id.to_string()),
            email_outbox::ticket_id.eq(&ticket_id),
            email_outbox::site_id.eq(&site),
            email_outbox::tenant_id.eq(&tenant),
            email_outbox::status.eq(status.as_str()),
            email_outbox::recipient.eq(recipient.email().map(Email::as_str)),
            email_outbox::message_id.eq(&request.message_id),
            email_outbox::attempts.eq(0),
            email_outbox::next_attempt_at.eq((status == DeliveryStatus::Pending).then_some(now)),
            email_outbox::created_at.eq(now),
            email_outbox::updated_at.eq(now),
        ))
        .execute(conn)?;

    Ok(SupportTicket {
        id: request.ticket_id,
        tenant_id: read_id("sites", "tenant_id", &tenant)?,
        site_id: session.site_id,
        session_id: session.id,
        email,
        subject: request.text.subject.clone(),
        body: request.text.body.clone(),
        conversation,
        status: TicketStatus::Open,
        created_at: from_db_time(now),
        updated_at: from_db_time(now),
        resolved_at: None,
        resolved_by: None,
        delivery: Delivery {
            status,
            recipient: recipient.email().cloned(),
            attempts: 0,
            last_error: None,
        },
    })
}

/// A stored address, if it is one (a stored value that no longer parses
/// is treated as absent, so the next rule applies).
fn stored_email(value: Option<&str>) -> Option<Email> {
    value.and_then(|v| Email::parse(v).ok())
}

/// The session's whole timeline, oldest first, with the votes.
fn timeline(conn: &mut DbConnection, session: &str) -> Result<Vec<TimelineEntry>, Failure> {
    let rows: Vec<(MessageRow, Option<String>)> = chat_messages::table
        .left_join(chat_feedback::table)
        .filter(chat_messages::session_id.eq(session))
        .select((MessageRow::as_select(), chat_feedback::vote.nullable()))
        .order(chat_messages::id.asc())
        .load(conn)?;
    Ok(convert(rows, |(message, vote)| {
        Ok(TimelineEntry {
            message: message.into_domain()?,
            vote: vote.as_deref().map(read_vote).transpose()?,
        })
    })?)
}
