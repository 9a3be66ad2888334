-- Visitors, chat sessions, messages, feedback votes and support tickets.
-- Every row carries site_id and goes when its site goes.

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

CREATE TABLE chat_sessions (
    id              TEXT PRIMARY KEY NOT NULL,
    site_id         TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    widget_id       TEXT NOT NULL REFERENCES chat_widgets (id) ON DELETE CASCADE,
    end_user_id     TEXT NOT NULL REFERENCES end_users (id) ON DELETE CASCADE,
    token_hash      TEXT NOT NULL,
    started_at      TIMESTAMP NOT NULL,
    last_active_at  TIMESTAMP NOT NULL,
    message_count   INTEGER NOT NULL DEFAULT 0 CONSTRAINT chat_sessions_message_count_check CHECK (message_count >= 0),
    question_count  INTEGER NOT NULL DEFAULT 0 CONSTRAINT chat_sessions_question_count_check CHECK (question_count >= 0),
    up_votes        INTEGER NOT NULL DEFAULT 0 CONSTRAINT chat_sessions_up_votes_check CHECK (up_votes >= 0),
    down_votes      INTEGER NOT NULL DEFAULT 0 CONSTRAINT chat_sessions_down_votes_check CHECK (down_votes >= 0),
    escalated       BOOLEAN NOT NULL DEFAULT FALSE,
    -- The ticket opened from the session; its foreign key is added below,
    -- once support_tickets exists.
    ticket_id       TEXT,
    preview         TEXT,
    CONSTRAINT chat_sessions_token_hash_key UNIQUE (token_hash)
);

-- The Conversations list: a site's sessions, most recently active first.
CREATE INDEX chat_sessions_site_recent_idx
    ON chat_sessions (site_id, last_active_at DESC, id DESC);
-- The same list filtered on `escalated`.
CREATE INDEX chat_sessions_site_escalated_recent_idx
    ON chat_sessions (site_id, escalated, last_active_at DESC, id DESC);
-- The same list filtered on votes (UP_ONLY / DOWN_ONLY / EITHER / NEITHER).
CREATE INDEX chat_sessions_site_up_voted_recent_idx
    ON chat_sessions (site_id, last_active_at DESC, id DESC) WHERE up_votes > 0;
CREATE INDEX chat_sessions_site_down_voted_recent_idx
    ON chat_sessions (site_id, last_active_at DESC, id DESC) WHERE down_votes > 0;
CREATE INDEX chat_sessions_site_unvoted_recent_idx
    ON chat_sessions (site_id, last_active_at DESC, id DESC) WHERE up_votes = 0 AND down_votes = 0;
-- A visitor's current session with a widget; also serves the end_user_id foreign key.
CREATE INDEX chat_sessions_end_user_widget_idx
    ON chat_sessions (end_user_id, widget_id, last_active_at DESC);
CREATE INDEX chat_sessions_widget_id_idx ON chat_sessions (widget_id);
CREATE INDEX chat_sessions_ticket_id_idx ON chat_sessions (ticket_id) WHERE ticket_id IS NOT NULL;

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

CREATE TABLE support_tickets (
    id                   TEXT PRIMARY KEY NOT NULL,
    tenant_id            TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    site_id              TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    session_id           TEXT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    email                TEXT NOT NULL,
    subject              TEXT NOT NULL,
    body                 TEXT NOT NULL,
    -- JSON snapshot of the whole conversation when the ticket was opened.
    conversation         TEXT NOT NULL,
    status               TEXT NOT NULL
                         CONSTRAINT support_tickets_status_check CHECK (status IN ('OPEN', 'IN_PROGRESS', 'RESOLVED')),
    created_at           TIMESTAMP NOT NULL,
    updated_at           TIMESTAMP NOT NULL,
    resolved_at          TIMESTAMP,
    -- The member who resolved it (no foreign key: the record outlives the member).
    resolved_by          TEXT,
    delivery_status      TEXT NOT NULL
                         CONSTRAINT support_tickets_delivery_status_check
                         CHECK (delivery_status IN ('PENDING', 'SENT', 'FAILED', 'NO_RECIPIENT', 'LOG_ONLY')),
    delivery_recipient   TEXT,
    delivery_attempts    INTEGER NOT NULL DEFAULT 0
                         CONSTRAINT support_tickets_delivery_attempts_check CHECK (delivery_attempts >= 0),
    delivery_last_error  TEXT,
    next_attempt_at      TIMESTAMP,
    -- The email's stable Message-ID (without angle brackets).
    message_id           TEXT NOT NULL,
    CONSTRAINT support_tickets_resolved_check CHECK (
        (status = 'RESOLVED' AND resolved_at IS NOT NULL)
        OR (status <> 'RESOLVED' AND resolved_at IS NULL AND resolved_by IS NULL)),
    CONSTRAINT support_tickets_message_id_key UNIQUE (message_id)
);

-- The Tickets tab: a site's tickets in order.
CREATE INDEX support_tickets_site_created_idx ON support_tickets (site_id, created_at, id);
-- The delivery worker: due PENDING rows.
CREATE INDEX support_tickets_delivery_idx ON support_tickets (delivery_status, next_attempt_at);
CREATE INDEX support_tickets_session_id_idx ON support_tickets (session_id);
CREATE INDEX support_tickets_tenant_id_idx ON support_tickets (tenant_id);

ALTER TABLE chat_sessions
    ADD CONSTRAINT chat_sessions_ticket_id_fkey
    FOREIGN KEY (ticket_id) REFERENCES support_tickets (id) ON DELETE SET NULL;
