-- Sites (the tenancy boundary), their chat widget and their content library.
-- Everything under a site carries site_id and goes when the site goes.

CREATE TABLE sites (
    id                    TEXT PRIMARY KEY NOT NULL,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    domain                TEXT NOT NULL,
    name                  TEXT NOT NULL,
    allow_subdomains      BOOLEAN NOT NULL DEFAULT FALSE,
    mapping_status        TEXT NOT NULL
                          CONSTRAINT sites_mapping_status_check
                          CHECK (mapping_status IN ('PENDING', 'IN_PROGRESS', 'COMPLETED', 'FAILED')),
    api_key_prefix        TEXT NOT NULL,
    api_key_hash          TEXT NOT NULL,
    identity_secret_hash  TEXT,
    theme                 TEXT NOT NULL,
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL,
    -- Bumped by every write: the ETag, and the If-Match check.
    version               BIGINT NOT NULL DEFAULT 1 CONSTRAINT sites_version_check CHECK (version >= 1),
    CONSTRAINT sites_api_key_hash_key UNIQUE (api_key_hash),
    CONSTRAINT sites_tenant_domain_key UNIQUE (tenant_id, domain)
);

-- Keyset pagination of a tenant's sites.
CREATE INDEX sites_tenant_id_idx ON sites (tenant_id, id);

CREATE TABLE chat_widgets (
    id                            TEXT PRIMARY KEY NOT NULL,
    site_id                       TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    tenant_id                     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    status                        TEXT NOT NULL
                                  CONSTRAINT chat_widgets_status_check CHECK (status IN ('DRAFT', 'ACTIVE', 'PAUSED')),
    published_at                  TIMESTAMP,
    welcome_message               TEXT NOT NULL,
    disclaimer                    TEXT,
    position                      TEXT NOT NULL
                                  CONSTRAINT chat_widgets_position_check
                                  CHECK (position IN ('BOTTOM_RIGHT', 'BOTTOM_LEFT', 'TOP_RIGHT', 'TOP_LEFT')),
    support_email                 TEXT,
    persona                       TEXT,
    insufficient_credits_message  TEXT NOT NULL,
    rate_limit_per_session        INTEGER NOT NULL
                                  CONSTRAINT chat_widgets_rate_limit_check CHECK (rate_limit_per_session > 0),
    created_at                    TIMESTAMP NOT NULL,
    updated_at                    TIMESTAMP NOT NULL,
    -- Bumped by every write: the ETag, and the If-Match check.
    version                       BIGINT NOT NULL DEFAULT 1 CONSTRAINT chat_widgets_version_check CHECK (version >= 1),
    CONSTRAINT chat_widgets_site_id_key UNIQUE (site_id)
);

CREATE INDEX chat_widgets_tenant_id_idx ON chat_widgets (tenant_id);

CREATE TABLE content_items (
    id           TEXT PRIMARY KEY NOT NULL,
    site_id      TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL
                 CONSTRAINT content_items_kind_check CHECK (kind IN ('FLOW', 'TOOLTIP')),
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL
                 CONSTRAINT content_items_status_check CHECK (status IN ('DRAFT', 'PUBLISHED')),
    -- JSON array of audience names, e.g. ["No users"].
    audiences    TEXT NOT NULL DEFAULT '[]',
    generated    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    -- Bumped by every write: the ETag, and the If-Match check.
    version      BIGINT NOT NULL DEFAULT 1 CONSTRAINT content_items_version_check CHECK (version >= 1)
);

-- Keyset pagination of a site's library.
CREATE INDEX content_items_site_id_idx ON content_items (site_id, id);
