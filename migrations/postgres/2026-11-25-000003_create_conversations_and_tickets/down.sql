ALTER TABLE chat_sessions DROP CONSTRAINT chat_sessions_ticket_id_fkey;
DROP TABLE email_outbox;
DROP TABLE support_tickets;
DROP TABLE chat_feedback;
DROP TABLE chat_messages;
DROP TABLE chat_sessions;
DROP TABLE end_users;
