//! Conversations: visitors (end users), chat sessions, messages, feedback
//! votes, and the Conversations tab's filters.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::closed_enum::closed_enum;
use crate::content::ContentKind;
use crate::error::{Error, Validator};
use crate::ids::{
    ContentId, EndUserId, FeedbackId, MessageId, SessionId, SiteId, TicketId, WidgetId,
};

/// A visitor of a site: anonymous until the site identifies them.
#[derive(Debug, Clone, PartialEq)]
pub struct EndUser {
    /// Its id.
    pub id: EndUserId,
    /// Its site.
    pub site_id: SiteId,
    /// The id the widget made up.
    pub anonymous_id: String,
    /// The site's own id for the visitor, once identified.
    pub external_id: Option<String>,
    /// Free-form traits (email, plan, …).
    pub traits: Map<String, Value>,
    /// Whether `external_id` was signed with the site's identity secret.
    pub verified: bool,
    /// First request.
    pub first_seen_at: DateTime<Utc>,
    /// Latest request.
    pub last_seen_at: DateTime<Utc>,
}

impl EndUser {
    /// The `email` trait, when it holds a string.
    pub fn email_trait(&self) -> Option<&str> {
        self.traits.get("email").and_then(Value::as_str)
    }
}

/// Checks an anonymous or external id: 1–200 characters, no control characters.
pub fn parse_visitor_id(raw: &str) -> Result<String, String> {
    let value = crate::text::bounded(raw, 1, 200)?;
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(value)
}

/// A conversation of one visitor with one widget, with the counters the
/// Conversations list filters on kept beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSession {
    /// Its id.
    pub id: SessionId,
    /// Its site.
    pub site_id: SiteId,
    /// Its widget.
    pub widget_id: WidgetId,
    /// Its visitor.
    pub end_user_id: EndUserId,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Latest message or vote.
    pub last_active_at: DateTime<Utc>,
    /// When it stopped being the visitor's current session (it idled
    /// out); `None` while it is current.
    pub ended_at: Option<DateTime<Utc>>,
    /// Messages of every role.
    pub message_count: u32,
    /// Questions the visitor asked (for the rate limit).
    pub question_count: u32,
    /// UP votes on its assistant messages.
    pub up_votes: u32,
    /// DOWN votes on its assistant messages.
    pub down_votes: u32,
    /// The ticket opened from it, if any.
    pub ticket_id: Option<TicketId>,
    /// The start of its first question, for the list.
    pub preview: Option<String>,
}

impl ChatSession {
    /// Whether a support ticket was opened from it.
    pub fn escalated(&self) -> bool {
        self.ticket_id.is_some()
    }

    /// Whether the visitor may ask one more question under `limit`.
    pub fn may_ask(&self, limit: u32) -> bool {
        self.question_count < limit
    }

    /// Whether the session is still the visitor's current one at `now`:
    /// not ended, active within [`SESSION_IDLE_TIMEOUT`], and started
    /// within [`SESSION_MAX_DURATION`]. Only a current session takes
    /// questions and moves its `last_active_at`, so a session is never
    /// active for longer than [`SESSION_MAX_DURATION`].
    ///
    /// [`SESSION_IDLE_TIMEOUT`]: crate::visitor::SESSION_IDLE_TIMEOUT
    /// [`SESSION_MAX_DURATION`]: crate::visitor::SESSION_MAX_DURATION
    pub fn is_current(&self, now: DateTime<Utc>) -> bool {
        self.ended_at.is_none()
            && self.last_active_at >= now - crate::visitor::SESSION_IDLE_TIMEOUT
            && self.started_at >= now - crate::visitor::SESSION_MAX_DURATION
    }

    /// Records a visitor's vote change on one of its messages: `old` is the
    /// message's previous vote, if any. The vote counts in any case; it
    /// makes the session active at `now` only while the session is current
    /// (a late vote on an ended conversation does not reopen it).
    pub fn record_vote(&mut self, old: Option<Vote>, new: Vote, now: DateTime<Utc>) {
        let (up, down) = vote_counts_after(self.up_votes, self.down_votes, old, new);
        self.up_votes = up;
        self.down_votes = down;
        if self.is_current(now) {
            self.last_active_at = self.last_active_at.max(now);
        }
    }
}

/// How many characters of the first question the list shows.
pub const PREVIEW_CHARS: usize = 120;

/// The list preview of a question.
pub fn preview_of(question: &str) -> String {
    question.trim().chars().take(PREVIEW_CHARS).collect()
}

/// The up/down counters after a message's vote goes from `old` to `new`
/// (one vote per message; voting again replaces it).
pub fn vote_counts_after(up: u32, down: u32, old: Option<Vote>, new: Vote) -> (u32, u32) {
    let (mut up, mut down) = (up, down);
    match old {
        Some(Vote::Up) => up = up.saturating_sub(1),
        Some(Vote::Down) => down = down.saturating_sub(1),
        None => {}
    }
    match new {
        Vote::Up => up += 1,
        Vote::Down => down += 1,
    }
    (up, down)
}

closed_enum!(
    /// Who wrote a message.
    MessageRole {
        /// The visitor.
        User => "USER",
        /// chatdesk's assistant.
        Assistant => "ASSISTANT",
        /// chatdesk itself (notices).
        System => "SYSTEM",
    }
);

closed_enum!(
    /// Where a message is in its life, or how it failed.
    MessageStatus {
        /// The question is being looked at.
        Analyzing => "ANALYZING",
        /// Answered with an existing Flow or Tooltip.
        MatchedContent => "MATCHED_CONTENT",
        /// Answered with a newly generated Flow.
        GeneratedContent => "GENERATED_CONTENT",
        /// The visitor is being walked through content.
        Navigating => "NAVIGATING",
        /// Done.
        Completed => "COMPLETED",
        /// Answering failed.
        Failed => "FAILED",
        /// The session's question limit was reached.
        RateLimited => "RATE_LIMITED",
        /// The tenant is out of credits.
        InsufficientCredits => "INSUFFICIENT_CREDITS",
    }
);

impl MessageStatus {
    /// Whether the status is one of the error statuses.
    pub fn is_error(self) -> bool {
        matches!(
            self,
            MessageStatus::Failed | MessageStatus::RateLimited | MessageStatus::InsufficientCredits
        )
    }

    /// Whether a message with this status points at a Flow or Tooltip.
    pub fn references_content(self) -> bool {
        matches!(
            self,
            MessageStatus::MatchedContent | MessageStatus::GeneratedContent
        )
    }
}

/// A link from a message to the content it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentRef {
    /// Flow or Tooltip.
    pub kind: ContentKind,
    /// The item.
    pub id: ContentId,
    /// Its name when the message was written.
    pub name: String,
}

/// One bubble of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Its id.
    pub id: MessageId,
    /// Its session.
    pub session_id: SessionId,
    /// Its site.
    pub site_id: SiteId,
    /// Who wrote it.
    pub role: MessageRole,
    /// Its status.
    pub status: MessageStatus,
    /// The text.
    pub content: String,
    /// The Flow or Tooltip it points at (MATCHED/GENERATED only).
    pub content_ref: Option<ContentRef>,
    /// The model that wrote it (assistant messages).
    pub model: Option<String>,
    /// Tokens spent writing it (assistant messages).
    pub tokens_used: Option<u32>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// A message with the visitor's vote on it, as a timeline shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// The message.
    pub message: ChatMessage,
    /// The vote on it, if any.
    pub vote: Option<Vote>,
}

/// The most characters a visitor's question may have.
pub const QUESTION_MAX: usize = 2000;

/// Checks a visitor's question: trimmed, 1–2000 characters.
pub fn parse_question(raw: &str) -> Result<String, Error> {
    crate::text::bounded(raw, 1, QUESTION_MAX).map_err(|m| Error::invalid("content", m))
}

closed_enum!(
    /// A visitor's vote on an assistant message.
    Vote {
        /// Thumbs up.
        Up => "UP",
        /// Thumbs down.
        Down => "DOWN",
    }
);

closed_enum!(
    /// What the widget offers after a vote.
    FollowUp {
        /// Ask the question another way.
        Rephrase => "REPHRASE",
        /// Open a support ticket.
        OpenTicket => "OPEN_TICKET",
    }
);

impl Vote {
    /// The follow-up choices the widget offers after this vote: none after
    /// UP; after DOWN, rephrasing or opening a support ticket.
    pub fn follow_ups(self) -> &'static [FollowUp] {
        match self {
            Vote::Up => &[],
            Vote::Down => &[FollowUp::Rephrase, FollowUp::OpenTicket],
        }
    }
}

/// A visitor's vote on one assistant message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatFeedback {
    /// Its id.
    pub id: FeedbackId,
    /// The message voted on (one vote per message).
    pub message_id: MessageId,
    /// The message's session.
    pub session_id: SessionId,
    /// The vote.
    pub vote: Vote,
    /// First vote.
    pub created_at: DateTime<Utc>,
    /// Latest change.
    pub updated_at: DateTime<Utc>,
}

/// Checks that a vote is on an assistant message: visitors vote on
/// answers, not on their own questions or on notices.
pub fn check_votable(role: MessageRole) -> Result<(), Error> {
    if role == MessageRole::Assistant {
        Ok(())
    } else {
        Err(Error::NotAnAssistantMessage)
    }
}

closed_enum!(
    /// The Conversations tab's feedback filter.
    FeedbackKind {
        /// At least one UP and no DOWN.
        UpOnly => "UP_ONLY",
        /// At least one DOWN and no UP.
        DownOnly => "DOWN_ONLY",
        /// At least one vote.
        Either => "EITHER",
        /// No votes.
        Neither => "NEITHER",
    }
);

/// The sessions a list asks for by their votes: the `hasFeedback` and
/// `feedback` filters together come down to one of these (or to nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VoteClass {
    /// Any votes or none (no vote filter).
    Any,
    /// At least one vote (`hasFeedback=true`, `feedback=EITHER`).
    Voted,
    /// UP votes and no DOWN vote (`UP_ONLY`).
    UpOnly,
    /// DOWN votes and no UP vote (`DOWN_ONLY`).
    DownOnly,
    /// No vote (`hasFeedback=false`, `feedback=NEITHER`).
    Unvoted,
}

impl VoteClass {
    /// Every class.
    pub const ALL: [VoteClass; 5] = [
        VoteClass::Any,
        VoteClass::Voted,
        VoteClass::UpOnly,
        VoteClass::DownOnly,
        VoteClass::Unvoted,
    ];

    /// Whether a session with these counters is in the class.
    pub fn holds(self, up: u32, down: u32) -> bool {
        match self {
            VoteClass::Any => true,
            VoteClass::Voted => up > 0 || down > 0,
            VoteClass::UpOnly => up > 0 && down == 0,
            VoteClass::DownOnly => up == 0 && down > 0,
            VoteClass::Unvoted => up == 0 && down == 0,
        }
    }

    /// The sessions in both classes, as one class; `None` when no session
    /// can be in both (UP_ONLY and DOWN_ONLY, or voted and unvoted).
    pub fn and(self, other: VoteClass) -> Option<VoteClass> {
        use VoteClass::*;
        match (self, other) {
            (Any, x) | (x, Any) => Some(x),
            (a, b) if a == b => Some(a),
            (Voted, x @ (UpOnly | DownOnly)) | (x @ (UpOnly | DownOnly), Voted) => Some(x),
            _ => None,
        }
    }
}

impl From<FeedbackKind> for VoteClass {
    fn from(kind: FeedbackKind) -> Self {
        match kind {
            FeedbackKind::UpOnly => VoteClass::UpOnly,
            FeedbackKind::DownOnly => VoteClass::DownOnly,
            FeedbackKind::Either => VoteClass::Voted,
            FeedbackKind::Neither => VoteClass::Unvoted,
        }
    }
}

impl FeedbackKind {
    /// Whether a session with these counters is of this kind.
    pub fn matches(self, up: u32, down: u32) -> bool {
        VoteClass::from(self).holds(up, down)
    }
}

/// A date window: sessions whose `[startedAt, lastActiveAt]` overlaps it.
/// Either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DateWindow {
    /// Start (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// End (inclusive).
    pub to: Option<DateTime<Utc>>,
}

impl DateWindow {
    /// Whether the window holds any instant (`from` is not after `to`).
    pub fn is_empty(&self) -> bool {
        matches!((self.from, self.to), (Some(f), Some(t)) if f > t)
    }

    /// Whether a session active over `[started_at, last_active_at]` overlaps
    /// the window: it started no later than the window ends, and was last
    /// active no earlier than it starts.
    pub fn overlaps(&self, started_at: DateTime<Utc>, last_active_at: DateTime<Utc>) -> bool {
        self.to.is_none_or(|to| started_at <= to)
            && self.from.is_none_or(|from| last_active_at >= from)
    }

    /// The latest `last_active_at` a session overlapping the window can
    /// have: a session is active for at most [`SESSION_MAX_DURATION`]
    /// after it starts, and it must start by `to`. The condition is implied
    /// by the overlap, so adding it changes no result; it bounds the range
    /// of the list's index that a window query reads.
    ///
    /// [`SESSION_MAX_DURATION`]: crate::visitor::SESSION_MAX_DURATION
    pub fn latest_activity(&self) -> Option<DateTime<Utc>> {
        self.to.map(|to| to + crate::visitor::SESSION_MAX_DURATION)
    }
}

/// The Conversations tab's filters, as the request named them; every set
/// filter must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationFilter {
    /// Date window.
    pub window: DateWindow,
    /// `hasFeedback`: at least one vote (true) or none (false).
    pub has_feedback: Option<bool>,
    /// `feedback`: the kind of votes.
    pub feedback: Option<FeedbackKind>,
    /// `escalated`: a ticket was opened (true) or not (false).
    pub escalated: Option<bool>,
}

/// What a conversation list asks of the store: the filters reduced to one
/// vote class, the escalation and the window, none of them contradictory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationQuery {
    /// The vote class.
    pub votes: VoteClass,
    /// Escalated (true), not escalated (false) or either.
    pub escalated: Option<bool>,
    /// The date window (not empty).
    pub window: DateWindow,
}

impl ConversationFilter {
    /// The filters as one query, or `None` when they contradict each other
    /// (`hasFeedback=true` with `NEITHER`, `UP_ONLY` with `DOWN_ONLY`'s
    /// `hasFeedback=false`, a window ending before it starts): then no
    /// session matches and the list is empty, without asking the store.
    pub fn query(&self) -> Option<ConversationQuery> {
        let has = self.has_feedback.map(|has| {
            if has {
                VoteClass::Voted
            } else {
                VoteClass::Unvoted
            }
        });
        let kind = self.feedback.map(VoteClass::from);
        let votes = has
            .unwrap_or(VoteClass::Any)
            .and(kind.unwrap_or(VoteClass::Any))?;
        if self.window.is_empty() {
            return None;
        }
        Some(ConversationQuery {
            votes,
            escalated: self.escalated,
            window: self.window,
        })
    }

    /// Whether a session passes the filter (the reference the store's SQL
    /// is tested against).
    pub fn matches(&self, session: &ChatSession) -> bool {
        self.query().is_some_and(|q| q.matches(session))
    }
}

impl ConversationQuery {
    /// Whether a session passes the query.
    pub fn matches(&self, session: &ChatSession) -> bool {
        self.window
            .overlaps(session.started_at, session.last_active_at)
            && self.votes.holds(session.up_votes, session.down_votes)
            && self.escalated.is_none_or(|e| session.escalated() == e)
    }
}

/// The position of a session in the Conversations list, which is ordered
/// by `last_active_at`, newest first, then by id: the keyset a page
/// continues after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationCursor {
    /// The session's `last_active_at` when the page was read.
    pub last_active_at: DateTime<Utc>,
    /// The session.
    pub id: SessionId,
}

impl ConversationCursor {
    /// The position of `session`.
    pub fn of(session: &ChatSession) -> ConversationCursor {
        ConversationCursor {
            last_active_at: session.last_active_at,
            id: session.id,
        }
    }
}

impl std::fmt::Display for ConversationCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&keyset_position(self.last_active_at, self.id.as_uuid()))
    }
}

impl std::str::FromStr for ConversationCursor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (last_active_at, id) = parse_keyset_position(s)?;
        Ok(ConversationCursor {
            last_active_at,
            id: SessionId(id),
        })
    }
}

/// A list position on the key (instant, id) as text: the instant's
/// microseconds and the id (the API makes it opaque).
pub(crate) fn keyset_position(at: DateTime<Utc>, id: uuid::Uuid) -> String {
    format!("{}|{id}", at.timestamp_micros())
}

/// Reads a [`keyset_position`].
pub(crate) fn parse_keyset_position(s: &str) -> Result<(DateTime<Utc>, uuid::Uuid), String> {
    const NOT_A_CURSOR: &str = "not a cursor of this list";
    let (micros, id) = s.split_once('|').ok_or(NOT_A_CURSOR)?;
    let micros: i64 = micros.parse().map_err(|_| NOT_A_CURSOR)?;
    let at = DateTime::from_timestamp_micros(micros).ok_or(NOT_A_CURSOR)?;
    let id = id.parse().map_err(|_| NOT_A_CURSOR)?;
    Ok((at, id))
}

/// A session as the Conversations list shows it: the session and who the
/// visitor is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    /// The session, with its counters.
    pub session: ChatSession,
    /// The visitor's anonymous id.
    pub anonymous_id: String,
    /// The visitor's external id, once identified.
    pub external_id: Option<String>,
}

/// A ticket as a conversation links to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketLink {
    /// The ticket.
    pub id: TicketId,
    /// Its status.
    pub status: crate::ticket::TicketStatus,
}

/// The head of a conversation's detail: the session, the visitor's
/// identity card and the ticket link. Its timeline is read in chunks
/// after it (see [`crate::ports::ConversationRepository`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationHead {
    /// The session.
    pub session: ChatSession,
    /// Its visitor.
    pub end_user: EndUser,
    /// The session's ticket (its first one), if any.
    pub ticket: Option<TicketLink>,
    /// The newest message when the head was read: the timeline goes up to
    /// it, so a detail is the conversation as it was when asked for.
    pub last_message: Option<MessageId>,
}

/// Parses the `traits` object of a session request: at most 50 keys of at
/// most 100 characters, and at most 8 KiB of JSON.
pub fn parse_traits(traits: Option<Value>, v: &mut Validator) -> Map<String, Value> {
    match traits {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => {
            let size = serde_json::to_string(&map).map_or(usize::MAX, |s| s.len());
            if map.len() > 50 || size > 8 * 1024 || map.keys().any(|k| k.chars().count() > 100) {
                v.push(
                    "traits",
                    "must have at most 50 keys of at most 100 characters, 8 KiB in all",
                );
                Map::new()
            } else {
                map
            }
        }
        Some(_) => {
            v.push("traits", "must be an object");
            Map::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::builders::a_session;
    use chrono::TimeZone;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, hour, 0, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn feedback_kinds() {
        use FeedbackKind::*;
        // (up, down, [UP_ONLY, DOWN_ONLY, EITHER, NEITHER])
        let table = [
            (0, 0, [false, false, false, true]),
            (1, 0, [true, false, true, false]),
            (0, 1, [false, true, true, false]),
            (2, 3, [false, false, true, false]),
        ];
        for (up, down, expected) in table {
            for (kind, want) in [UpOnly, DownOnly, Either, Neither]
                .into_iter()
                .zip(expected)
            {
                assert_eq!(kind.matches(up, down), want, "{kind} up={up} down={down}");
            }
        }
    }

    #[test]
    fn date_window_overlap() {
        let window = DateWindow {
            from: Some(at(10)),
            to: Some(at(12)),
        };
        // (started, last active, overlaps)
        let table = [
            (8, 9, false),   // entirely before
            (8, 10, true),   // ends at the window's start
            (9, 11, true),   // runs into it
            (10, 12, true),  // exactly it
            (11, 11, true),  // inside
            (11, 14, true),  // runs out of it
            (12, 13, true),  // starts at the window's end
            (8, 14, true),   // spans it
            (13, 14, false), // entirely after
        ];
        for (start, last, expected) in table {
            assert_eq!(
                window.overlaps(at(start), at(last)),
                expected,
                "{start}-{last}"
            );
        }
        let open_start = DateWindow {
            from: None,
            to: Some(at(10)),
        };
        assert!(open_start.overlaps(at(1), at(2)));
        assert!(!open_start.overlaps(at(11), at(12)));
        let open_end = DateWindow {
            from: Some(at(10)),
            to: None,
        };
        assert!(open_end.overlaps(at(1), at(10)));
        assert!(!open_end.overlaps(at(1), at(9)));
        assert!(DateWindow::default().overlaps(at(1), at(2)));
        let backwards = DateWindow {
            from: Some(at(12)),
            to: Some(at(10)),
        };
        assert!(backwards.is_empty());
        assert!(!window.is_empty());
        assert_eq!(
            window.latest_activity(),
            Some(at(12) + crate::visitor::SESSION_MAX_DURATION)
        );
        assert_eq!(open_end.latest_activity(), None);
    }

    #[test]
    fn vote_classes_combine() {
        use VoteClass::*;
        // (a, b, a AND b)
        let table = [
            (Any, Any, Some(Any)),
            (Any, UpOnly, Some(UpOnly)),
            (Voted, Voted, Some(Voted)),
            (Voted, UpOnly, Some(UpOnly)),
            (DownOnly, Voted, Some(DownOnly)),
            (Voted, Unvoted, None),
            (UpOnly, DownOnly, None),
            (UpOnly, Unvoted, None),
            (Unvoted, Unvoted, Some(Unvoted)),
        ];
        for (a, b, expected) in table {
            assert_eq!(a.and(b), expected, "{a:?} and {b:?}");
            assert_eq!(b.and(a), expected, "{b:?} and {a:?}");
        }
        // The combination holds exactly where both do, on every counter pair.
        for a in VoteClass::ALL {
            for b in VoteClass::ALL {
                for (up, down) in [(0, 0), (1, 0), (0, 1), (2, 3)] {
                    let both = a.holds(up, down) && b.holds(up, down);
                    let combined = a.and(b).is_some_and(|c| c.holds(up, down));
                    assert_eq!(combined, both, "{a:?} {b:?} {up} {down}");
                }
            }
        }
    }

    #[test]
    fn conversation_filters() {
        let mut s = a_session().build();
        s.up_votes = 1;
        let f = |has_feedback, feedback, escalated| ConversationFilter {
            window: DateWindow::default(),
            has_feedback,
            feedback,
            escalated,
        };
        assert!(f(None, None, None).matches(&s));
        assert!(f(Some(true), None, None).matches(&s));
        assert!(!f(Some(false), None, None).matches(&s));
        assert!(f(None, Some(FeedbackKind::UpOnly), None).matches(&s));
        assert!(!f(None, Some(FeedbackKind::DownOnly), None).matches(&s));
        assert!(!f(Some(true), Some(FeedbackKind::Neither), None).matches(&s));
        assert!(f(None, None, Some(false)).matches(&s));
        assert!(!f(None, None, Some(true)).matches(&s));
        s.ticket_id = Some(TicketId(uuid::Uuid::now_v7()));
        assert!(f(None, None, Some(true)).matches(&s));
        assert_eq!(
            f(Some(true), Some(FeedbackKind::UpOnly), None)
                .query()
                .map(|q| q.votes),
            Some(VoteClass::UpOnly)
        );
        assert_eq!(
            f(Some(true), Some(FeedbackKind::Neither), None).query(),
            None
        );
        assert_eq!(
            f(Some(false), Some(FeedbackKind::Either), None).query(),
            None
        );
        let backwards = ConversationFilter {
            window: DateWindow {
                from: Some(at(12)),
                to: Some(at(10)),
            },
            ..ConversationFilter::default()
        };
        assert_eq!(backwards.query(), None);
    }

    #[test]
    fn cursors_round_trip() {
        let s = a_session().build();
        let cursor = ConversationCursor::of(&s);
        let text = cursor.to_string();
        assert_eq!(text.parse::<ConversationCursor>(), Ok(cursor));
        for bad in ["", "1", "x|y", "1|not-a-uuid", "99999999999999999999|0"] {
            assert!(bad.parse::<ConversationCursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_late_vote_counts_but_does_not_reopen_the_session() {
        let mut s = a_session().build();
        let later =
            s.started_at + crate::visitor::SESSION_MAX_DURATION + chrono::Duration::minutes(1);
        s.last_active_at = later - chrono::Duration::minutes(2);
        s.record_vote(None, Vote::Up, later);
        assert_eq!(s.up_votes, 1);
        assert_eq!(s.last_active_at, later - chrono::Duration::minutes(2));
        let mut idle = a_session().build();
        let late = idle.last_active_at
            + crate::visitor::SESSION_IDLE_TIMEOUT
            + chrono::Duration::seconds(1);
        idle.record_vote(None, Vote::Down, late);
        assert_eq!(
            (idle.down_votes, idle.last_active_at),
            (1, a_session().build().last_active_at)
        );
    }

    #[test]
    fn votes_replace_each_other() {
        // (up, down, old, new, expected)
        let table = [
            (0, 0, None, Vote::Up, (1, 0)),
            (0, 0, None, Vote::Down, (0, 1)),
            (1, 0, Some(Vote::Up), Vote::Down, (0, 1)),
            (0, 1, Some(Vote::Down), Vote::Up, (1, 0)),
            (1, 0, Some(Vote::Up), Vote::Up, (1, 0)),
            (2, 2, Some(Vote::Down), Vote::Down, (2, 2)),
        ];
        for (up, down, old, new, expected) in table {
            assert_eq!(
                vote_counts_after(up, down, old, new),
                expected,
                "{old:?}->{new}"
            );
        }
        let mut s = a_session().build();
        let later = s.last_active_at + chrono::Duration::seconds(30);
        s.record_vote(None, Vote::Down, later);
        assert_eq!((s.up_votes, s.down_votes), (0, 1));
        assert_eq!(s.last_active_at, later);
    }

    #[test]
    fn follow_ups() {
        assert!(Vote::Up.follow_ups().is_empty());
        assert!(Vote::Down.follow_ups().contains(&FollowUp::OpenTicket));
    }

    #[test]
    fn message_statuses() {
        let errors: Vec<_> = MessageStatus::ALL.iter().filter(|s| s.is_error()).collect();
        assert_eq!(
            errors,
            [
                &MessageStatus::Failed,
                &MessageStatus::RateLimited,
                &MessageStatus::InsufficientCredits
            ]
        );
        let refs: Vec<_> = MessageStatus::ALL
            .iter()
            .filter(|s| s.references_content())
            .collect();
        assert_eq!(
            refs,
            [
                &MessageStatus::MatchedContent,
                &MessageStatus::GeneratedContent
            ]
        );
    }

    #[test]
    fn only_assistant_messages_are_votable() {
        for role in MessageRole::ALL {
            let expected = if *role == MessageRole::Assistant {
                Ok(())
            } else {
                Err(Error::NotAnAssistantMessage)
            };
            assert_eq!(check_votable(*role), expected, "{role}");
        }
    }

    #[test]
    fn rate_limit_and_preview() {
        let mut s = a_session().build();
        s.question_count = 19;
        assert!(s.may_ask(20));
        s.question_count = 20;
        assert!(!s.may_ask(20));
        assert_eq!(
            preview_of(&format!("  {}", "é".repeat(200)))
                .chars()
                .count(),
            PREVIEW_CHARS
        );
    }

    #[test]
    fn visitor_ids_and_questions_and_traits() {
        assert!(parse_visitor_id("anon-1").is_ok());
        assert!(parse_visitor_id("").is_err());
        assert!(parse_visitor_id("a\u{0}b").is_err());
        assert!(parse_visitor_id(&"a".repeat(201)).is_err());
        assert!(parse_question(" ").is_err());
        assert!(parse_question(&"q".repeat(2001)).is_err());

        let mut v = Validator::new();
        let traits = parse_traits(Some(serde_json::json!({"email": "a@b.co"})), &mut v);
        assert_eq!(traits.get("email"), Some(&serde_json::json!("a@b.co")));
        parse_traits(Some(serde_json::json!([1])), &mut v);
        let err = v.finish().expect_err("array rejected");
        assert_eq!(err.field_errors()[0].field, "traits");
    }
}
