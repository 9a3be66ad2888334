//! The diesel schema, written by hand to match both migration trees
//! (`migrations/postgres` and `migrations/sqlite`). Only portable column
//! types: ids and JSON as `Text`, instants as `Timestamp` holding UTC.

diesel::table! {
    tenants (id) {
        id -> Text,
        name -> Text,
        plan -> Text,
        credits -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    tenant_members (id) {
        id -> Text,
        tenant_id -> Text,
        email -> Text,
        role -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    sites (id) {
        id -> Text,
        tenant_id -> Text,
        domain -> Text,
        name -> Text,
        allow_subdomains -> Bool,
        mapping_status -> Text,
        api_key_prefix -> Text,
        api_key_hash -> Text,
        identity_secret_hash -> Nullable<Text>,
        theme -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
        content_version -> BigInt,
    }
}

diesel::table! {
    chat_widgets (id) {
        id -> Text,
        site_id -> Text,
        tenant_id -> Text,
        status -> Text,
        published_at -> Nullable<Timestamp>,
        welcome_message -> Text,
        disclaimer -> Nullable<Text>,
        position -> Text,
        support_email -> Nullable<Text>,
        persona -> Nullable<Text>,
        insufficient_credits_message -> Text,
        rate_limit_per_session -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    content_items (id) {
        id -> Text,
        site_id -> Text,
        kind -> Text,
        name -> Text,
        description -> Text,
        status -> Text,
        audiences -> Text,
        generated -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
        answer -> Nullable<Text>,
        source_session_id -> Nullable<Text>,
        source_message_id -> Nullable<Text>,
    }
}

diesel::table! {
    end_users (id) {
        id -> Text,
        site_id -> Text,
        anonymous_id -> Text,
        external_id -> Nullable<Text>,
        traits -> Text,
        verified -> Bool,
        first_seen_at -> Timestamp,
        last_seen_at -> Timestamp,
    }
}

diesel::table! {
    chat_sessions (id) {
        id -> Text,
        site_id -> Text,
        widget_id -> Text,
        end_user_id -> Text,
        token_hash -> Text,
        started_at -> Timestamp,
        last_active_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
        message_count -> Integer,
        question_count -> Integer,
        up_votes -> Integer,
        down_votes -> Integer,
        ticket_id -> Nullable<Text>,
        preview -> Nullable<Text>,
    }
}

diesel::table! {
    chat_session_tokens (token_hash) {
        token_hash -> Text,
        session_id -> Text,
        site_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    chat_messages (id) {
        id -> Text,
        site_id -> Text,
        session_id -> Text,
        role -> Text,
        status -> Text,
        content -> Text,
        content_kind -> Nullable<Text>,
        content_id -> Nullable<Text>,
        content_name -> Nullable<Text>,
        model -> Nullable<Text>,
        tokens_used -> Nullable<Integer>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    chat_feedback (id) {
        id -> Text,
        site_id -> Text,
        session_id -> Text,
        message_id -> Text,
        vote -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    support_tickets (id) {
        id -> Text,
        tenant_id -> Text,
        site_id -> Text,
        session_id -> Text,
        email -> Text,
        subject -> Text,
        body -> Text,
        conversation -> Text,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        resolved_at -> Nullable<Timestamp>,
        resolved_by -> Nullable<Text>,
    }
}

diesel::table! {
    email_outbox (id) {
        id -> Text,
        ticket_id -> Text,
        site_id -> Text,
        tenant_id -> Text,
        status -> Text,
        recipient -> Nullable<Text>,
        message_id -> Text,
        attempts -> Integer,
        next_attempt_at -> Nullable<Timestamp>,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    config_changes (seq) {
        seq -> BigInt,
        site_id -> Nullable<Text>,
        tenant_id -> Nullable<Text>,
        changed_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (digest) {
        digest -> Text,
        fingerprint -> Text,
        status -> Nullable<Integer>,
        answer -> Nullable<Text>,
        created_at -> Timestamp,
        answered_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(tenant_members -> tenants (tenant_id));
diesel::joinable!(sites -> tenants (tenant_id));
diesel::joinable!(chat_widgets -> sites (site_id));
diesel::joinable!(content_items -> sites (site_id));
diesel::joinable!(end_users -> sites (site_id));
diesel::joinable!(chat_sessions -> sites (site_id));
diesel::joinable!(chat_sessions -> chat_widgets (widget_id));
diesel::joinable!(chat_sessions -> end_users (end_user_id));
diesel::joinable!(chat_session_tokens -> chat_sessions (session_id));
diesel::joinable!(chat_messages -> chat_sessions (session_id));
diesel::joinable!(chat_feedback -> chat_messages (message_id));
diesel::joinable!(support_tickets -> chat_sessions (session_id));
diesel::joinable!(email_outbox -> support_tickets (ticket_id));

diesel::allow_tables_to_appear_in_same_query!(
    idempotency_keys,
    tenants,
    tenant_members,
    sites,
    chat_widgets,
    content_items,
    end_users,
    chat_sessions,
    chat_session_tokens,
    chat_messages,
    chat_feedback,
    support_tickets,
    email_outbox,
    config_changes,
);
