//! The store's tests, one binary: every test runs against each available
//! backend (SQLite always, PostgreSQL when reachable), each with a fresh
//! database.
#![allow(clippy::unwrap_used)]

mod helpers;

mod changes;
mod connections;
mod content;
mod conversation_list;
mod conversations;
mod failures;
mod members;
mod migrations;
mod outbox;
mod sites;
mod tenants;
mod tickets;
mod units;
mod visitor;
mod widgets;
