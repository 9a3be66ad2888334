//! The Tickets tab: a site's tickets with their email's delivery state,
//! newest first, and their status changes.

use chatdesk_domain::ids::{MemberId, SiteId, TicketId};
use chatdesk_domain::ports::{Page, PageRequest, TicketRepository};
use chatdesk_domain::ticket::{SupportTicket, TicketCursor, TicketStatus};
use chatdesk_domain::version::Precondition;
use chatdesk_domain::{Entity, Error};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::{convert, overfetch, Failure};
use crate::connection::{write_transaction, DbConnection};
use crate::rows::{as_stored, to_db_time, DeliveryRow, TicketRow};
use crate::schema::{email_outbox, support_tickets};
use crate::{Store, StoreError};

/// Reads a ticket with its delivery, locking the ticket's row (and its
/// outbox row: the delivery worker skips it meanwhile) on PostgreSQL
/// (`FOR NO KEY UPDATE`, as [`crate::repo::lock_tenant`]) when `lock`, so
/// concurrent status changes are serialised.
fn read_ticket(
    conn: &mut DbConnection,
    site: &str,
    id: &str,
    lock: bool,
) -> Result<SupportTicket, Failure> {
    let query = support_tickets::table
        .inner_join(email_outbox::table)
        .filter(support_tickets::id.eq(id.to_string()))
        .filter(support_tickets::site_id.eq(site.to_string()));
    // `as_select()` is generic over the backend, so each arm builds its own.
    let row: Option<(TicketRow, DeliveryRow)> = match conn {
        DbConnection::Pg(pg) if lock => query
            .select((TicketRow::as_select(), DeliveryRow::as_select()))
            .for_no_key_update()
            .first(pg)
            .optional()?,
        _ => query
            .select((TicketRow::as_select(), DeliveryRow::as_select()))
            .first(conn)
            .optional()?,
    };
    let (ticket, delivery) = row.ok_or(Error::NotFound(Entity::Ticket))?;
    Ok(ticket.into_domain(delivery)?)
}

impl TicketRepository for Store {
    fn list_tickets(
        &self,
        site: SiteId,
        status: Option<TicketStatus>,
        page: &PageRequest<TicketCursor>,
    ) -> Result<Page<SupportTicket, TicketCursor>, Error> {
        let mut conn = self.conn()?;
        let mut query = support_tickets::table
            .inner_join(email_outbox::table)
            .filter(support_tickets::site_id.eq(site.to_string()))
            .select((TicketRow::as_select(), DeliveryRow::as_select()))
            .order((
                support_tickets::created_at.desc(),
                support_tickets::id.desc(),
            ))
            .limit(overfetch(page.limit))
            .into_boxed();
        if let Some(status) = status {
            query = query.filter(support_tickets::status.eq(status.as_str()));
        }
        if let Some(after) = &page.after {
            let at = to_db_time(after.created_at);
            query = query.filter(
                support_tickets::created_at.le(at).and(
                    support_tickets::created_at
                        .lt(at)
                        .or(support_tickets::id.lt(after.id.to_string())),
                ),
            );
        }
        let rows: Vec<(TicketRow, DeliveryRow)> =
            query.load(&mut *conn).map_err(StoreError::Query)?;
        let tickets = convert(rows, |(ticket, delivery)| ticket.into_domain(delivery))?;
        Ok(Page::from_overfetch(tickets, page.limit, TicketCursor::of))
    }

    fn get_ticket(&self, site: SiteId, id: TicketId) -> Result<SupportTicket, Error> {
        let mut conn = self.conn()?;
        Ok(read_ticket(
            &mut conn,
            &site.to_string(),
            &id.to_string(),
            false,
        )?)
    }

    fn set_ticket_status(
        &self,
        site: SiteId,
        id: TicketId,
        status: TicketStatus,
        by: MemberId,
        precondition: &Precondition,
        now: DateTime<Utc>,
    ) -> Result<SupportTicket, Error> {
        let now = as_stored(now);
        let (site, id) = (site.to_string(), id.to_string());
        let mut conn = self.conn()?;
        Ok(write_transaction(&mut conn, |conn| {
            let mut ticket = read_ticket(conn, &site, &id, true)?;
            precondition.check(&ticket.entity_tag(), Entity::Ticket)?;
            let (read_status, read_at) = (ticket.status, ticket.updated_at);
            if ticket.set_status(status, by, now) {
                let updated = diesel::update(
                    support_tickets::table
                        .find(&id)
                        .filter(support_tickets::status.eq(read_status.as_str()))
                        .filter(support_tickets::updated_at.eq(to_db_time(read_at))),
                )
                .set((
                    support_tickets::status.eq(ticket.status.as_str()),
                    support_tickets::updated_at.eq(to_db_time(ticket.updated_at)),
                    support_tickets::resolved_at.eq(ticket.resolved_at.map(to_db_time)),
                    support_tickets::resolved_by.eq(ticket.resolved_by.map(|m| m.to_string())),
                ))
                .execute(conn)?;
                if updated != 1 {
                    // The row is locked (SQLite: one writer), so it cannot
                    // have moved since it was read.
                    return Err(Failure::Domain(Error::PreconditionFailed(Entity::Ticket)));
                }
            }
            Ok::<_, Failure>(ticket)
        })?)
    }
}
