//! The clients' side: one HTTP call with its status, body, `Retry-After`
//! and latency (a transport failure is an answer too), latency figures,
//! and the site's routes.

use std::time::{Duration, Instant};

use serde_json::Value;

/// What a call got.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// `None`: no HTTP answer (refused, reset, timed out).
    pub(crate) status: Option<u16>,
    pub(crate) body: Value,
    pub(crate) retry_after: Option<String>,
    pub(crate) replayed: bool,
    /// The transport error, when there was no answer.
    pub(crate) error: Option<String>,
    pub(crate) took: Duration,
}

impl Reply {
    pub(crate) fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    pub(crate) fn code(&self) -> &str {
        self.body.get("code").and_then(Value::as_str).unwrap_or("")
    }

    pub(crate) fn text(&self, pointer: &str) -> Option<String> {
        self.body
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// A short description for messages.
    pub(crate) fn describe(&self) -> String {
        match (self.status, &self.error) {
            (Some(status), _) => format!("{status} {}", self.code()),
            (None, Some(e)) => format!("no answer ({e})"),
            (None, None) => "no answer".into(),
        }
    }
}

/// A keep-alive client whose calls give up after `timeout`.
pub(crate) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(timeout)
        .timeout_connect(Duration::from_secs(2))
        .build()
}

/// Sends one request.
pub(crate) fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Reply {
    let mut request = agent.request(method, url);
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let started = Instant::now();
    let result = match body {
        Some(body) => request.send_json(body.clone()),
        None => request.call(),
    };
    let answer = match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(e) => {
            return Reply {
                status: None,
                body: Value::Null,
                retry_after: None,
                replayed: false,
                error: Some(e.to_string()),
                took: started.elapsed(),
            }
        }
    };
    let status = answer.status();
    let retry_after = answer.header("retry-after").map(str::to_string);
    let replayed = answer.header("idempotency-replayed") == Some("true");
    let text = answer.into_string();
    let took = started.elapsed();
    match text {
        Ok(text) => Reply {
            status: Some(status),
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
            retry_after,
            replayed,
            error: None,
            took,
        },
        Err(e) => Reply {
            status: None,
            body: Value::Null,
            retry_after,
            replayed,
            error: Some(format!("reading the body after {status}: {e}")),
            took,
        },
    }
}

/// Latencies, sorted on demand.
#[derive(Debug, Default, Clone)]
pub(crate) struct Latencies(pub(crate) Vec<Duration>);

impl Latencies {
    /// The `q`th percentile (nearest rank) in ms.
    pub(crate) fn ms(&self, q: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort();
        match sorted.len() {
            0 => f64::NAN,
            n => {
                let rank = ((q / 100.0) * n as f64).ceil() as usize;
                sorted[rank.clamp(1, n) - 1].as_secs_f64() * 1000.0
            }
        }
    }

    pub(crate) fn max(&self) -> Duration {
        self.0.iter().copied().max().unwrap_or_default()
    }
}

/// The SDK's headers: the site key, and the session's token once made.
pub(crate) fn sdk<'a>(key: &'a str, token: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![("X-Chatdesk-Site-Key", key)];
    if let Some(token) = token {
        headers.push(("X-Chatdesk-Session", token));
    }
    headers
}

/// Reads every page of a dashboard list.
pub(crate) fn all_pages(agent: &ureq::Agent, url: &str, token: &str) -> Result<Vec<Value>, String> {
    let auth = format!("Bearer {token}");
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_url = match &cursor {
            Some(c) => format!("{url}?limit=100&cursor={c}"),
            None => format!("{url}?limit=100"),
        };
        let reply = call(agent, "GET", &page_url, &[("Authorization", &auth)], None);
        if reply.status != Some(200) {
            return Err(format!("GET {page_url}: {}", reply.describe()));
        }
        let page = reply
            .body
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("GET {page_url}: no items"))?;
        items.extend(page.iter().cloned());
        match reply.body.get("nextCursor").and_then(Value::as_str) {
            Some(next) => cursor = Some(next.to_string()),
            None => return Ok(items),
        }
    }
}
