//! Black-box tests of the whole server over HTTP: one binary, each test
//! with its own server and fresh database (SQLite, or PostgreSQL with
//! `CHATDESK_TEST_BACKEND=postgres`).
#![allow(clippy::unwrap_used)]

mod helpers;

mod answers;
mod api_reference;
mod auth;
mod cli;
mod content;
mod conversations;
mod cors;
mod demo;
mod hostile;
mod idempotency;
mod isolation;
mod members;
mod metrics;
mod migrate_together;
mod operations;
mod outage;
mod preconditions;
mod races;
mod replicas;
mod sdk;
mod sdk_input;
mod sites;
mod ticket_mail;
mod tickets;
mod widget;
mod widget_script;
