//! The Conversations tab: a site's sessions with their filters, and one
//! session's detail (the timeline, the visitor's identity card, the
//! ticket link), which the export downloads whole.

use std::sync::Arc;

use crate::conversation::{
    ConversationCursor, ConversationFilter, ConversationHead, ConversationSummary, TimelineEntry,
};
use crate::error::Error;
use crate::ids::{MessageId, SessionId, SiteId};
use crate::ports::{ConversationRepository, Page, PageRequest, SiteRepository};
use crate::tenant::{Action, Actor};

/// How many messages one read of a timeline returns: a detail or export is
/// written out chunk by chunk, so its memory does not grow with the
/// conversation.
pub const TIMELINE_CHUNK: u32 = 500;

/// The Conversations tab's reads.
#[derive(Clone)]
pub struct ConversationService {
    sites: Arc<dyn SiteRepository>,
    conversations: Arc<dyn ConversationRepository>,
}

impl ConversationService {
    /// The service over its ports.
    pub fn new(
        sites: Arc<dyn SiteRepository>,
        conversations: Arc<dyn ConversationRepository>,
    ) -> Self {
        ConversationService {
            sites,
            conversations,
        }
    }

    /// A page of the site's sessions that pass `filter`, newest activity
    /// first. Filters that contradict each other match nothing: the page is
    /// empty and the store is not asked.
    pub fn list(
        &self,
        actor: &Actor,
        site: SiteId,
        filter: &ConversationFilter,
        page: &PageRequest<ConversationCursor>,
    ) -> Result<Page<ConversationSummary, ConversationCursor>, Error> {
        actor.authorize(Action::Read)?;
        let site = self.sites.get_site(actor.tenant_id(), site)?;
        match filter.query() {
            Some(query) => self.conversations.list_conversations(site.id, &query, page),
            None => Ok(Page {
                items: Vec::new(),
                next: None,
            }),
        }
    }

    /// The head of one session's detail; its timeline follows through
    /// [`ConversationService::timeline`].
    pub fn open(
        &self,
        actor: &Actor,
        site: SiteId,
        session: SessionId,
    ) -> Result<ConversationHead, Error> {
        actor.authorize(Action::Read)?;
        let site = self.sites.get_site(actor.tenant_id(), site)?;
        self.conversations.conversation_head(site.id, session)
    }

    /// The next chunk of an opened conversation's timeline, oldest first,
    /// after `after` (the last message of the previous chunk): up to
    /// [`TIMELINE_CHUNK`] messages, none newer than the head's last
    /// message. Empty when the timeline is complete.
    pub fn timeline(
        &self,
        head: &ConversationHead,
        after: Option<MessageId>,
    ) -> Result<Vec<TimelineEntry>, Error> {
        let Some(last) = head.last_message else {
            return Ok(Vec::new());
        };
        if after.is_some_and(|after| after >= last) {
            return Ok(Vec::new());
        }
        self.conversations.timeline_chunk(
            head.session.site_id,
            head.session.id,
            after,
            last,
            TIMELINE_CHUNK,
        )
    }
}
