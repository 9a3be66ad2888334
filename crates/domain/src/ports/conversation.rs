//! The store's side of the Conversations tab: a site's sessions, filtered
//! and paged, and one session's detail, whose timeline is read in chunks
//! so a long conversation never has to be held whole.

use crate::conversation::{
    ConversationCursor, ConversationHead, ConversationQuery, ConversationSummary, TimelineEntry,
};
use crate::error::Error;
use crate::ids::{MessageId, SessionId, SiteId};
use crate::ports::{Page, PageRequest};

#[cfg(feature = "testing")]
use mockall::automock;

/// Reads conversations for the dashboard.
#[cfg_attr(feature = "testing", automock)]
pub trait ConversationRepository: Send + Sync {
    /// A page of the site's sessions matching `query`, newest
    /// `last_active_at` first (then by id, descending), after the cursor.
    /// One query over one index; see the store for which.
    fn list_conversations(
        &self,
        site: SiteId,
        query: &ConversationQuery,
        page: &PageRequest<ConversationCursor>,
    ) -> Result<Page<ConversationSummary, ConversationCursor>, Error>;

    /// The session `id` of `site` with its visitor, its ticket link and
    /// its newest message; [`Error::NotFound`] for a session of another
    /// site (or none).
    fn conversation_head(&self, site: SiteId, id: SessionId) -> Result<ConversationHead, Error>;

    /// Up to `limit` messages of the session, oldest first, after
    /// `after` and up to `last` (inclusive), each with its vote.
    fn timeline_chunk(
        &self,
        site: SiteId,
        session: SessionId,
        after: Option<MessageId>,
        last: MessageId,
        limit: u32,
    ) -> Result<Vec<TimelineEntry>, Error>;
}
