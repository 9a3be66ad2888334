-- The visitor's side: session tokens, AI-made Flows' origin, the content
-- library's version, the change log behind the SDK's config cache, and
-- the lookup of a browser's origin among sites.

-- Every token issued for a session (each POST /sessions of the visitor's
-- current session issues one, so two tabs both hold a valid token). Only
-- hashes are stored. chat_sessions.token_hash keeps the token the session
-- was opened with; requests look tokens up here.
CREATE TABLE chat_session_tokens (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    session_id  TEXT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    site_id     TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    created_at  TIMESTAMP NOT NULL
);
CREATE INDEX chat_session_tokens_session_id_idx ON chat_session_tokens (session_id);
CREATE INDEX chat_session_tokens_site_id_idx ON chat_session_tokens (site_id);

-- An AI-made Flow keeps the model's answer and the conversation it was
-- made in (the visitor it is shown to while held back under "No users").
ALTER TABLE content_items ADD COLUMN answer TEXT;
ALTER TABLE content_items ADD COLUMN source_session_id TEXT
    REFERENCES chat_sessions (id) ON DELETE SET NULL;
ALTER TABLE content_items ADD COLUMN source_message_id TEXT;
CREATE INDEX content_items_source_session_id_idx ON content_items (source_session_id)
    WHERE source_session_id IS NOT NULL;
-- The matcher reads a site's published items.
CREATE INDEX content_items_site_published_idx ON content_items (site_id)
    WHERE status = 'PUBLISHED';

-- Bumped in the transaction of every change to the site's content, so a
-- replica's in-process answer index knows when it is stale.
ALTER TABLE sites ADD COLUMN content_version BIGINT NOT NULL DEFAULT 0;

-- A browser's preflight names no site key, only its origin: the SDK's
-- CORS policy looks the origin's host (and its parent domains) up here.
CREATE INDEX sites_domain_idx ON sites (domain);

-- Every change that can alter what GET /sdk/chat/config answers (a site,
-- its widget, its tenant's plan), written in the changing transaction.
-- Replicas poll it to drop their cached configs; on PostgreSQL the same
-- transaction also sends NOTIFY chatdesk_config, so others hear at once;
-- SQLite writers are serialised, so seq grows in commit order.
CREATE TABLE config_changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id     TEXT,
    tenant_id   TEXT,
    changed_at  TIMESTAMP NOT NULL,
    CONSTRAINT config_changes_target_check CHECK (site_id IS NOT NULL OR tenant_id IS NOT NULL)
);
CREATE INDEX config_changes_changed_at_idx ON config_changes (changed_at);
