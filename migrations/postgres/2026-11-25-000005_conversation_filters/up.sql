-- The Conversations list's combined filters. 000003 gave each filter
-- alone its partial index; a vote filter together with `escalated` used
-- one of them and checked the other predicate entry by entry, which reads
-- every entry of the larger set for a rare (or empty) combination. Each
-- combination now has its own index, whose predicate is the two filters'
-- predicates joined by AND, written exactly as the store writes them:
-- every page of every combination is a range of one index holding only
-- the sessions it lists.
--
-- A session sits in at most two of these (its vote class, and EITHER when
-- it has votes), so a change to it touches at most six list indexes in
-- all. UNVOTED and escalated never holds in practice (a ticket needs a
-- DOWN vote) and that index stays empty: it costs no write.

CREATE INDEX chat_sessions_site_voted_escalated_recent_idx
    ON chat_sessions (site_id, last_active_at DESC, id DESC)
    INCLUDE (started_at, up_votes, down_votes, ticket_id)
    WHERE (up_votes > 0 OR down_votes > 0) AND ticket_id IS NOT NULL;

CREATE INDEX chat_sessions_site_voted_not_escalated_recent_idx
    ON chat_sessions (site_id, last_active_at DESC, id DESC)
    INCLUDE (started_at, up_votes, down_votes, ticket_id)
    WHERE (up_votes > 0 OR down_votes > 0) AND ticket_id IS NULL;

CREATE INDEX chat_sessions_site_up_only_escalated_recent_idx
    ON chat_sessions (site_id, last_active_at DESC, id DESC)
    INCLUDE (started_at, up_votes, down_votes, ticket_id)
    WHERE up_votes > 0 AND down_votes = 0 AND ticket_id IS NOT NULL;

CREATE INDEX chat_sessions_site_up_only_not_escalated_recent_idx
    ON chat_sessions (site_id, last_active_at DESC, id DESC)
    INCLUDE (started_at, up_votes, down_votes, ticket_id)
    WHERE up_votes > 0 AND down_votes = 0 AND ticket_id IS NULL;

CREATE INDEX chat_sessions_site_down_only_escalated_recent_idx
    ON chat_sessions (site_id, last_active_at DESC, id DESC)
    INCLUDE (started_at, up_votes, down_votes, ticket_id)
    WHERE up_votes = 0 AND down_votes > 0 AND ticket_id IS NOT NULL;

CREATE INDEX chat_sessions_site_down_only_not_escalated_recent_idx
    ON chat_sessions (site_id, last_active_at DESC, id DESC)
    INCLUDE (started_at, up_votes, down_votes, ticket_id)
    WHERE up_votes = 0 AND down_votes > 0 AND ticket_id IS NULL;

CREATE INDEX chat_sessions_site_unvoted_escalated_recent_idx
    ON chat_sessions (site_id, last_active_at DESC, id DESC)
    INCLUDE (started_at, up_votes, down_votes, ticket_id)
    WHERE up_votes = 0 AND down_votes = 0 AND ticket_id IS NOT NULL;

CREATE INDEX chat_sessions_site_unvoted_not_escalated_recent_idx
    ON chat_sessions (site_id, last_active_at DESC, id DESC)
    INCLUDE (started_at, up_votes, down_votes, ticket_id)
    WHERE up_votes = 0 AND down_votes = 0 AND ticket_id IS NULL;
