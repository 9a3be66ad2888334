-- Visitors, chat sessions, messages, feedback votes, support tickets and
-- the email outbox. Every row carries site_id and goes when its site goes.

CREATE TABLE end_users (
    id             TEXT PRIMARY KEY NOT NULL,
    site_id        TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    anonymous_id   TEXT NOT NULL,
    external_id    TEXT,
    -- JSON object of free-form traits.
    traits         TEXT NOT NULL DEFAULT '{}',
    verified       BOOLEAN NOT NULL DEFAULT FALSE,
    first_seen_at  TIMESTAMP NOT NULL,
    last_seen_at   TIMESTAMP NOT NULL,
    CONSTRAINT end_users_site_anonymous_id_key UNIQUE (site_id, anonymous_id)
);

CREATE INDEX end_users_site_external_id_idx ON end_users (site_id, external_id)
    WHERE external_id IS NOT NULL;

-- Sessions are updated on every message and vote (last_active_at and the
-- counters below), so the table keeps 20 % of each page free
-- (fillfactor = 80): the new row version then fits on the same heap page,
-- and an update that changes no indexed column (e.g. message_count,
-- question_count, preview alone) can be a HOT update that writes no index
-- entry at all. last_active_at, the vote counters and ticket_id are index
-- keys or predicates below, so their updates do write index entries; that
-- is the price of list pages that read only the rows they return.
CREATE TABLE chat_sessions (
    id              TEXT PRIMARY KEY NOT NULL,
    site_id         TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    widget_id       TEXT NOT NULL REFERENCES chat_widgets (id) ON DELETE CASCADE,
    end_user_id     TEXT NOT NULL REFERENCES end_users (id) ON DELETE CASCADE,
    token_hash      TEXT NOT NULL,
    started_at      TIMESTAMP NOT NULL,
    last_active_at  TIMESTAMP NOT NULL,
    -- NULL while the session is the visitor's current one with the widget.
    ended_at        TIMESTAMP,
    -- Denormalised for the Conversations list, changed in the transaction
    -- that adds the message or the vote.
    message_count   INTEGER NOT NULL DEFAULT 0 CONSTRAINT chat_sessions_message_count_check CHECK (message_count >= 0),
    question_count  INTEGER NOT NULL DEFAULT 0 CONSTRAINT chat_sessions_question_count_check CHECK (question_count >= 0),
    up_votes        INTEGER NOT NULL DEFAULT 0 CONSTRAINT chat_sessions_up_votes_check CHECK (up_votes >= 0),
    down_votes      INTEGER NOT NULL DEFAULT 0 CONSTRAINT chat_sessions_down_votes_check CHECK (down_votes >= 0),
    -- The first ticket opened from the session. It is the one source of
    -- truth for "escalated": a session is escalated exactly when ticket_id
    -- IS NOT NULL (there is no separate flag that could disagree). Its
    -- foreign key is added below, once support_tickets exists.
    ticket_id       TEXT,
    preview         TEXT,
    CONSTRAINT chat_sessions_token_hash_key UNIQUE (token_hash),
    CONSTRAINT chat_sessions_ended_check CHECK (ended_at IS NULL OR ended_at >= started_at)
) WITH (fillfactor = 80);

-- One current session per widget and visitor. Creating one races safely:
--   INSERT INTO chat_sessions … ON CONFLICT DO NOTHING;
--   SELECT … FROM chat_sessions
--    WHERE widget_id = $1 AND end_user_id = $2 AND ended_at IS NULL;
-- the loser of a race inserts nothing and reads the winner's row.
CREATE UNIQUE INDEX chat_sessions_current_key
    ON chat_sessions (widget_id, end_user_id) WHERE ended_at IS NULL;
-- Foreign keys: cascades from widgets, visitors and tickets.
CREATE INDEX chat_sessions_widget_id_idx ON chat_sessions (widget_id);
CREATE INDEX chat_sessions_end_user_id_idx ON chat_sessions (end_user_id);
CREATE INDEX chat_sessions_ticket_id_idx ON chat_sessions (ticket_id) WHERE ticket_id IS NOT NULL;

-- The Conversations list: a site's sessions, newest last_active_at first,
-- paged on the key (last_active_at, id):
--   SELECT id FROM chat_sessions
--    WHERE site_id = $1 [AND <filter predicate>]
--      [AND started_at <= $to] [AND last_active_at >= $from]
--      [AND (last_active_at, id) < ($cursor_at, $cursor_id)]
--    ORDER BY last_active_at DESC, id DESC LIMIT $n
-- then the page's rows (and their visitors) by id. One partial index per
-- filter, its predicate written exactly as the store writes the filter,
-- so every page reads only the entries it returns however rare the
-- filter is:
--   no filter                                   chat_sessions_site_recent_idx
--   escalated=true    ticket_id IS NOT NULL     chat_sessions_site_escalated_recent_idx
--   escalated=false   ticket_id IS NULL         chat_sessions_site_not_escalated_recent_idx
--   hasFeedback=true, feedback=EITHER
--                     (up_votes > 0 OR down_votes > 0)
--                                               chat_sessions_site_voted_recent_idx
--   UP_ONLY           up_votes > 0 AND down_votes = 0
--                                               chat_sessions_site_up_only_recent_idx
--   DOWN_ONLY         up_votes = 0 AND down_votes > 0
--                                               chat_sessions_site_down_only_recent_idx
--   hasFeedback=false, feedback=NEITHER
--                     up_votes = 0 AND down_votes = 0
--                                               chat_sessions_site_unvoted_recent_idx
-- Combined filters use one of them and check the rest in the index.
-- INCLUDE carries every column a filter or the date window reads
-- (started_at, the vote counters, ticket_id), so the id query above
-- rejects rows inside the index, with no heap visit for them (and is an
-- index-only scan where the visibility map allows). They are
-- already keys or predicates here, or never change (started_at), so
-- including them costs no HOT update. The wider list columns (preview,
-- message_count, end_user_id) stay out: the page fetches them for its few
-- rows, and the visitor's ids come from end_users anyway.
CREATE INDEX chat_sessions_site_recent_idx
    ON chat_sessions (site_id, last_active_at DESC, id DESC)
    INCLUDE (started_at, up_votes, down_votes, ticket_id);
CREATE INDEX chat_sessions_site_escalated_recent_idx
    ON chat_sessions (site_id, last_active_at DESC, id DESC)
    INCLUDE (started_at, up_votes, down_votes, ticket_id)
    WHERE ticket_id IS NOT NULL;
CREATE INDEX chat_sessions_site_not_escalated_recent_idx
    ON chat_sessions (site_id, last_active_at DESC, id DESC)
    INCLUDE (started_at, up_votes, down_votes, ticket_id)
    WHERE ticket_id IS NULL;
CREATE INDEX chat_sessions_site_voted_recent_idx
    ON chat_sessions (site_id, last_active_at DESC, id DESC)
    INCLUDE (started_at, up_votes, down_votes, ticket_id)
    WHERE (up_votes > 0 OR down_votes > 0);
CREATE INDEX chat_sessions_site_up_only_recent_idx
    ON chat_sessions (site_id, last_active_at DESC, id DESC)
    INCLUDE (started_at, up_votes, down_votes, ticket_id)
    WHERE up_votes > 0 AND down_votes = 0;
CREATE INDEX chat_sessions_site_down_only_recent_idx
    ON chat_sessions (site_id, last_active_at DESC, id DESC)
    INCLUDE (started_at, up_votes, down_votes, ticket_id)
    WHERE up_votes = 0 AND down_votes > 0;
CREATE INDEX chat_sessions_site_unvoted_recent_idx
    ON chat_sessions (site_id, last_active_at DESC, id DESC)
    INCLUDE (started_at, up_votes, down_votes, ticket_id)
    WHERE up_votes = 0 AND down_votes = 0;

CREATE TABLE chat_messages (
    id            TEXT PRIMARY KEY NOT NULL,
    site_id       TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    session_id    TEXT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    role          TEXT NOT NULL
                  CONSTRAINT chat_messages_role_check CHECK (role IN ('USER', 'ASSISTANT', 'SYSTEM')),
    status        TEXT NOT NULL
                  CONSTRAINT chat_messages_status_check CHECK (status IN (
                      'ANALYZING', 'MATCHED_CONTENT', 'GENERATED_CONTENT', 'NAVIGATING', 'COMPLETED',
                      'FAILED', 'RATE_LIMITED', 'INSUFFICIENT_CREDITS')),
    content       TEXT NOT NULL,
    -- The Flow or Tooltip the message points at, as it was when written
    -- (no foreign key: the link survives the item's removal).
    content_kind  TEXT CONSTRAINT chat_messages_content_kind_check CHECK (content_kind IN ('FLOW', 'TOOLTIP')),
    content_id    TEXT,
    content_name  TEXT,
    model         TEXT,
    tokens_used   INTEGER CONSTRAINT chat_messages_tokens_used_check CHECK (tokens_used >= 0),
    created_at    TIMESTAMP NOT NULL,
    CONSTRAINT chat_messages_content_ref_check CHECK (
        (content_kind IS NULL AND content_id IS NULL AND content_name IS NULL)
        OR (content_kind IS NOT NULL AND content_id IS NOT NULL AND content_name IS NOT NULL))
);

-- A session's timeline in order.
CREATE INDEX chat_messages_session_id_idx ON chat_messages (session_id, id);
CREATE INDEX chat_messages_site_id_idx ON chat_messages (site_id);

CREATE TABLE chat_feedback (
    id          TEXT PRIMARY KEY NOT NULL,
    site_id     TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    session_id  TEXT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    message_id  TEXT NOT NULL REFERENCES chat_messages (id) ON DELETE CASCADE,
    vote        TEXT NOT NULL CONSTRAINT chat_feedback_vote_check CHECK (vote IN ('UP', 'DOWN')),
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    CONSTRAINT chat_feedback_message_id_key UNIQUE (message_id)
);

CREATE INDEX chat_feedback_session_id_idx ON chat_feedback (session_id);
CREATE INDEX chat_feedback_site_id_idx ON chat_feedback (site_id);

-- A ticket holds what members edit (status and its stamps); its email's
-- delivery lives in email_outbox, so the delivery worker and the members
-- never write the same row.
CREATE TABLE support_tickets (
    id            TEXT PRIMARY KEY NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    site_id       TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    session_id    TEXT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    subject       TEXT NOT NULL,
    body          TEXT NOT NULL,
    -- JSON snapshot of the whole conversation when the ticket was opened.
    conversation  TEXT NOT NULL,
    status        TEXT NOT NULL
                  CONSTRAINT support_tickets_status_check CHECK (status IN ('OPEN', 'IN_PROGRESS', 'RESOLVED')),
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    resolved_at   TIMESTAMP,
    -- The member who resolved it (no foreign key: the record outlives the member).
    resolved_by   TEXT,
    CONSTRAINT support_tickets_resolved_check CHECK (
        (status = 'RESOLVED' AND resolved_at IS NOT NULL)
        OR (status <> 'RESOLVED' AND resolved_at IS NULL AND resolved_by IS NULL))
);

-- The Tickets tab: a site's tickets, newest first, paged on the key
-- (created_at, id), with ?status= or without:
--   … WHERE site_id = $1 AND status = $2
--       [AND (created_at, id) < ($cursor_at, $cursor_id)]
--     ORDER BY created_at DESC, id DESC LIMIT $n
CREATE INDEX support_tickets_site_status_created_idx
    ON support_tickets (site_id, status, created_at DESC, id DESC);
CREATE INDEX support_tickets_site_created_idx
    ON support_tickets (site_id, created_at DESC, id DESC);
-- Foreign keys: cascades from sessions and tenants.
CREATE INDEX support_tickets_session_id_idx ON support_tickets (session_id);
CREATE INDEX support_tickets_tenant_id_idx ON support_tickets (tenant_id);

ALTER TABLE chat_sessions
    ADD CONSTRAINT chat_sessions_ticket_id_fkey
    FOREIGN KEY (ticket_id) REFERENCES support_tickets (id) ON DELETE SET NULL;

-- The email outbox: one row per ticket, written in the ticket's
-- transaction, and the ticket's `delivery` as the API shows it (status,
-- recipient, attempts, last_error). NO_RECIPIENT and LOG_ONLY are final
-- outcomes recorded without a send.
--
-- How the delivery worker uses it (several replicas may run it):
-- 1. Claim, in a short transaction of its own: due PENDING rows whose
--    lease is free, locked with FOR UPDATE SKIP LOCKED (PostgreSQL; SQLite
--    has one writer), leased by setting locked_until = now + lease and
--    attempts = attempts + 1; commit.
-- 2. Send with no transaction open and no row locked: an SMTP or HTTP call
--    may take seconds or hang until its timeout.
-- 3. Record the outcome in another short transaction, only while it still
--    holds the lease (… WHERE id = $1 AND locked_until = $lease): SENT
--    with sent_at, or PENDING again with next_attempt_at after a backoff,
--    or FAILED once the attempts are spent; last_error keeps the cause.
-- A worker that dies mid-send loses its lease when locked_until passes, and
-- the row is sent again with the same message_id (at-least-once delivery,
-- recognisable duplicates). The worker reads the ticket's subject, body
-- and conversation with a plain SELECT and never writes, locks or
-- SELECTs … FOR UPDATE a support_tickets row: a member changing a ticket's
-- status never waits on delivery, and delivery never waits on a member.
-- (Its updates leave ticket_id unchanged, so they take no foreign-key lock
-- on the ticket either.)
CREATE TABLE email_outbox (
    id               TEXT PRIMARY KEY NOT NULL,
    ticket_id        TEXT NOT NULL REFERENCES support_tickets (id) ON DELETE CASCADE,
    site_id          TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    status           TEXT NOT NULL
                     CONSTRAINT email_outbox_status_check
                     CHECK (status IN ('PENDING', 'SENT', 'FAILED', 'NO_RECIPIENT', 'LOG_ONLY')),
    -- Who it goes to; NULL when nobody was resolved.
    recipient        TEXT,
    -- The email's stable Message-ID (without angle brackets), the same on
    -- every attempt.
    message_id       TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0
                     CONSTRAINT email_outbox_attempts_check CHECK (attempts >= 0),
    -- When a PENDING row is due; NULL once the row is final.
    next_attempt_at  TIMESTAMP,
    -- The claiming worker's lease: others skip the row until then.
    locked_until     TIMESTAMP,
    last_error       TEXT,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    sent_at          TIMESTAMP,
    CONSTRAINT email_outbox_ticket_id_key UNIQUE (ticket_id),
    CONSTRAINT email_outbox_message_id_key UNIQUE (message_id),
    CONSTRAINT email_outbox_next_attempt_check CHECK (
        (status = 'PENDING' AND next_attempt_at IS NOT NULL)
        OR (status <> 'PENDING' AND next_attempt_at IS NULL)),
    CONSTRAINT email_outbox_sent_check CHECK (
        (status = 'SENT' AND sent_at IS NOT NULL)
        OR (status <> 'SENT' AND sent_at IS NULL)),
    CONSTRAINT email_outbox_no_recipient_check CHECK (status <> 'NO_RECIPIENT' OR recipient IS NULL)
);

-- The worker's claim: due PENDING rows in order. Only PENDING rows are in
-- it, so it stays as small as the backlog however many emails were sent.
CREATE INDEX email_outbox_due_idx ON email_outbox (next_attempt_at) WHERE status = 'PENDING';
-- Foreign keys: cascades from sites and tenants (tickets use the unique key).
CREATE INDEX email_outbox_site_id_idx ON email_outbox (site_id);
CREATE INDEX email_outbox_tenant_id_idx ON email_outbox (tenant_id);
