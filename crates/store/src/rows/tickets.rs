//! Rows of the support tickets and their email's outbox.

use chatdesk_domain::ticket::{Delivery, SupportTicket};
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{from_db_time, read_email, read_enum, read_id, read_u32};
use crate::error::StoreError;
use crate::schema::{email_outbox, support_tickets};

/// A ticket as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = support_tickets)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct TicketRow {
    pub id: String,
    pub tenant_id: String,
    pub site_id: String,
    pub session_id: String,
    pub email: String,
    pub subject: String,
    pub body: String,
    pub conversation: String,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub resolved_at: Option<NaiveDateTime>,
    pub resolved_by: Option<String>,
}

/// The delivery columns of a ticket's outbox row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = email_outbox)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct DeliveryRow {
    pub status: String,
    pub recipient: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
}

impl DeliveryRow {
    pub(crate) fn into_domain(self) -> Result<Delivery, StoreError> {
        const T: &str = "email_outbox";
        Ok(Delivery {
            status: read_enum(T, "status", &self.status)?,
            recipient: self
                .recipient
                .as_deref()
                .map(|r| read_email(T, "recipient", r))
                .transpose()?,
            attempts: read_u32(T, "attempts", self.attempts)?,
            last_error: self.last_error,
        })
    }
}

impl TicketRow {
    pub(crate) fn into_domain(self, delivery: DeliveryRow) -> Result<SupportTicket, StoreError> {
        const T: &str = "support_tickets";
        let conversation =
            serde_json::from_str(&self.conversation).map_err(|e| StoreError::InvalidValue {
                table: T,
                column: "conversation",
                message: format!("is not JSON: {e}"),
            })?;
        Ok(SupportTicket {
            id: read_id(T, "id", &self.id)?,
            tenant_id: read_id(T, "tenant_id", &self.tenant_id)?,
            site_id: read_id(T, "site_id", &self.site_id)?,
            session_id: read_id(T, "session_id", &self.session_id)?,
            email: read_email(T, "email", &self.email)?,
            subject: self.subject,
            body: self.body,
            conversation,
            status: read_enum(T, "status", &self.status)?,
            created_at: from_db_time(self.created_at),
            updated_at: from_db_time(self.updated_at),
            resolved_at: self.resolved_at.map(from_db_time),
            resolved_by: self
                .resolved_by
                .as_deref()
                .map(|m| read_id(T, "resolved_by", m))
                .transpose()?,
            delivery: delivery.into_domain()?,
        })
    }
}
