-- Idempotency-Key: each key a creating request sent, scoped to its sender
-- and stored only as a digest, with the fingerprint of that request and,
-- once answered, its answer sealed with the key (see the domain's
-- `idempotency` module). A row without a status is a request still
-- running, or one whose process stopped before it answered.
CREATE TABLE idempotency_keys (
    digest       TEXT PRIMARY KEY NOT NULL,
    fingerprint  TEXT NOT NULL,
    status       INTEGER,
    -- Hex of the sealed answer.
    answer       TEXT,
    created_at   TIMESTAMP NOT NULL,
    answered_at  TIMESTAMP,
    CONSTRAINT idempotency_keys_answer_check CHECK ((status IS NULL) = (answer IS NULL))
);

-- Forgetting keys past their lifetime.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
