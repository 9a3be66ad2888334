//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use chatdesk_domain::email::Email;
use chatdesk_domain::ports::OutgoingEmail;
use tracing_subscriber::filter::LevelFilter;

pub fn email(raw: &str) -> Email {
    Email::parse(raw).expect("valid email")
}

/// A ticket-like email.
pub fn ticket_email() -> OutgoingEmail {
    OutgoingEmail {
        to: email("help@example.com"),
        reply_to: Some(email("visitor@example.org")),
        subject: "[chatdesk] Ticket: cannot log in".to_owned(),
        text: "A visitor opened a support ticket.\n\nVisitor: I cannot log in.\n.\nAssistant: Try resetting your password.\n".to_owned(),
        html: None,
        message_id: "ticket-0190f2c4@chatdesk.localhost".to_owned(),
        delivery_id: "0190f2c4-0000-7000-8000-000000000001".to_owned(),
    }
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `f` with a subscriber that records every event; returns its result
/// and the log text.
pub fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(LevelFilter::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buffer.0.lock().expect("log buffer").clone()).expect("utf-8 logs");
    (result, text)
}
