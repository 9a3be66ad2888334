//! The widget SDK's use cases: the config gate, opening a session, asking a
//! question, reading the conversation and voting.
//!
//! Answering a question:
//! 1. The matcher looks for a published item's name in the question
//!    ([`crate::answer`]); failing that, the ranker picks the best item or
//!    none — lexical (BM25) by default, the model when it is configured to
//!    rank. A match is recorded with the question in one transaction and
//!    spends no credits.
//! 2. With no match and a model configured, the question is recorded with
//!    an ANALYZING reply in one transaction that also spends the
//!    generation's credits (never below zero; with none left the reply is
//!    INSUFFICIENT_CREDITS with the widget's message and the model is not
//!    called). The model then drafts a Flow while no database connection
//!    is held, and a second transaction stores the Flow and the reply
//!    (GENERATED_CONTENT) — or marks the reply FAILED and refunds.
//! 3. With no match and no model, the reply is a SYSTEM message saying so;
//!    nothing is made up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::answer::{find_answer, AnswerIndex, Candidate};
use crate::content::{
    ContentItem, ContentKind, GeneratedFrom, CONTENT_DESCRIPTION_MAX, CONTENT_NAME_MAX,
};
use crate::conversation::{
    parse_question, ChatMessage, ChatSession, ContentRef, FollowUp, MessageRole, MessageStatus,
    TimelineEntry, Vote,
};
use crate::error::{Entity, Error};
use crate::ids::{ContentId, EndUserId, FeedbackId, MessageId, SessionId, SiteId, TicketId};
use crate::ports::{
    AnswerModel, AskContext, Clock, Exchange, ExchangeOutcome, GeneratedGuide, GenerationOutcome,
    GenerationRequest, IdGenerator, ModelError, ModelReply, OpenSession, OpenTicket, OpenedSession,
    Page, PageRequest, RankCandidate, VisitorRepository,
};
use crate::secret::{SecretHash, SecretKind};
use crate::services::{issue, WithSecret};
use crate::ticket::{
    ticket_message_id, DeliveryStatus, SupportTicket, TicketRequest, DEFAULT_MAIL_DOMAIN,
    EMAIL_LOG_TAG,
};
use crate::visitor::{
    retry_after_secs, SiteGate, VisitorInput, GENERATION_COST, SESSION_IDLE_TIMEOUT,
    SESSION_MAX_DURATION,
};

/// The latest stamp of an exchange's messages: when it makes the session
/// active.
fn exchange_stamp(
    question: &ChatMessage,
    reply: &ChatMessage,
    unpaid_reply: Option<&ChatMessage>,
) -> chrono::DateTime<chrono::Utc> {
    let stamp = question.created_at.max(reply.created_at);
    unpaid_reply.map_or(stamp, |u| stamp.max(u.created_at))
}

/// How many items the lexical ranker hands a model ranker to choose from.
const MODEL_SHORTLIST: usize = 8;
/// The most characters of a generated answer kept.
pub const GENERATED_ANSWER_MAX: usize = 4000;
/// How long to wait before each new try of storing a generation's outcome
/// while the database is unavailable.
const FINISH_RETRY_WAITS: [std::time::Duration; 3] = [
    std::time::Duration::from_millis(200),
    std::time::Duration::from_millis(800),
    std::time::Duration::from_secs(2),
];
/// How many sites' answer indexes one process keeps before starting over.
const INDEX_CACHE_SITES: usize = 10_000;

/// The reply when nothing matches and no model is configured.
pub const NO_MODEL_NOTICE: &str = "No guide on this site answers that yet, and answering new \
     questions is not set up here. Try other words, or ask the site's team.";
/// The reply when the model could not answer.
pub const GENERATION_FAILED_NOTICE: &str =
    "Sorry, I could not work out an answer just now. Please try again in a moment.";

/// Which ranker picks an item when no name matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RankerChoice {
    /// BM25 over names and descriptions, in process.
    #[default]
    Lexical,
    /// The model chooses among the lexical ranker's shortlist (falling back
    /// to the lexical choice when the model fails).
    Model,
}

/// A question and the reply it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    /// The visitor's message.
    pub question: ChatMessage,
    /// The reply (assistant, or a SYSTEM notice).
    pub reply: ChatMessage,
}

/// A recorded vote and what the widget offers next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Voted {
    /// The vote.
    pub vote: Vote,
    /// The follow-up choices ([`Vote::follow_ups`]).
    pub follow_ups: &'static [FollowUp],
}

/// A site's answer index as of one version of its content.
struct SiteIndex {
    version: i64,
    index: AnswerIndex,
}

/// The widget SDK's use cases.
#[derive(Clone)]
pub struct VisitorService {
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    repo: Arc<dyn VisitorRepository>,
    model: Option<Arc<dyn AnswerModel>>,
    ranker: RankerChoice,
    indexes: Arc<Mutex<HashMap<SiteId, Arc<SiteIndex>>>>,
    builds: Arc<Mutex<HashMap<SiteId, Arc<Mutex<()>>>>>,
    mail_domain: String,
}

impl VisitorService {
    /// The service over its ports; without a model nothing is generated.
    pub fn new(
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        repo: Arc<dyn VisitorRepository>,
        model: Option<Arc<dyn AnswerModel>>,
    ) -> Self {
        VisitorService {
            clock,
            ids,
            repo,
            model,
            ranker: RankerChoice::Lexical,
            indexes: Arc::default(),
            builds: Arc::default(),
            mail_domain: DEFAULT_MAIL_DOMAIN.into(),
        }
    }

    /// Chooses the ranker ([`RankerChoice::Model`] needs a model).
    pub fn with_ranker(mut self, ranker: RankerChoice) -> Self {
        self.ranker = ranker;
        self
    }

    /// The domain of the tickets' Message-IDs (the sender's, from
    /// `MAIL_FROM`; [`DEFAULT_MAIL_DOMAIN`] unless set).
    pub fn with_mail_domain(mut self, domain: impl Into<String>) -> Self {
        self.mail_domain = domain.into();
        self
    }

    /// The gate of the site whose key has this hash; `None` for an unknown key.
    pub fn gate(&self, key: &SecretHash) -> Result<Option<SiteGate>, Error> {
        self.repo.load_gate(key)
    }

    /// Whether a browser on `host` may call the SDK at all (the preflight).
    pub fn admits_origin_host(&self, host: &str) -> Result<bool, Error> {
        self.repo.admits_origin_host(host)
    }

    /// Opens the visitor's session, or resumes their current one, and
    /// issues a token for it. The gate must be open and the visitor's
    /// identity verified ([`VisitorInput::verify`]).
    pub fn open_session(
        &self,
        gate: &SiteGate,
        key: &SecretHash,
        input: &VisitorInput,
    ) -> Result<WithSecret<OpenedSession>, Error> {
        let widget = gate.require_open()?;
        let identity = input.verify(&gate.site)?;
        let token = issue(self.ids.as_ref(), SecretKind::SessionToken);
        let now = self.clock.now();
        let opened = self.repo.open_session(&OpenSession {
            site_id: gate.site.id,
            widget_id: widget.id,
            key: key.clone(),
            identity,
            new_visitor_id: EndUserId(self.ids.new_id()),
            new_session_id: SessionId(self.ids.new_id()),
            token: token.hash,
            idle_cutoff: now - SESSION_IDLE_TIMEOUT,
            start_cutoff: now - SESSION_MAX_DURATION,
            now,
        })?;
        Ok(WithSecret {
            value: opened,
            secret: token.plaintext,
        })
    }

    /// The session the token belongs to, which must be `id`: a missing
    /// token is [`Error::SessionTokenRequired`]; another session's token,
    /// or one of another site, is not found.
    fn session(
        &self,
        key: &SecretHash,
        token: Option<&str>,
        id: Option<SessionId>,
    ) -> Result<AskContext, Error> {
        let token = token
            .filter(|t| !t.trim().is_empty())
            .ok_or(Error::SessionTokenRequired)?;
        let context = self
            .repo
            .find_session(key, &SecretHash::of(token.trim()))?
            .ok_or(Error::NotFound(Entity::Session))?;
        if id.is_some_and(|id| id != context.session.id) {
            return Err(Error::NotFound(Entity::Session));
        }
        Ok(context)
    }

    /// `Ok` when the token is the session `id`'s on the key's site (a
    /// missing token is [`Error::SessionTokenRequired`], any other token
    /// not found): what a request must pass before any other work, such
    /// as giving an earlier answer again.
    pub fn authorize_session(
        &self,
        key: &SecretHash,
        token: Option<&str>,
        id: SessionId,
    ) -> Result<(), Error> {
        self.session(key, token, Some(id)).map(|_| ())
    }

    /// The session's messages, oldest first, with their votes.
    pub fn messages(
        &self,
        key: &SecretHash,
        token: Option<&str>,
        session: SessionId,
        page: &PageRequest<MessageId>,
    ) -> Result<Page<TimelineEntry, MessageId>, Error> {
        let context = self.session(key, token, Some(session))?;
        self.repo.list_messages(context.session.id, page)
    }

    /// Answers a visitor's question (see the module's description).
    pub fn ask(
        &self,
        gate: &SiteGate,
        key: &SecretHash,
        token: Option<&str>,
        session: SessionId,
        content: &str,
    ) -> Result<Answered, Error> {
        let question_text = parse_question(content)?;
        let widget = gate.require_open()?;
        let context = self.session(key, token, Some(session))?;
        let limit = widget.settings.rate_limit_per_session;
        let now = self.clock.now();
        // An ended, idled-out or worn-out session takes no more questions:
        // the widget opens a new one.
        if !context.session.is_current(now) {
            return Err(Error::NotFound(Entity::Session));
        }
        if !context.session.may_ask(limit) {
            return Err(rate_limited(limit, &context.session, now));
        }
        let index = self.index(context.session.site_id, context.content_version)?;
        let question = self.message(&context.session, MessageRole::User, question_text);
        let question = ChatMessage {
            status: MessageStatus::Completed,
            ..question
        };

        if let Some(reply) = self.find(&index.index, &context.session, &question) {
            return self.record(key, &context, limit, question, reply, 0, None);
        }
        let Some(model) = self.model.clone() else {
            let notice = ChatMessage {
                status: MessageStatus::Completed,
                ..self.message(
                    &context.session,
                    MessageRole::System,
                    NO_MODEL_NOTICE.into(),
                )
            };
            return self.record(key, &context, limit, question, notice, 0, None);
        };

        let analyzing = self.message(&context.session, MessageRole::Assistant, String::new());
        let unpaid = ChatMessage {
            status: MessageStatus::InsufficientCredits,
            content: widget.settings.insufficient_credits_message.clone(),
            ..analyzing.clone()
        };
        let answered = self.record(
            key,
            &context,
            limit,
            question,
            analyzing,
            GENERATION_COST,
            Some(unpaid),
        )?;
        if answered.reply.status != MessageStatus::Analyzing {
            return Ok(answered);
        }
        // No connection is held from here until the model has answered.
        let request = GenerationRequest {
            site_name: gate.site.name.clone(),
            site_domain: gate.site.domain.to_string(),
            persona: widget.settings.persona.clone(),
            question: answered.question.content.clone(),
        };
        let generated = model.generate(&request).and_then(clean_guide);
        let (outcome, reply) = match generated {
            Ok(reply) => self.generated(&context.session, answered.reply.clone(), reply),
            Err(error) => {
                tracing::warn!(%error, session_id = %context.session.id, "answer generation failed");
                let reply = ChatMessage {
                    status: MessageStatus::Failed,
                    content: GENERATION_FAILED_NOTICE.into(),
                    model: Some(model.model_name()),
                    ..answered.reply.clone()
                };
                let outcome = GenerationOutcome::Failed {
                    reply: reply.clone(),
                    tenant_id: context.tenant_id,
                    refund: GENERATION_COST,
                };
                (outcome, reply)
            }
        };
        self.finish(&outcome)?;
        Ok(Answered {
            question: answered.question,
            reply,
        })
    }

    /// Stores a generation's outcome, trying again for a few seconds when
    /// the database is briefly unavailable: the model's work (and the
    /// visitor's credit) is not dropped for a blip. The store applies it
    /// only while the reply is still ANALYZING, so a retry after a commit
    /// whose answer was lost changes nothing.
    fn finish(&self, outcome: &GenerationOutcome) -> Result<(), Error> {
        let mut waits = FINISH_RETRY_WAITS.iter();
        loop {
            match self.repo.finish_generation(outcome) {
                Err(Error::DatabaseUnavailable) => match waits.next() {
                    Some(wait) => std::thread::sleep(*wait),
                    None => return Err(Error::DatabaseUnavailable),
                },
                other => return other,
            }
        }
    }

    /// The generated Flow and the reply pointing at it.
    fn generated(
        &self,
        session: &ChatSession,
        analyzing: ChatMessage,
        reply: ModelReply<GeneratedGuide>,
    ) -> (GenerationOutcome, ChatMessage) {
        let guide = reply.value;
        let item = ContentItem::generated_flow(
            ContentId(self.ids.new_id()),
            session.site_id,
            guide.name.clone(),
            guide.description,
            GeneratedFrom {
                session_id: session.id,
                message_id: analyzing.id,
                answer: guide.answer.clone(),
            },
            self.clock.now(),
        );
        let reply = ChatMessage {
            status: MessageStatus::GeneratedContent,
            content: guide.answer,
            content_ref: Some(ContentRef {
                kind: ContentKind::Flow,
                id: item.id,
                name: guide.name,
            }),
            model: Some(reply.model),
            tokens_used: Some(reply.tokens_used),
            ..analyzing
        };
        let outcome = GenerationOutcome::Generated {
            item,
            reply: reply.clone(),
        };
        (outcome, reply)
    }

    /// Records a question and its reply.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        key: &SecretHash,
        context: &AskContext,
        limit: u32,
        question: ChatMessage,
        reply: ChatMessage,
        cost: u32,
        unpaid_reply: Option<ChatMessage>,
    ) -> Result<Answered, Error> {
        let outcome = self.repo.record_exchange(&Exchange {
            key: key.clone(),
            tenant_id: context.tenant_id,
            limit,
            // The question was stamped now: `ask`'s cutoffs, a moment on.
            // The start cutoff counts from the exchange's latest stamp, so
            // the activity it records stays within the session's maximum.
            idle_cutoff: question.created_at - SESSION_IDLE_TIMEOUT,
            start_cutoff: exchange_stamp(&question, &reply, unpaid_reply.as_ref())
                - SESSION_MAX_DURATION,
            question: question.clone(),
            reply,
            cost,
            unpaid_reply,
        });
        match outcome? {
            ExchangeOutcome::Recorded { reply, .. } => Ok(Answered { question, reply }),
            ExchangeOutcome::RateLimited { last_active_at } => {
                let session = ChatSession {
                    last_active_at,
                    ..context.session.clone()
                };
                Err(rate_limited(limit, &session, self.clock.now()))
            }
        }
    }

    /// The reply pointing at a matching item, if any.
    fn find(
        &self,
        index: &AnswerIndex,
        session: &ChatSession,
        question: &ChatMessage,
    ) -> Option<ChatMessage> {
        let (candidate, model, tokens) = match self.ranker {
            RankerChoice::Model if self.model.is_some() => {
                self.model_find(index, session.id, &question.content)?
            }
            _ => {
                // Matching by name or by the lexical ranker calls no model.
                let found = find_answer(index, &question.content, session.id)?;
                (found.candidate.clone(), None, Some(0))
            }
        };
        let reply = self.message(session, MessageRole::Assistant, matched_text(&candidate));
        Some(ChatMessage {
            status: MessageStatus::MatchedContent,
            content_ref: Some(ContentRef {
                kind: candidate.kind,
                id: candidate.id,
                name: candidate.name,
            }),
            model,
            tokens_used: tokens,
            ..reply
        })
    }

    /// The name matcher, then the model's choice among the lexical
    /// shortlist (the lexical choice when the model fails).
    fn model_find(
        &self,
        index: &AnswerIndex,
        session: SessionId,
        question: &str,
    ) -> Option<(Candidate, Option<String>, Option<u32>)> {
        if let Some(named) = index.match_name(question, session) {
            return Some((named.clone(), None, Some(0)));
        }
        let shortlist = index.shortlist(question, session, MODEL_SHORTLIST);
        if shortlist.is_empty() {
            return None;
        }
        let model = self.model.as_ref()?;
        let offered: Vec<RankCandidate> = shortlist
            .iter()
            .map(|r| RankCandidate {
                name: r.candidate.name.clone(),
                description: r.candidate.description.clone(),
            })
            .collect();
        match model.rank(question, &offered) {
            Ok(reply) => {
                let chosen = reply.value.and_then(|i| shortlist.get(i))?;
                Some((
                    chosen.candidate.clone(),
                    Some(reply.model),
                    Some(reply.tokens_used),
                ))
            }
            Err(error) => {
                tracing::warn!(%error, "the model could not rank; using the lexical ranker's choice");
                index
                    .rank(question, session)
                    .map(|ranked| (ranked.candidate.clone(), None, Some(0)))
            }
        }
    }

    /// A new message of the session, ANALYZING, stamped now.
    fn message(&self, session: &ChatSession, role: MessageRole, content: String) -> ChatMessage {
        ChatMessage {
            id: MessageId(self.ids.new_id()),
            session_id: session.id,
            site_id: session.site_id,
            role,
            status: MessageStatus::Analyzing,
            content,
            content_ref: None,
            model: None,
            tokens_used: None,
            created_at: self.clock.now(),
        }
    }

    /// The site's answer index at `version`, built from its published
    /// content when the cached one is older.
    fn index(&self, site: SiteId, version: i64) -> Result<Arc<SiteIndex>, Error> {
        if let Some(cached) = self.fresh_index(site, version) {
            return Ok(cached);
        }
        // One build per site at a time: the questions that arrive while the
        // library is read and indexed wait for that build and use it,
        // rather than each reading the whole library again.
        let lock = self.build_lock(site);
        let _building = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(cached) = self.fresh_index(site, version) {
            return Ok(cached);
        }
        let items = self.repo.published_content(site)?;
        let built = Arc::new(SiteIndex {
            version,
            index: AnswerIndex::build(items.iter().filter_map(Candidate::from_item).collect()),
        });
        if let Ok(mut cache) = self.indexes.lock() {
            if cache.len() >= INDEX_CACHE_SITES {
                cache.clear();
            }
            // A rebuild at a newer version wins.
            let keep_newer = cache.get(&site).is_some_and(|c| c.version > version);
            if !keep_newer {
                cache.insert(site, built.clone());
            }
        }
        Ok(built)
    }

    /// The cached index of the site when it is of `version` or newer (a
    /// newer library is as good an answer).
    fn fresh_index(&self, site: SiteId, version: i64) -> Option<Arc<SiteIndex>> {
        self.cached_index(site).filter(|c| c.version >= version)
    }

    /// The lock a site's index builds take.
    fn build_lock(&self, site: SiteId) -> Arc<Mutex<()>> {
        let mut builds = self
            .builds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if builds.len() >= INDEX_CACHE_SITES {
            builds.clear();
        }
        builds.entry(site).or_default().clone()
    }

    fn cached_index(&self, site: SiteId) -> Option<Arc<SiteIndex>> {
        self.indexes.lock().ok()?.get(&site).cloned()
    }

    /// Records a visitor's vote on a message of their session.
    pub fn vote(
        &self,
        key: &SecretHash,
        token: Option<&str>,
        message: MessageId,
        vote: &str,
    ) -> Result<Voted, Error> {
        let vote: Vote = vote.parse().map_err(|m| Error::invalid("vote", m))?;
        let context = self.session(key, token, None)?;
        self.repo.vote(
            context.session.id,
            message,
            vote,
            FeedbackId(self.ids.new_id()),
            self.clock.now(),
        )?;
        Ok(Voted {
            vote,
            follow_ups: vote.follow_ups(),
        })
    }

    /// Opens a support ticket from the session after a DOWN vote (see
    /// [`VisitorRepository::open_ticket`]): the ticket, the session's
    /// escalation and the email's outbox row are stored together; the
    /// email is sent later by the delivery worker, never in the request. A
    /// ticket nobody receives is still stored, and a warning says so.
    pub fn open_ticket(
        &self,
        gate: &SiteGate,
        key: &SecretHash,
        token: Option<&str>,
        session: SessionId,
        request: &TicketRequest,
    ) -> Result<SupportTicket, Error> {
        let text = request.parse()?;
        gate.require_open()?;
        let context = self.session(key, token, Some(session))?;
        let ticket_id = TicketId(self.ids.new_id());
        let ticket = self.repo.open_ticket(&OpenTicket {
            key: key.clone(),
            session_id: context.session.id,
            ticket_id,
            delivery_id: self.ids.new_id(),
            message_id: ticket_message_id(ticket_id, &self.mail_domain),
            text,
            now: self.clock.now(),
        })?;
        if ticket.delivery.status == DeliveryStatus::NoRecipient {
            tracing::warn!(
                ticket_id = %ticket.id,
                site_id = %ticket.site_id,
                "{EMAIL_LOG_TAG} no recipient resolved: the widget has no support email and the \
                 tenant no owner; the ticket is stored and listed, and no email is sent"
            );
        }
        Ok(ticket)
    }
}

/// The reply's text for a matched item.
fn matched_text(candidate: &Candidate) -> String {
    let kind = match candidate.kind {
        ContentKind::Flow => "guide",
        ContentKind::Tooltip => "tip",
    };
    format!("This {kind} shows you how: {}", candidate.name)
}

fn rate_limited(limit: u32, session: &ChatSession, now: chrono::DateTime<chrono::Utc>) -> Error {
    Error::RateLimited {
        limit,
        retry_after_secs: retry_after_secs(session.started_at, session.last_active_at, now),
    }
}

/// Checks and trims what the model drafted: a single-line name of at most
/// [`CONTENT_NAME_MAX`] characters, a description of at most
/// [`CONTENT_DESCRIPTION_MAX`], an answer of at most
/// [`GENERATED_ANSWER_MAX`]; control and invisible formatting characters
/// are dropped (newlines and tabs stay in the description and answer). An
/// empty name or answer is a malformed reply.
pub fn clean_guide(
    reply: ModelReply<GeneratedGuide>,
) -> Result<ModelReply<GeneratedGuide>, ModelError> {
    let guide = &reply.value;
    let name = clean_text(&guide.name, CONTENT_NAME_MAX, false);
    let answer = clean_text(&guide.answer, GENERATED_ANSWER_MAX, true);
    if name.is_empty() || answer.is_empty() {
        return Err(ModelError::Malformed(
            "the drafted Flow has no name or no answer".into(),
        ));
    }
    let description = clean_text(&guide.description, CONTENT_DESCRIPTION_MAX, true);
    Ok(ModelReply {
        value: GeneratedGuide {
            name,
            description,
            answer,
        },
        model: clean_text(&reply.model, 200, false),
        tokens_used: reply.tokens_used,
    })
}

fn clean_text(raw: &str, max: usize, multi_line: bool) -> String {
    let kept: String = raw
        .chars()
        .map(|c| {
            if !multi_line && c.is_whitespace() {
                ' '
            } else {
                c
            }
        })
        .filter(|&c| {
            (multi_line && (c == '\n' || c == '\t'))
                || !(c.is_control() || crate::text::is_hidden_format(c))
        })
        .collect();
    let collapsed = if multi_line {
        kept
    } else {
        kept.split(' ')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    collapsed
        .trim()
        .chars()
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}
