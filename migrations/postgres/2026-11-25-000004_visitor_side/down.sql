DROP TABLE config_changes;
DROP INDEX sites_domain_idx;
ALTER TABLE sites DROP COLUMN content_version;
DROP INDEX content_items_site_published_idx;
DROP INDEX content_items_source_session_id_idx;
ALTER TABLE content_items DROP COLUMN source_message_id;
ALTER TABLE content_items DROP COLUMN source_session_id;
ALTER TABLE content_items DROP COLUMN answer;
DROP TABLE chat_session_tokens;
