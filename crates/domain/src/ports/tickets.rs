//! The store's side of the Tickets tab: a site's tickets with their
//! email's delivery state, and status changes.

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::ids::{MemberId, SiteId, TicketId};
use crate::ports::{Page, PageRequest};
use crate::ticket::{SupportTicket, TicketCursor, TicketStatus};
use crate::version::Precondition;

#[cfg(feature = "testing")]
use mockall::automock;

/// Reads and works tickets for the dashboard.
#[cfg_attr(feature = "testing", automock)]
pub trait TicketRepository: Send + Sync {
    /// A page of the site's tickets, newest first (then by id, descending),
    /// with `status` or any, after the cursor; each with its delivery.
    fn list_tickets(
        &self,
        site: SiteId,
        status: Option<TicketStatus>,
        page: &PageRequest<TicketCursor>,
    ) -> Result<Page<SupportTicket, TicketCursor>, Error>;

    /// The ticket `id` of `site` with its delivery; [`Error::NotFound`] for
    /// a ticket of another site (or none).
    fn get_ticket(&self, site: SiteId, id: TicketId) -> Result<SupportTicket, Error>;

    /// Sets the ticket's status, in one transaction: the ticket is read
    /// under a row lock, `precondition` is checked against its entity tag,
    /// [`SupportTicket::set_status`] decides the stamps, and only the
    /// status, its stamps and `updated_at` are written, by an update
    /// conditional on the status and `updated_at` read. Setting the status
    /// the ticket has changes nothing.
    fn set_ticket_status(
        &self,
        site: SiteId,
        id: TicketId,
        status: TicketStatus,
        by: MemberId,
        precondition: &Precondition,
        now: DateTime<Utc>,
    ) -> Result<SupportTicket, Error>;
}
