//! Rows of the widget SDK's tables: chat sessions and their messages.

use chatdesk_domain::conversation::{ChatMessage, ChatSession, ContentRef, EndUser};
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{from_db_time, read_enum, read_id, read_u32, to_db_time, write_i32};
use crate::error::StoreError;
use crate::schema::{chat_messages, chat_sessions, end_users};

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = chat_sessions)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct SessionRow {
    pub id: String,
    pub site_id: String,
    pub widget_id: String,
    pub end_user_id: String,
    pub started_at: NaiveDateTime,
    pub last_active_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
    pub message_count: i32,
    pub question_count: i32,
    pub up_votes: i32,
    pub down_votes: i32,
    pub ticket_id: Option<String>,
    pub preview: Option<String>,
}

impl SessionRow {
    pub(crate) fn into_domain(self) -> Result<ChatSession, StoreError> {
        const T: &str = "chat_sessions";
        Ok(ChatSession {
            id: read_id(T, "id", &self.id)?,
            site_id: read_id(T, "site_id", &self.site_id)?,
            widget_id: read_id(T, "widget_id", &self.widget_id)?,
            end_user_id: read_id(T, "end_user_id", &self.end_user_id)?,
            started_at: from_db_time(self.started_at),
            last_active_at: from_db_time(self.last_active_at),
            ended_at: self.ended_at.map(from_db_time),
            message_count: read_u32(T, "message_count", self.message_count)?,
            question_count: read_u32(T, "question_count", self.question_count)?,
            up_votes: read_u32(T, "up_votes", self.up_votes)?,
            down_votes: read_u32(T, "down_votes", self.down_votes)?,
            ticket_id: self
                .ticket_id
                .as_deref()
                .map(|id| read_id(T, "ticket_id", id))
                .transpose()?,
            preview: self.preview,
        })
    }
}

/// A visitor.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = end_users)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct EndUserRow {
    pub id: String,
    pub site_id: String,
    pub anonymous_id: String,
    pub external_id: Option<String>,
    pub traits: String,
    pub verified: bool,
    pub first_seen_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
}

impl EndUserRow {
    pub(crate) fn into_domain(self) -> Result<EndUser, StoreError> {
        const T: &str = "end_users";
        let traits = match serde_json::from_str::<serde_json::Value>(&self.traits) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => {
                return Err(StoreError::InvalidValue {
                    table: T,
                    column: "traits",
                    message: "is not a JSON object".into(),
                })
            }
        };
        Ok(EndUser {
            id: read_id(T, "id", &self.id)?,
            site_id: read_id(T, "site_id", &self.site_id)?,
            anonymous_id: self.anonymous_id,
            external_id: self.external_id,
            traits,
            verified: self.verified,
            first_seen_at: from_db_time(self.first_seen_at),
            last_seen_at: from_db_time(self.last_seen_at),
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = chat_messages)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct MessageRow {
    pub id: String,
    pub site_id: String,
    pub session_id: String,
    pub role: String,
    pub status: String,
    pub content: String,
    pub content_kind: Option<String>,
    pub content_id: Option<String>,
    pub content_name: Option<String>,
    pub model: Option<String>,
    pub tokens_used: Option<i32>,
    pub created_at: NaiveDateTime,
}

/// The columns of `chat_messages` that finishing a reply writes: its
/// status, text, content link, model and tokens (`None` writes NULL).
#[derive(Debug, AsChangeset)]
#[diesel(table_name = chat_messages, treat_none_as_null = true)]
pub(crate) struct ReplyChangeset {
    pub status: String,
    pub content: String,
    pub content_kind: Option<String>,
    pub content_id: Option<String>,
    pub content_name: Option<String>,
    pub model: Option<String>,
    pub tokens_used: Option<i32>,
}

impl From<&MessageRow> for ReplyChangeset {
    fn from(row: &MessageRow) -> Self {
        ReplyChangeset {
            status: row.status.clone(),
            content: row.content.clone(),
            content_kind: row.content_kind.clone(),
            content_id: row.content_id.clone(),
            content_name: row.content_name.clone(),
            model: row.model.clone(),
            tokens_used: row.tokens_used,
        }
    }
}

impl MessageRow {
    pub(crate) fn from_domain(message: &ChatMessage) -> Result<Self, StoreError> {
        let content_ref = message.content_ref.as_ref();
        Ok(MessageRow {
            id: message.id.to_string(),
            site_id: message.site_id.to_string(),
            session_id: message.session_id.to_string(),
            role: message.role.as_str().to_string(),
            status: message.status.as_str().to_string(),
            content: message.content.clone(),
            content_kind: content_ref.map(|r| r.kind.as_str().to_string()),
            content_id: content_ref.map(|r| r.id.to_string()),
            content_name: content_ref.map(|r| r.name.clone()),
            model: message.model.clone(),
            tokens_used: message
                .tokens_used
                .map(|t| write_i32("chat_messages.tokens_used", t))
                .transpose()?,
            created_at: to_db_time(message.created_at),
        })
    }

    pub(crate) fn into_domain(self) -> Result<ChatMessage, StoreError> {
        const T: &str = "chat_messages";
        let content_ref = match (self.content_kind, self.content_id, self.content_name) {
            (Some(kind), Some(id), Some(name)) => Some(ContentRef {
                kind: read_enum(T, "content_kind", &kind)?,
                id: read_id(T, "content_id", &id)?,
                name,
            }),
            (None, None, None) => None,
            _ => {
                return Err(StoreError::InvalidValue {
                    table: T,
                    column: "content_kind",
                    message: "content_kind, content_id and content_name must be set together"
                        .into(),
                })
            }
        };
        Ok(ChatMessage {
            id: read_id(T, "id", &self.id)?,
            session_id: read_id(T, "session_id", &self.session_id)?,
            site_id: read_id(T, "site_id", &self.site_id)?,
            role: read_enum(T, "role", &self.role)?,
            status: read_enum(T, "status", &self.status)?,
            content: self.content,
            content_ref,
            model: self.model,
            tokens_used: self
                .tokens_used
                .map(|t| read_u32(T, "tokens_used", t))
                .transpose()?,
            created_at: from_db_time(self.created_at),
        })
    }
}

/// A visitor's traits as stored: a compact JSON object.
pub(crate) fn traits_json(
    traits: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, StoreError> {
    super::write_json("end_users.traits", serde_json::to_string(traits))
}
