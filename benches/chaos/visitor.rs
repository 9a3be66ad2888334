//! A visitor as the widget drives one: open a session, ask, vote, open a
//! ticket; each step retried (as the widget retries) while the server
//! gives no answer, answers 5xx or says the Idempotency-Key's first
//! request is still running, until a deadline.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::http::{call, sdk, Reply};

/// The pause between retries.
const RETRY_PAUSE: Duration = Duration::from_millis(150);

/// Whether a reply is worth retrying: no answer, a 5xx, a key in use.
pub(crate) fn transient(reply: &Reply) -> bool {
    match reply.status {
        None => true,
        Some(s) if s >= 500 => true,
        Some(409) => reply.code() == "IDEMPOTENCY_KEY_IN_USE",
        _ => false,
    }
}

/// What retrying a step took.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tries {
    /// Requests sent.
    pub(crate) sent: usize,
    /// Of them, answered with nothing or a 5xx.
    pub(crate) failed: usize,
    /// Answered 409 IDEMPOTENCY_KEY_IN_USE.
    pub(crate) in_use: usize,
}

/// Sends until the reply is not transient or `deadline` passes; the last
/// reply is returned with the tries.
pub(crate) fn retried(
    deadline: Instant,
    tries: &mut Tries,
    mut send: impl FnMut() -> Reply,
) -> Reply {
    loop {
        let reply = send();
        tries.sent += 1;
        if !transient(&reply) || Instant::now() + RETRY_PAUSE >= deadline {
            return reply;
        }
        if reply.status == Some(409) {
            tries.in_use += 1;
        } else {
            tries.failed += 1;
        }
        thread::sleep(RETRY_PAUSE);
    }
}

/// A session: id and token.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) token: String,
}

pub(crate) struct Widget<'a> {
    pub(crate) agent: &'a ureq::Agent,
    pub(crate) base: &'a str,
    pub(crate) key: &'a str,
}

impl Widget<'_> {
    /// `POST /sdk/chat/sessions` (201 new, 200 the visitor's current one).
    pub(crate) fn open(&self, anonymous_id: &str) -> Reply {
        call(
            self.agent,
            "POST",
            &format!("{}/api/v1/sdk/chat/sessions", self.base),
            &sdk(self.key, None),
            Some(&json!({"anonymousId": anonymous_id, "traits": {"plan": "pro"}})),
        )
    }

    pub(crate) fn session_of(reply: &Reply) -> Option<Session> {
        Some(Session {
            id: reply.text("/sessionId")?,
            token: reply.text("/sessionToken")?,
        })
    }

    pub(crate) fn ask(&self, session: &Session, question: &str) -> Reply {
        call(
            self.agent,
            "POST",
            &format!(
                "{}/api/v1/sdk/chat/sessions/{}/messages",
                self.base, session.id
            ),
            &sdk(self.key, Some(&session.token)),
            Some(&json!({ "content": question })),
        )
    }

    pub(crate) fn vote(&self, session: &Session, message: &str, vote: &str) -> Reply {
        call(
            self.agent,
            "PUT",
            &format!("{}/api/v1/sdk/chat/messages/{message}/feedback", self.base),
            &sdk(self.key, Some(&session.token)),
            Some(&json!({ "vote": vote })),
        )
    }

    pub(crate) fn ticket(&self, session: &Session, idempotency_key: &str, n: usize) -> Reply {
        let mut headers = sdk(self.key, Some(&session.token));
        headers.push(("Idempotency-Key", idempotency_key));
        call(
            self.agent,
            "POST",
            &format!(
                "{}/api/v1/sdk/chat/sessions/{}/tickets",
                self.base, session.id
            ),
            &headers,
            Some(&ticket_body(n)),
        )
    }
}

pub(crate) fn ticket_body(n: usize) -> Value {
    json!({
        "email": format!("visitor-{n}@customer.chaos.example.com"),
        "subject": format!("The export is empty ({n})"),
        "body": "I exported March's invoices and the CSV file has no rows."
    })
}
