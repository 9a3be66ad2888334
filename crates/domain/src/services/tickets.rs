//! The Tickets tab: a site's support tickets and their status.

use std::sync::Arc;

use crate::error::Error;
use crate::ids::{SiteId, TicketId};
use crate::ports::{Clock, Page, PageRequest, SiteRepository, TicketRepository};
use crate::tenant::{Action, Actor};
use crate::ticket::{SupportTicket, TicketCursor, TicketStatus};
use crate::version::Precondition;

/// The Tickets tab's use cases.
#[derive(Clone)]
pub struct TicketService {
    clock: Arc<dyn Clock>,
    sites: Arc<dyn SiteRepository>,
    tickets: Arc<dyn TicketRepository>,
}

impl TicketService {
    /// The service over its ports.
    pub fn new(
        clock: Arc<dyn Clock>,
        sites: Arc<dyn SiteRepository>,
        tickets: Arc<dyn TicketRepository>,
    ) -> Self {
        TicketService {
            clock,
            sites,
            tickets,
        }
    }

    /// A page of the site's tickets, newest first, with `status` or any.
    pub fn list(
        &self,
        actor: &Actor,
        site: SiteId,
        status: Option<TicketStatus>,
        page: &PageRequest<TicketCursor>,
    ) -> Result<Page<SupportTicket, TicketCursor>, Error> {
        actor.authorize(Action::Read)?;
        let site = self.sites.get_site(actor.tenant_id(), site)?;
        self.tickets.list_tickets(site.id, status, page)
    }

    /// One ticket with its email's delivery state.
    pub fn get(&self, actor: &Actor, site: SiteId, id: TicketId) -> Result<SupportTicket, Error> {
        actor.authorize(Action::Read)?;
        let site = self.sites.get_site(actor.tenant_id(), site)?;
        self.tickets.get_ticket(site.id, id)
    }

    /// Sets a ticket's status (any role): any status may follow any
    /// other; resolving stamps who and when, leaving RESOLVED clears them,
    /// and setting the current status changes nothing. The visitor is not
    /// emailed.
    pub fn set_status(
        &self,
        actor: &Actor,
        site: SiteId,
        id: TicketId,
        status: &str,
        precondition: &Precondition,
    ) -> Result<SupportTicket, Error> {
        let status: TicketStatus = status.parse().map_err(|m| Error::invalid("status", m))?;
        let site = self.sites.get_site(actor.tenant_id(), site)?;
        actor.authorize(Action::ChangeTicketStatus)?;
        self.tickets.set_ticket_status(
            site.id,
            id,
            status,
            actor.member.id,
            precondition,
            self.clock.now(),
        )
    }
}
