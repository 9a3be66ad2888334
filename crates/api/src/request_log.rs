//! Every request's id, span and log line: the outermost middleware.
//!
//! - `X-Request-Id` on every answer: a UUID (version 4 layout), unique in
//!   the process, made from a random prefix drawn once and a counter, so a
//!   request costs no call into the kernel's random source.
//! - The request span (`HTTP request`, with the method, route, host,
//!   client address, user agent, target, status and the signed-in member),
//!   built only when a subscriber takes it: with the log filtered to `warn`
//!   none of its fields is computed.
//! - One `request handled` line per request, and a `warn` (4xx) or `error`
//!   (5xx) event for every answer made from an error.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{StatusCode, Version};
use actix_web::ResponseError;
use tracing::field::Empty;
use tracing::Instrument;
use uuid::Uuid;

/// The header carrying the request's id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A request's id, as `X-Request-Id` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(Uuid);

impl RequestId {
    /// The next id of this process: the low 56 bits are a bijective mix
    /// of a random start plus a counter, so no two ids of a process are
    /// equal (until 2^56 requests) and they do not read as a sequence; the
    /// other bits are random per process, with the version and variant
    /// bits of a random UUID.
    pub fn next() -> RequestId {
        static PREFIX: OnceLock<(u128, u64)> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let (high, start) = *PREFIX.get_or_init(|| {
            let random = Uuid::new_v4().as_u128();
            (random & !u128::from(LOW_MASK), random as u64)
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let low = mix(start.wrapping_add(n) & LOW_MASK);
        let bytes = (high | u128::from(low)).to_be_bytes();
        RequestId(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }

    /// The id as a UUID.
    pub fn uuid(&self) -> Uuid {
        self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The bits of an id that count requests: below the UUID's version
/// (byte 6) and variant (byte 8) bits.
const LOW_MASK: u64 = (1 << 56) - 1;

/// A bijection on 56-bit numbers (xor-shifts and odd multipliers modulo
/// 2^56, after SplitMix64's finaliser), so distinct counts give distinct
/// ids.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) & LOW_MASK;
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb) & LOW_MASK;
    z ^ (z >> 31)
}

fn flavor(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2.0",
        Version::HTTP_3 => "3.0",
        _ => "unknown",
    }
}

/// The request's span; `Span::none()` (and nothing computed) when no
/// subscriber takes `info` spans.
fn request_span(req: &ServiceRequest, id: RequestId) -> tracing::Span {
    tracing::info_span!(
        "HTTP request",
        http.method = %req.method(),
        http.route = %req.match_pattern().unwrap_or_else(|| "default".into()),
        http.flavor = flavor(req.version()),
        http.scheme = %req.connection_info().scheme(),
        http.host = %req.connection_info().host(),
        http.client_ip = %req.connection_info().realip_remote_addr().unwrap_or(""),
        http.user_agent = %req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|h| h.to_str().ok())
            .unwrap_or(""),
        http.target = %req.uri().path_and_query().map_or("", |p| p.as_str()),
        http.status_code = Empty,
        otel.kind = "server",
        otel.status_code = Empty,
        request_id = %id,
        exception.message = Empty,
        exception.details = Empty,
        member_id = Empty,
    )
}

/// Records an answer made from an error on the span, and logs it.
fn record_error(span: &tracing::Span, status: StatusCode, error: &dyn ResponseError) {
    if !span.is_none() {
        span.record("exception.message", tracing::field::display(error));
        span.record("exception.details", tracing::field::debug(error));
        span.record(
            "otel.status_code",
            if status.is_client_error() {
                "OK"
            } else {
                "ERROR"
            },
        );
    }
    let prefix = "Error encountered while processing the incoming HTTP request";
    if status.is_client_error() {
        tracing::warn!("{prefix}: {error:?}");
    } else {
        tracing::error!("{prefix}: {error:?}");
    }
}

/// Middleware (for `wrap_fn`, outermost): the request's id, span and log
/// line; see the module's description.
pub fn observe<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + 'static
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: 'static,
{
    let id = RequestId::next();
    let span = request_span(&req, id);
    let started = Instant::now();
    let response = span.in_scope(|| srv.call(req));
    let in_span = span.clone();
    async move {
        let outcome = response.await;
        match &outcome {
            Ok(res) => {
                let status = res.status();
                span.record("http.status_code", status.as_u16());
                match res.response().error() {
                    Some(error) => record_error(&span, status, error.as_response_error()),
                    None => {
                        span.record("otel.status_code", "OK");
                    }
                }
            }
            Err(error) => {
                let error = error.as_response_error();
                span.record("http.status_code", error.status_code().as_u16());
                record_error(&span, error.status_code(), error);
            }
        }
        let mut res = outcome?;
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        if let Ok(value) = HeaderValue::from_str(id.uuid().hyphenated().encode_lower(&mut buf)) {
            res.headers_mut()
                .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
        }
        tracing::info!(
            status = res.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request handled"
        );
        Ok(res)
    }
    .instrument(in_span)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_mix_is_a_bijection_on_56_bits() {
        // Distinct inputs near the wrap-around and at random give distinct
        // outputs, all within 56 bits.
        let inputs = (0..50_000u64)
            .map(|n| LOW_MASK - n)
            .chain((0..50_000u64).map(|n| n.wrapping_mul(0x9e37_79b9_7f4a_7c15) & LOW_MASK));
        let outputs: HashSet<u64> = inputs.clone().map(mix).collect();
        let distinct: HashSet<u64> = inputs.collect();
        assert_eq!(outputs.len(), distinct.len());
        assert!(outputs.iter().all(|&z| z <= LOW_MASK));
    }

    #[test]
    fn ids_are_distinct_random_layout_uuids() {
        let ids: Vec<RequestId> = (0..10_000).map(|_| RequestId::next()).collect();
        let distinct: HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        for id in &ids {
            assert_eq!(id.uuid().get_version_num(), 4);
            assert_eq!(id.uuid().get_variant(), uuid::Variant::RFC4122);
            let text = id.to_string();
            assert_eq!(Uuid::parse_str(&text).map(|u| u == id.uuid()), Ok(true));
        }
    }
}
