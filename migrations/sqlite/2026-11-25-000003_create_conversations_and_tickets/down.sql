DROP TABLE email_outbox;
DROP TABLE support_tickets;
DROP TABLE chat_feedback;
DROP TABLE chat_messages;
DROP TABLE chat_sessions;
DROP TABLE end_users;
