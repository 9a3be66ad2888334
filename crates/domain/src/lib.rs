//! chatdesk's domain: every entity of the product, every rule as pure code,
//! the ports the rules need from the outside world, and the use cases the
//! API and CLI call, one service per area ([`services`]). No I/O and no framework live here.
//!
//! Behind the `testing` feature, [`testing`] exports mockall mocks of every
//! port and builders for every entity.
#![warn(missing_docs)]

pub mod answer;
mod closed_enum;
pub mod content;
pub mod conversation;
pub mod email;
pub mod error;
pub mod host;
pub mod idempotency;
pub mod ids;
pub mod observability;
pub mod ports;
pub mod secret;
pub mod services;
pub mod site;
pub mod tenant;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod text;
pub mod ticket;
pub mod version;
pub mod visitor;
pub mod widget;

pub use error::{Entity, Error, ErrorKind, FieldError};
