-- Tenants (customer companies) and their team members.
-- Portable types: UUIDs and JSON as TEXT, instants as TIMESTAMP holding UTC.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    plan        TEXT NOT NULL
                CONSTRAINT tenants_plan_check CHECK (plan IN ('FREE', 'STARTER', 'PRO', 'ENTERPRISE')),
    credits     BIGINT NOT NULL DEFAULT 0
                CONSTRAINT tenants_credits_check CHECK (credits >= 0),
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE tenant_members (
    id          TEXT PRIMARY KEY NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL
                CONSTRAINT tenant_members_role_check CHECK (role IN ('MEMBER', 'MANAGER', 'ADMIN', 'OWNER')),
    token_hash  TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    CONSTRAINT tenant_members_token_hash_key UNIQUE (token_hash),
    CONSTRAINT tenant_members_tenant_email_key UNIQUE (tenant_id, email)
);

-- Keyset pagination of a tenant's members and the first-owner lookup.
CREATE INDEX tenant_members_tenant_id_idx ON tenant_members (tenant_id, id);
